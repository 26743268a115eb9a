"""The kubelet part: the pod runtime, pod plans, probes, and the one module that talks to Docker."""
