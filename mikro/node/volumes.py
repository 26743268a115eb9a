"""The kubelet's view of persistent volumes: which claims keep a pod from being scheduled, and
the host directory a bound claim mounts (its PersistentVolume's hostPath or local path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.node.podplan import MissingReference

PVC, PV, SC = BY_KIND["PersistentVolumeClaim"], BY_KIND["PersistentVolume"], BY_KIND["StorageClass"]


def unbound_claims(pod: dict[str, Any], store: Any) -> tuple[str | None, bool]:
    """The scheduler's message when a claim the pod uses is missing or not bound yet, and
    whether it is worth an event (not while a WaitForFirstConsumer claim is being provisioned
    for this very pod)."""
    ns = pod["metadata"]["namespace"]
    waiting = immediate = False
    for vol in (pod.get("spec") or {}).get("volumes") or []:
        ref = vol.get("persistentVolumeClaim")
        if not ref:
            continue
        claim = store.find(PVC, ns, ref.get("claimName", ""))
        if claim is None:
            return f'0/1 nodes are available: persistentvolumeclaim "{ref.get("claimName", "")}" not found.', True
        if (claim.get("status") or {}).get("phase") != "Bound":
            waiting = True
            cls = (claim.get("spec") or {}).get("storageClassName")
            sc = store.find(SC, "", cls) if cls else None
            immediate = immediate or sc is None or sc.get("volumeBindingMode") != "WaitForFirstConsumer"
    if not waiting:
        return None, False
    if immediate:
        return "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims.", True
    return "0/1 nodes are available: waiting for the volumes of its PersistentVolumeClaims to be provisioned.", False


def claim_path(ns: str, ref: dict[str, Any], store: Any) -> str:
    """The directory to bind-mount for a pod's persistentVolumeClaim volume."""
    name = ref.get("claimName", "")
    claim = store.find(PVC, ns, name)
    if claim is None:
        raise MissingReference(f'persistentvolumeclaim "{name}" not found')
    volume_name = (claim.get("spec") or {}).get("volumeName")
    pv = store.find(PV, "", volume_name) if volume_name else None
    if pv is None or (claim.get("status") or {}).get("phase") != "Bound":
        raise MissingReference(f'persistentvolumeclaim "{name}" is not bound')
    spec = pv.get("spec") or {}
    source = spec.get("hostPath") or spec.get("local") or {}
    path = source.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise MissingReference(f'persistentvolume "{volume_name}" has no hostPath or local path mikro can mount')
    if (spec.get("hostPath") or {}).get("type") in (None, "", "DirectoryOrCreate"):
        Path(path).mkdir(parents=True, exist_ok=True)
    return path
