"""The kube-apiserver part: HTTP, the verbs, the store, validation, defaulting, patches, selectors."""
