"""The DaemonSet controller: one pod on every node the pod template fits (mikro has one).

Pure parts: whether a template fits a node (`fits_node`, in mikro.node.scheduling), the
daemon pod (`new_pod`), the per-node plan of the
rolling update (`plan_node`) and the status (`daemonset_status`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import (
    REVISION_HASH_LABEL,
    Api,
    Obj,
    guarded,
    owned_by,
    owner_ref,
    pod_available,
    pod_ready,
)
from mikro.controllers.history import CR, Revisions, revision_template, revisions_to_prune, sync_revisions
from mikro.node.scheduling import DAEMON_TOLERATIONS, fits_node

POD, DS, NODE = BY_KIND["Pod"], BY_KIND["DaemonSet"], BY_KIND["Node"]
COMPONENT = "daemonset-controller"
GENERATION_LABEL = "pod-template-generation"


# -- the daemon pod --------------------------------------------------------------------------


def revision_label(rev: Obj) -> str:
    return (rev["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL, "")


def new_pod(ds: Obj, template: Obj, revision_hash: str, node_name: str) -> Obj:
    tmeta = copy.deepcopy(template.get("metadata") or {})
    labels = dict(tmeta.get("labels") or {})
    labels[REVISION_HASH_LABEL] = revision_hash
    labels[GENERATION_LABEL] = str(ds["metadata"].get("generation", 1))
    spec = copy.deepcopy(template.get("spec") or {})
    # Kubernetes pins a daemon pod to its node with a required node affinity on its name.
    affinity = spec.setdefault("affinity", {})
    node_affinity = affinity.setdefault("nodeAffinity", {})
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]
    }
    tolerations = list(spec.get("tolerations") or [])
    for tol in DAEMON_TOLERATIONS:
        if tol not in tolerations:
            tolerations.append(dict(tol))
    spec["tolerations"] = tolerations
    return {
        "metadata": {
            "generateName": ds["metadata"]["name"] + "-",
            "namespace": ds["metadata"]["namespace"],
            "labels": labels,
            "annotations": tmeta.get("annotations") or {},
            "ownerReferences": [owner_ref(ds)],
        },
        "spec": spec,
    }


def pod_node(pod: Obj) -> str | None:
    """The node a daemon pod runs on, or is pinned to before it is scheduled."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return spec["nodeName"]
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    ) or {}
    for term in required.get("nodeSelectorTerms") or []:
        for req in term.get("matchFields") or []:
            if req.get("key") == "metadata.name" and req.get("operator") == "In" and req.get("values"):
                return req["values"][0]
    return None


