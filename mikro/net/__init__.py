"""The kube-proxy and ingress part: service proxies and the ingress renderer."""
