"""The scheduler's predicates for mikro's one node: whether a pod's spec may run on a node
(nodeSelector, required node affinity, taints against tolerations). Pure; shared by the
DaemonSet controller and the kubelet's scheduling step, as kube-scheduler's plugins are."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
# Tolerations Kubernetes adds to every daemon pod, so node conditions do not evict it.
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
]


def _requirement_matches(req: Obj, values: dict[str, str]) -> bool:
    key, op, wanted = req.get("key", ""), req.get("operator", ""), req.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def _term_matches(term: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    fields = {"metadata.name": node["metadata"]["name"]}
    exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not field_exprs:
        return False  # an empty term matches nothing
    return all(_requirement_matches(r, labels) for r in exprs) and all(
        _requirement_matches(r, fields) for r in field_exprs
    )


def tolerates(tolerations: list[Obj], taint: Obj) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("operator", "Equal") == "Exists":
            if not tol.get("key") or tol.get("key") == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def fits_node(pod_spec: Obj, node: Obj, added_tolerations: list[Obj] | None = None) -> tuple[bool, str]:
    """Whether a pod of this spec may run on the node, and why not (kube-scheduler's words);
    `added_tolerations` are those a controller adds to its pods (the DaemonSet's)."""
    labels = node["metadata"].get("labels") or {}
    for key, value in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return False, "node(s) didn't match Pod's node affinity/selector"
    required = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
            "requiredDuringSchedulingIgnoredDuringExecution"
        )
    ) or {}
    terms = required.get("nodeSelectorTerms")
    if terms is not None and not any(_term_matches(t, node) for t in terms):
        return False, "node(s) didn't match Pod's node affinity/selector"
    tolerations = list(pod_spec.get("tolerations") or []) + list(added_tolerations or [])
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return False, f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value', '')}}}"
    return True, ""


UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def unfit_reason(pod_spec: Obj, node: Obj) -> str:
    """Why kube-scheduler's filters leave a pod off the node ('' when it fits): a cordoned node
    (`spec.unschedulable`, as `kubectl cordon` and `drain` set it) unless the pod tolerates
    the unschedulable taint, then the selector, affinity and taints."""
    tolerations = list(pod_spec.get("tolerations") or [])
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(tolerations, UNSCHEDULABLE_TAINT):
        return "node(s) were unschedulable"
    return fits_node(pod_spec, node)[1]
