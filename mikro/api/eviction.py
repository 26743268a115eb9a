"""The pods/eviction subresource (policy/v1 Eviction), as kube-apiserver's eviction REST serves
it: a pod is deleted only if the PodDisruptionBudget that selects it allows one more
disruption, which is what `kubectl drain` relies on. The budget's status is decremented in the
same step, so two evictions in quick succession cannot both spend the last disruption before
the disruption controller recounts."""

from __future__ import annotations

import threading
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.api.validation import selector_matches
from mikro.errors import ApiError

Obj = dict[str, Any]
POD, PDB = BY_KIND["Pod"], BY_KIND["PodDisruptionBudget"]
EVICTION_VERSIONS = ("policy/v1", "policy/v1beta1")
VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
# Kubernetes refuses to track more pods than this in a budget's status.disruptedPods.
MAX_DISRUPTED_PODS = 2000
LOCK = threading.Lock()

# Discovery's entry, under /api/v1: kubectl drain looks for it (name, kind, group and version)
# to choose eviction over plain deletion.
DISCOVERY = {
    "name": "pods/eviction",
    "singularName": "",
    "namespaced": True,
    "group": "policy",
    "version": "v1",
    "kind": "Eviction",
    "verbs": ["create"],
}


def check_body(body: Any, name: str) -> Obj:
    """The Eviction a client sent: its kind and version, and the pod's name in it."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body cannot be handled as an Eviction: expected an object")
    if body.get("kind") not in (None, "Eviction") or body.get("apiVersion") not in (None, *EVICTION_VERSIONS):
        raise ApiError(
            400,
            f"the body of pods/eviction must be a policy/v1 Eviction, not {body.get('apiVersion')} {body.get('kind')}",
        )
    given = (body.get("metadata") or {}).get("name")
    if given and given != name:
        raise ApiError(400, "name in URL does not match name in Eviction object")
    options = body.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "the request body cannot be handled as an Eviction: deleteOptions: expected an object")
    return options


def _ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def budgets_of(pod: Obj, pdbs: list[Obj]) -> list[Obj]:
    """The budgets of the pod's namespace whose (non-empty) selector selects it."""
    labels = pod["metadata"].get("labels") or {}
    return [
        p
        for p in pdbs
        if p["metadata"].get("namespace") == pod["metadata"].get("namespace")
        and (p.get("spec") or {}).get("selector")
        and selector_matches(p["spec"]["selector"], labels)
    ]


def with_live_counts(pdbs: list[Obj], pods: list[Obj]) -> list[Obj]:
    """The budgets with their healthy count and disruptions allowed no higher than the pods
    show now: the disruption controller's status may not have caught up with the last
    eviction or a readiness change yet, and an eviction must never spend what is not there."""
    from mikro.api import policy  # policy's admission imports the registry's neighbours

    out = []
    for pdb in pdbs:
        selector = (pdb.get("spec") or {}).get("selector")
        if not selector:
            out.append(pdb)
            continue
        selected = [
            p
            for p in pods
            if p["metadata"].get("namespace") == pdb["metadata"].get("namespace")
            and selector_matches(selector, p["metadata"].get("labels"))
            and policy.pod_counts(p)
        ]
        live = policy.pdb_status(pdb, sum(1 for p in selected if _ready(p)), len(selected), 1)
        status = dict(pdb.get("status") or {})
        for field in ("currentHealthy", "disruptionsAllowed"):
            status[field] = min(int(status.get(field) or 0), int(live[field]))
        out.append({**pdb, "status": status})
    return out


def verdict(pod: Obj, pdbs: list[Obj]) -> Obj | None:
    """Whether the pod may be evicted now (pure). None: delete it without touching a budget;
    a budget: delete it and write that budget (its disruptionsAllowed spent by one). Raises
    Kubernetes' own errors otherwise."""
    if pod["metadata"].get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in (
        "Succeeded",
        "Failed",
        "Pending",
    ):
        return None  # nothing a budget protects: terminal, not yet running, or already going
    mine = budgets_of(pod, pdbs)
    if not mine:
        return None
    if len(mine) > 1:
        raise ApiError(
            500, "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
        )
    pdb = mine[0]
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    if not _ready(pod):
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return None
        desired = int(status.get("desiredHealthy") or 0)
        if desired > 0 and int(status.get("currentHealthy") or 0) >= desired:
            return None  # IfHealthyBudget: an unready pod may go while the budget is met
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 1):
        raise _too_many(f"The disruption budget {name} is still being processed by the server.")
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise ApiError(403, "pdb disruptions allowed is negative", "Forbidden")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise ApiError(
            403, "DisruptedPods map too big - too many evictions not confirmed by PDB controller", "Forbidden"
        )
    if allowed == 0:
        raise _too_many(
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy pods "
            f"and has {int(status.get('currentHealthy') or 0)} currently"
        )
    spent = {**status, "disruptionsAllowed": allowed - 1}
    if allowed - 1 == 0:
        spent["conditions"] = [
            {**c, "status": "False", "reason": "InsufficientPods"} if c.get("type") == "DisruptionAllowed" else c
            for c in status.get("conditions") or []
        ]
    return {**pdb, "status": spent}


def _too_many(cause: str) -> ApiError:
    return ApiError(429, VIOLATION, "TooManyRequests", {"causes": [{"reason": "DisruptionBudget", "message": cause}]})


SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}
