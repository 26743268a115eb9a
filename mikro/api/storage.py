"""Storage API rules: the default StorageClass mikro ships, the DefaultStorageClass admission
step for claims, and claim validation with Kubernetes' wording. Pure."""

from __future__ import annotations

from typing import Any

DEFAULT_CLASS = "mikro-hostpath"
PROVISIONER = "mikro.io/hostpath"
IS_DEFAULT = "storageclass.kubernetes.io/is-default-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"
ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]


def default_class() -> dict[str, Any]:
    """What `mikro start` creates when the cluster has no StorageClass of that name: like
    microk8s-hostpath, a directory per claim on this machine, made when a pod first uses it."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": DEFAULT_CLASS, "annotations": {IS_DEFAULT: "true"}},
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": False,
    }


def defaults_class(sc: dict[str, Any]) -> None:
    sc.setdefault("reclaimPolicy", "Delete")
    sc.setdefault("volumeBindingMode", "Immediate")


def admit_claim(claim: dict[str, Any], classes: list[dict[str, Any]]) -> None:
    """The DefaultStorageClass admission plugin: a claim that names no class (the field
    absent, not "") gets the default one; and the claim's own defaults."""
    finalizers = claim.setdefault("metadata", {}).setdefault("finalizers", [])
    if PVC_PROTECTION not in finalizers:
        finalizers.append(PVC_PROTECTION)  # kept until no pod uses the claim
    spec = claim.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    spec.setdefault("volumeMode", "Filesystem")
    if "storageClassName" in spec:
        return
    defaults = [
        c for c in classes if (c.get("metadata", {}).get("annotations") or {}).get(IS_DEFAULT) == "true"
    ]
    if defaults:
        # Kubernetes picks the newest default class when there are several.
        newest = max(defaults, key=lambda c: (c["metadata"].get("creationTimestamp", ""), c["metadata"]["name"]))
        spec["storageClassName"] = newest["metadata"]["name"]


Error = tuple[str, str, str]


def admit_volume(pv: dict[str, Any]) -> None:
    finalizers = pv.setdefault("metadata", {}).setdefault("finalizers", [])
    if PV_PROTECTION not in finalizers:
        finalizers.append(PV_PROTECTION)  # kept while a claim is bound to it
    spec = pv.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")


def validate_claim(claim: dict[str, Any]) -> list[Error]:
    out: list[Error] = []
    spec = claim.get("spec") if isinstance(claim.get("spec"), dict) else {}
    modes = spec.get("accessModes")
    if not modes:
        out.append(("spec.accessModes", "Required", "Required value: at least 1 access mode is required"))
    elif isinstance(modes, list):
        for mode in modes:
            if mode not in ACCESS_MODES:
                choices = ", ".join(f'"{m}"' for m in ACCESS_MODES)
                out.append(("spec.accessModes", "Unsupported", f'Unsupported value: "{mode}": supported values: {choices}'))
    requests = ((spec.get("resources") or {}).get("requests") or {}) if isinstance(spec.get("resources"), dict) else {}
    if "storage" not in requests:
        out.append(("spec.resources[storage]", "Required", "Required value"))
    return out


def validate_volume(pv: dict[str, Any]) -> list[Error]:
    out: list[Error] = []
    spec = pv.get("spec") if isinstance(pv.get("spec"), dict) else {}
    if not spec.get("accessModes"):
        out.append(("spec.accessModes", "Required", "Required value"))
    if "storage" not in (spec.get("capacity") or {}):
        out.append(("spec.capacity", "Required", "Required value"))
    sources = [k for k in ("hostPath", "local", "nfs", "csi") if k in spec]
    if not sources:
        out.append(("spec", "Required", "Required value: must specify a volume type"))
    path = ((spec.get("hostPath") or spec.get("local") or {}).get("path")) if sources[:1] in (["hostPath"], ["local"]) else "/"
    if not isinstance(path, str) or not path.startswith("/"):
        out.append(("spec.hostPath.path", "Invalid", f'Invalid value: "{path}": must be an absolute path'))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in ("Delete", "Recycle", "Retain"):
        out.append(
            (
                "spec.persistentVolumeReclaimPolicy",
                "Unsupported",
                f'Unsupported value: "{policy}": supported values: "Delete", "Recycle", "Retain"',
            )
        )
    return out
