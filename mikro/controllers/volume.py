"""Volume binding and the mikro-hostpath provisioner (the persistent volume controller and an
external provisioner, in one).

A claim binds to a statically created PersistentVolume that fits (class, size, access modes),
or its class's provisioner makes one: a directory `<state>/volumes/<ns>-<claim>-pvc-<uid>`
backing a hostPath PV `pvc-<uid>`. `WaitForFirstConsumer` classes wait until a pod uses the
claim. When a claim goes, its volume is Released; reclaimPolicy Delete removes the volume and
its directory, Retain keeps both. `plan_claim` and `plan_volume` are pure.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mikro.api import storage
from mikro.api.resources import BY_KIND
from mikro.api.validation import parse_quantity, selector_matches

log = logging.getLogger("mikro.controllers.volume")
PVC, PV, SC, POD, NODE = (BY_KIND[k] for k in ("PersistentVolumeClaim", "PersistentVolume", "StorageClass", "Pod", "Node"))
COMPONENT = "persistentvolume-controller"
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
SELECTED_NODE = "volume.kubernetes.io/selected-node"


def _quantity(value: Any) -> float:
    try:
        return parse_quantity(value)
    except ValueError:
        return 0.0


def claim_users(claim: dict[str, Any], pods: list[dict[str, Any]], running_only: bool = True) -> list[dict[str, Any]]:
    """Pods that use the claim and may still run (all that still exist, with running_only off:
    a terminating pod's containers may still write)."""
    ns, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
    out = []
    for pod in pods:
        if pod["metadata"].get("namespace") != ns or (running_only and pod["metadata"].get("deletionTimestamp")):
            continue
        if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        for vol in (pod.get("spec") or {}).get("volumes") or []:
            if (vol.get("persistentVolumeClaim") or {}).get("claimName") == name:
                out.append(pod)
                break
    return out


def fits(pv: dict[str, Any], claim: dict[str, Any]) -> bool:
    """A static volume a claim may bind: same class, enough room, every asked access mode."""
    spec, cspec = pv.get("spec") or {}, claim.get("spec") or {}
    if pv["metadata"].get("deletionTimestamp") or (pv.get("status") or {}).get("phase") not in (None, "Available"):
        return False
    ref = spec.get("claimRef")
    if ref and (ref.get("name") != claim["metadata"]["name"] or ref.get("namespace") != claim["metadata"]["namespace"]):
        return False
    if (spec.get("storageClassName") or "") != (cspec.get("storageClassName") or ""):
        return False
    want = _quantity(((cspec.get("resources") or {}).get("requests") or {}).get("storage"))
    if _quantity((spec.get("capacity") or {}).get("storage")) < want:
        return False
    if cspec.get("selector") and not selector_matches(cspec["selector"], pv["metadata"].get("labels")):
        return False
    return set(cspec.get("accessModes") or []) <= set(spec.get("accessModes") or [])


def volume_dir(root: Path, claim: dict[str, Any]) -> Path:
    meta = claim["metadata"]
    return root / f"{meta['namespace']}-{meta['name']}-pvc-{meta['uid']}"


@dataclass
class ClaimPlan:
    bind_to: dict[str, Any] | None = None  # an existing PV
    provision: dict[str, Any] | None = None  # a new PV (its directory to make first)
    select_node: str | None = None  # WaitForFirstConsumer: the node a consumer was put on
    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)


