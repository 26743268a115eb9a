"""The kube-controller-manager part: level-triggered reconcile loops."""