def _count(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        fraction = int(value[:-1]) * total
        return -(-fraction // 100) if round_up else fraction // 100
    return int(value or 0)


def rolling_limits(ds: Obj, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as counts; at least one of them is positive."""
    rolling = ((ds["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
    surge = _count(rolling.get("maxSurge", 0), desired, round_up=True)
    unavailable = _count(rolling.get("maxUnavailable", 1), desired, round_up=True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


@dataclass
class NodePlan:
    create: bool = False
    delete: list[Obj] = field(default_factory=list)


def plan_node(
    ds: Obj, should_run: bool, pods: list[Obj], update_hash: str, surge: int, may_disrupt: bool, now: datetime
) -> NodePlan:
    """What to do on one node (pure): create the daemon pod, or delete pods."""
    plan = NodePlan()
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    failed = [p for p in live if (p.get("status") or {}).get("phase") == "Failed"]
    plan.delete += failed
    live = [p for p in live if p not in failed]
    if not should_run:
        plan.delete += live
        return plan
    if not live:
        plan.create = not [p for p in pods if p["metadata"].get("deletionTimestamp")] or surge > 0
        return plan
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    new = [p for p in live if (p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) == update_hash]
    old = [p for p in live if p not in new]
    by_age = sorted(live, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    strategy = (ds["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate" or not old:
        plan.delete += by_age[1:]  # one daemon pod a node: keep the oldest
        return plan
    if surge > 0:
        if not new:
            plan.create = True  # surge: the new pod first, the old goes once it is available
        elif any(pod_available(p, min_ready, now) for p in new):
            plan.delete += old
        plan.delete += new[1:]
        return plan
    if may_disrupt or not any(pod_available(p, min_ready, now) for p in old):
        plan.delete += old
    return plan


def daemonset_status(
    ds: Obj, nodes: list[Obj], pods_by_node: dict[str, list[Obj]], update_hash: str, now: datetime
) -> Obj:
    min_ready = int(ds["spec"].get("minReadySeconds") or 0)
    template_spec = (ds["spec"].get("template") or {}).get("spec") or {}
    desired = current = misscheduled = ready = available = updated = 0
    for node in nodes:
        pods = [p for p in pods_by_node.get(node["metadata"]["name"], []) if not p["metadata"].get("deletionTimestamp")]
        should_run, _ = fits_node(template_spec, node, DAEMON_TOLERATIONS)
        if should_run:
            desired += 1
            if pods:
                current += 1
                newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
                if pod_ready(newest):
                    ready += 1
                    if pod_available(newest, min_ready, now):
                        available += 1
                if any((p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) == update_hash for p in pods):
                    updated += 1
        elif pods:
            misscheduled += 1
    status: Obj = {
        "currentNumberScheduled": current,
        "desiredNumberScheduled": desired,
        "numberMisscheduled": misscheduled,
        "numberReady": ready,
        "observedGeneration": ds["metadata"].get("generation", 1),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
    }
    if desired - available > 0:
        status["numberUnavailable"] = desired - available
    if not available:
        status.pop("numberAvailable")
    return status


class DaemonSetController:
    name = "daemonset"

    def sync(self, api: Api, now: datetime) -> None:
        sets = api.list(DS)
        if not sets:
            return  # no pod list to decode (every pass, most clusters)
        pods = api.list(POD)
        nodes = api.list(NODE)
        for ds in sets:
            guarded(self.sync_one, api, ds, pods, nodes, now)

    def sync_one(self, api: Api, ds: Obj, all_pods: list[Obj], nodes: list[Obj], now: datetime) -> None:
        meta = ds["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns, uid = meta["namespace"], meta["uid"]
        revs = sync_revisions(api, ds, (ds["spec"].get("selector") or {}).get("matchLabels") or {})
        update_hash = revision_label(revs.update)
        pods = [p for p in all_pods if p["metadata"]["namespace"] == ns and owned_by(p, uid)]
        self._reconcile(api, ds, nodes, pods, revs, update_hash, now)
        pods = [p for p in api.list(POD, ns) if owned_by(p, uid)]
        status = daemonset_status(ds, nodes, group_by_node(pods), update_hash, now)
        keep = {revs.update["metadata"]["name"]} | {
            r["metadata"]["name"]
            for r in revs.all
            if revision_label(r) in {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) for p in pods}
        }
        for rev in revisions_to_prune(revs.all, keep, int(ds["spec"].get("revisionHistoryLimit", 10))):
            api.delete(CR, ns, rev["metadata"]["name"])
        if status != ds.get("status"):
            ds["status"] = status
            api.update_status(DS, ds)

    def _reconcile(
        self, api: Api, ds: Obj, nodes: list[Obj], pods: list[Obj], revs: Revisions, update_hash: str, now: datetime
    ) -> None:
        ns = ds["metadata"]["namespace"]
        template_spec = (ds["spec"].get("template") or {}).get("spec") or {}
        by_node = group_by_node(pods)
        eligible = [n for n in nodes if fits_node(template_spec, n, DAEMON_TOLERATIONS)[0]]
        surge, max_unavailable = rolling_limits(ds, len(eligible))
        min_ready = int(ds["spec"].get("minReadySeconds") or 0)
        unavailable = sum(
            1
            for n in eligible
            if not any(
                pod_available(p, min_ready, now) and not p["metadata"].get("deletionTimestamp")
                for p in by_node.get(n["metadata"]["name"], [])
            )
        )
        for node in nodes:
            name = node["metadata"]["name"]
            should_run = node in eligible
            plan = plan_node(
                ds, should_run, by_node.get(name, []), update_hash, surge, unavailable < max_unavailable, now
            )
            if plan.create:
                body = new_pod(ds, revision_template(revs.update), update_hash, name)
                created = api.create(POD, ns, body)
                api.event(ds, "SuccessfulCreate", f"Created pod: {created['metadata']['name']}", COMPONENT)
            for pod in plan.delete:
                if pod_available(pod, min_ready, now) and should_run:
                    unavailable += 1
                api.delete(POD, ns, pod["metadata"]["name"])
                api.event(ds, "SuccessfulDelete", f"Deleted pod: {pod['metadata']['name']}", COMPONENT)


def group_by_node(pods: list[Obj]) -> dict[str, list[Obj]]:
    out: dict[str, list[Obj]] = {}
    for pod in pods:
        node = pod_node(pod)
        if node:
            out.setdefault(node, []).append(pod)
    return out