def plan_claim(
    claim: dict[str, Any],
    volumes: list[dict[str, Any]],
    classes: dict[str, dict[str, Any]],
    pods: list[dict[str, Any]],
    root: Path,
    node: str,
) -> ClaimPlan:
    p = ClaimPlan()
    meta, spec = claim["metadata"], claim.get("spec") or {}
    status = claim.get("status") or {}
    if meta.get("deletionTimestamp"):
        return p
    bound = next((v for v in volumes if v["metadata"]["name"] == spec.get("volumeName")), None) if spec.get("volumeName") else None
    if bound is not None and ((bound.get("spec") or {}).get("claimRef") or {}).get("uid") == meta["uid"]:
        want = {
            "phase": "Bound",
            "accessModes": list((bound.get("spec") or {}).get("accessModes") or []),
            "capacity": dict((bound.get("spec") or {}).get("capacity") or {}),
        }
        if status != want:
            p.status = want
        return p
    if spec.get("volumeName"):
        pre = bound
        if pre is not None and fits(pre, claim):
            p.bind_to = pre
        elif status.get("phase") != "Pending" or not status:
            p.status = {"phase": "Pending"}
        return p
    class_name = spec.get("storageClassName") or ""
    sc = classes.get(class_name) if class_name else None
    waits = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
    users = claim_users(claim, pods)
    if waits and not users and not (meta.get("annotations") or {}).get(SELECTED_NODE):
        if status.get("phase") != "Pending":
            p.status = {"phase": "Pending"}
        p.events.append(("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding"))
        return p
    if waits and not (meta.get("annotations") or {}).get(SELECTED_NODE):
        p.select_node = node
    candidates = sorted(
        (v for v in volumes if fits(v, claim)),
        key=lambda v: _quantity(((v.get("spec") or {}).get("capacity") or {}).get("storage")),
    )
    if candidates:
        p.bind_to = candidates[0]
        return p
    if status.get("phase") != "Pending":
        p.status = {"phase": "Pending"}
    if class_name and sc is None:
        p.events.append(("Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{class_name}" not found'))
        return p
    if sc is None:
        p.events.append(
            ("Normal", "FailedBinding", "no persistent volumes available for this claim and no storage class is set")
        )
        return p
    if sc.get("provisioner") != storage.PROVISIONER:
        p.events.append(
            (
                "Normal",
                "ExternalProvisioning",
                f"Waiting for a volume to be created either by the external provisioner '{sc.get('provisioner')}' "
                "or manually by the system administrator. If volume creation is delayed, please verify that the "
                "provisioner is running and correctly registered.",
            )
        )
        return p
    if spec.get("selector"):
        p.events.append(("Warning", "ProvisioningFailed", "claim Selector is not supported"))
        return p
    request = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
    p.provision = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{meta['uid']}",
            "annotations": {PROVISIONED_BY: storage.PROVISIONER},
        },
        "spec": {
            "capacity": {"storage": request},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
            "storageClassName": class_name,
            "volumeMode": spec.get("volumeMode", "Filesystem"),
            "hostPath": {"path": str(volume_dir(root, claim)), "type": "DirectoryOrCreate"},
            "claimRef": _claim_ref(claim),
        },
    }
    return p


def _claim_ref(claim: dict[str, Any]) -> dict[str, Any]:
    meta = claim["metadata"]
    return {
        "kind": "PersistentVolumeClaim",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }


@dataclass
class VolumePlan:
    status: dict[str, Any] | None = None
    delete: bool = False  # remove the PV (its directory first, when mikro made it)
    events: list[tuple[str, str, str]] = field(default_factory=list)


def plan_volume(pv: dict[str, Any], claims: dict[tuple[str, str], dict[str, Any]]) -> VolumePlan:
    p = VolumePlan()
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    if pv["metadata"].get("deletionTimestamp"):
        return p
    ref = spec.get("claimRef")
    if not ref:
        if status.get("phase") != "Available":
            p.status = {"phase": "Available"}
        return p
    claim = claims.get((ref.get("namespace", ""), ref.get("name", "")))
    if ref.get("uid") and (claim is None or claim["metadata"]["uid"] != ref["uid"]):
        if status.get("phase") == "Failed":
            return p
        policy = spec.get("persistentVolumeReclaimPolicy", "Retain")
        if policy == "Delete":
            p.delete = True
        elif status.get("phase") != "Released":
            p.status = {"phase": "Released"}
        return p
    if claim is None:  # pre-bound to a claim that does not exist yet
        if status.get("phase") != "Available":
            p.status = {"phase": "Available"}
        return p
    if status.get("phase") != "Bound":
        p.status = {"phase": "Bound"}
    return p


