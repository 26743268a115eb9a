"""mikro: a local Kubernetes-style microcluster on Docker."""

__version__ = "0.1.0"