class VolumeController:
    def __init__(self, registry: Any, root: Path) -> None:
        self.reg = registry
        self.store = registry.store
        self.root = root
        self.reported: set[tuple[str, str]] = set()  # (claim uid, message) already told

    def _event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        key = (obj["metadata"].get("uid", ""), message)
        if key in self.reported:
            return
        self.reported.add(key)
        self.reg.record_event(obj, reason, message, type_, COMPONENT)

    def sync_all(self, store: Any) -> float | None:
        claims = self.store.list(PVC)[0]
        volumes = self.store.list(PV)[0]
        classes = {c["metadata"]["name"]: c for c in self.store.list(SC)[0]}
        pods = self.store.list(POD)[0]
        nodes = self.store.list(NODE)[0]
        node = nodes[0]["metadata"]["name"] if nodes else "mikro"
        for claim in claims:
            if claim["metadata"].get("deletionTimestamp"):
                # kubernetes.io/pvc-protection: the claim goes once no pod uses it.
                if not claim_users(claim, pods, running_only=False):
                    self._drop_finalizer(PVC, claim, storage.PVC_PROTECTION)
                continue
            p = plan_claim(claim, volumes, classes, pods, self.root, node)
            self._apply_claim(claim, p, volumes)
        by_key = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in self.store.list(PVC)[0]}
        for pv in self.store.list(PV)[0]:
            if pv["metadata"].get("deletionTimestamp"):
                ref = (pv.get("spec") or {}).get("claimRef") or {}
                claim = by_key.get((ref.get("namespace", ""), ref.get("name", "")))
                if claim is None or claim["metadata"]["uid"] != ref.get("uid"):
                    self._drop_finalizer(PV, pv, storage.PV_PROTECTION)
                continue
            self._apply_volume(pv, plan_volume(pv, by_key))
        return None

    def _drop_finalizer(self, res: Any, obj: dict[str, Any], name: str) -> None:
        meta = obj["metadata"]
        if name not in (meta.get("finalizers") or []):
            return
        fresh = self.store.get(res, meta.get("namespace", ""), meta["name"])
        fresh["metadata"]["finalizers"] = [f for f in fresh["metadata"].get("finalizers") or [] if f != name]
        self.store.update(res, fresh)

    def _apply_claim(self, claim: dict[str, Any], p: ClaimPlan, volumes: list[dict[str, Any]]) -> None:
        for type_, reason, message in p.events:
            self._event(claim, type_, reason, message)
        meta = claim["metadata"]
        if p.select_node:
            claim = self.store.get(PVC, meta["namespace"], meta["name"])
            claim["metadata"].setdefault("annotations", {})[SELECTED_NODE] = p.select_node
            claim = self.store.update(PVC, claim)
        pv = p.bind_to
        if p.provision is not None:
            path = Path(p.provision["spec"]["hostPath"]["path"])
            path.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o777)  # containers may run as any user, as microk8s' hostpath provisioner allows
            pv = self.reg.create(PV, "", p.provision)
            pv["status"] = {"phase": "Bound"}
            pv = self.store.update(PV, pv, status_only=True)
            volumes.append(pv)
            self.reg.record_event(
                claim, "ProvisioningSucceeded", f"Successfully provisioned volume {pv['metadata']['name']}", "Normal", storage.PROVISIONER
            )
        elif pv is not None:
            pv = self.store.get(PV, "", pv["metadata"]["name"])
            pv["spec"]["claimRef"] = _claim_ref(claim)
            pv = self.store.update(PV, pv)
            pv["status"] = {"phase": "Bound"}
            pv = self.store.update(PV, pv, status_only=True)
        if pv is not None:
            claim = self.store.get(PVC, meta["namespace"], meta["name"])
            claim["spec"]["volumeName"] = pv["metadata"]["name"]
            notes = claim["metadata"].setdefault("annotations", {})
            notes["pv.kubernetes.io/bind-completed"] = "yes"
            notes["pv.kubernetes.io/bound-by-controller"] = "yes"
            if p.provision is not None:
                notes["volume.kubernetes.io/storage-provisioner"] = storage.PROVISIONER
                notes["volume.beta.kubernetes.io/storage-provisioner"] = storage.PROVISIONER
            claim = self.store.update(PVC, claim)
            claim["status"] = {
                "phase": "Bound",
                "accessModes": list(pv["spec"].get("accessModes") or []),
                "capacity": dict(pv["spec"].get("capacity") or {}),
            }
            self.store.update(PVC, claim, status_only=True)
            return
        if p.status is not None:
            claim = copy.deepcopy(claim)
            claim["status"] = p.status
            self.store.update(PVC, claim, status_only=True)

    def _apply_volume(self, pv: dict[str, Any], p: VolumePlan) -> None:
        name = pv["metadata"]["name"]
        if p.delete:
            ours = (pv["metadata"].get("annotations") or {}).get(PROVISIONED_BY) == storage.PROVISIONER
            path = Path(((pv.get("spec") or {}).get("hostPath") or {}).get("path") or "")
            if ours:
                try:
                    inside = path.resolve().is_relative_to(self.root.resolve()) and path.resolve() != self.root.resolve()
                    if inside:
                        shutil.rmtree(path)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    pv["status"] = {"phase": "Failed", "message": f"could not remove {path}: {exc}"}
                    self.store.update(PV, pv, status_only=True)
                    self.reg.record_event(pv, "VolumeFailedDelete", pv["status"]["message"], "Warning", COMPONENT)
                    return
                self.reg.delete(PV, "", name)
                return
            # A volume mikro did not make: nothing here can delete its data (as Kubernetes
            # without a deleter for it).
            pv["status"] = {"phase": "Failed", "message": "error getting deleter volume plugin for volume \"" + name + "\": no deletable volume plugin matched"}
            self.store.update(PV, pv, status_only=True)
            return
        if p.status is not None:
            pv = copy.deepcopy(pv)
            pv["status"] = p.status
            self.store.update(PV, pv, status_only=True)
