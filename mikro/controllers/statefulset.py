"""The StatefulSet controller: pods with a stable identity `<set>-<ordinal>`, their own
claims `<template>-<set>-<ordinal>`, started and stopped in order.

Pure parts: the identity of a slot (`pod_name`, `claim_name`, `new_pod`), which revision a
new pod gets (`revision_for_ordinal`), the status (`statefulset_status`) and the claims'
owners (`claim_owner_refs`). `StatefulSetController.sync_one` follows Kubernetes'
`updateStatefulSet`: replace failed pods, create missing ones (OrderedReady: one at a time,
each Running and Ready before the next; Parallel: all at once), remove condemned ones from
the highest ordinal, then roll pods of an old revision from the highest ordinal down to
`partition`, at most `maxUnavailable` at a time; OnDelete leaves that to the user.
"""

from __future__ import annotations

import copy
import re
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
    pod_running,
)
from mikro.controllers.history import CR, Revisions, revision_template, revisions_to_prune, sync_revisions

POD, STS, PVC = BY_KIND["Pod"], BY_KIND["StatefulSet"], BY_KIND["PersistentVolumeClaim"]
COMPONENT = "statefulset-controller"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


# -- identity --------------------------------------------------------------------------------


def pod_name(sts: Obj, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(template_name: str, sts: Obj, ordinal: int) -> str:
    return f"{template_name}-{pod_name(sts, ordinal)}"


def ordinal_of(sts: Obj, pod: Obj) -> int | None:
    """The ordinal in `<set>-<n>`, or None for a pod that is not one of the set's slots."""
    m = re.fullmatch(re.escape(sts["metadata"]["name"]) + r"-(0|[1-9][0-9]*)", pod["metadata"]["name"])
    return int(m.group(1)) if m else None


def start_ordinal(sts: Obj) -> int:
    return int(((sts["spec"].get("ordinals") or {}).get("start")) or 0)


def pod_revision(pod: Obj) -> str | None:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL)


def terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def finished(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def healthy(pod: Obj) -> bool:
    """Running and Ready, and not going away: what OrderedReady waits for."""
    return pod_running(pod) and pod_ready(pod) and not terminating(pod)


def claim_templates(sts: Obj) -> list[Obj]:
    return list(sts["spec"].get("volumeClaimTemplates") or [])


def new_pod(sts: Obj, template: Obj, revision_name: str, ordinal: int) -> Obj:
    """The pod of one slot: the template, its identity labels, hostname and claims."""
    tmeta = copy.deepcopy(template.get("metadata") or {})
    name = pod_name(sts, ordinal)
    labels = dict(tmeta.get("labels") or {})
    labels.update({POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal), REVISION_HASH_LABEL: revision_name})
    spec = copy.deepcopy(template.get("spec") or {})
    spec["hostname"] = name
    if sts["spec"].get("serviceName"):
        spec["subdomain"] = sts["spec"]["serviceName"]
    volumes = [
        v
        for v in spec.get("volumes") or []
        if v.get("name") not in {t["metadata"]["name"] for t in claim_templates(sts)}
    ]
    for tpl in claim_templates(sts):
        volumes.append(
            {
                "name": tpl["metadata"]["name"],
                "persistentVolumeClaim": {"claimName": claim_name(tpl["metadata"]["name"], sts, ordinal)},
            }
        )
    if volumes:
        spec["volumes"] = volumes
    return {
        "metadata": {
            "name": name,
            "namespace": sts["metadata"]["namespace"],
            "labels": labels,
            "annotations": tmeta.get("annotations") or {},
            "ownerReferences": [owner_ref(sts)],
        },
        "spec": spec,
    }


def retention_policy(sts: Obj) -> tuple[str, str]:
    policy = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted", "Retain"), policy.get("whenScaled", "Retain")


def claim_owner_refs(sts: Obj, pod: Obj | None, condemned: bool) -> list[Obj]:
    """Who owns a slot's claim under persistentVolumeClaimRetentionPolicy: the pod of a
    condemned slot when whenScaled is Delete, else the set when whenDeleted is Delete."""
    when_deleted, when_scaled = retention_policy(sts)
    if when_scaled == "Delete" and condemned and pod is not None:
        # Only the pod: when it goes, the claim goes (the set still living must not keep it).
        return [{**owner_ref(pod), "controller": False}]
    return [{**owner_ref(sts), "controller": True}] if when_deleted == "Delete" else []


def new_claim(sts: Obj, tpl: Obj, ordinal: int, pod: Obj | None) -> Obj:
    labels = dict((tpl.get("metadata") or {}).get("labels") or {})
    labels.update((sts["spec"].get("selector") or {}).get("matchLabels") or {})
    body: Obj = {
        "metadata": {
            "name": claim_name(tpl["metadata"]["name"], sts, ordinal),
            "namespace": sts["metadata"]["namespace"],
            "labels": labels,
        },
        "spec": copy.deepcopy(tpl.get("spec") or {}),
    }
    if (tpl.get("metadata") or {}).get("annotations"):
        body["metadata"]["annotations"] = copy.deepcopy(tpl["metadata"]["annotations"])
    refs = claim_owner_refs(sts, pod, condemned=False)
    if refs:
        body["metadata"]["ownerReferences"] = refs
    return body


def revision_for_ordinal(sts: Obj, ordinal: int, revs: Revisions) -> Obj:
    """Which revision a (re)created pod gets: below `partition` the current one, else the update."""
    strategy = sts["spec"].get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") == "RollingUpdate":
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if ordinal < start_ordinal(sts) + partition:
            return revs.current
    return revs.update


def max_unavailable(sts: Obj) -> int:
    replicas = int(sts["spec"].get("replicas", 1))
    rolling = ((sts["spec"].get("updateStrategy") or {}).get("rollingUpdate")) or {}
    value: Any = rolling.get("maxUnavailable", 1)
    if isinstance(value, str) and value.endswith("%"):
        count = int(value[:-1]) * replicas // 100
    else:
        count = int(value)
    return max(count, 1)


def statefulset_status(sts: Obj, pods: list[Obj], revs: Revisions, now: datetime) -> Obj:
    """Status as Kubernetes' computeReplicaStatus, with the rollout completed when every
    replica is updated and ready (RollingUpdate)."""
    min_ready = int(sts["spec"].get("minReadySeconds") or 0)
    current, update = revs.current["metadata"]["name"], revs.update["metadata"]["name"]
    counts = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0}
    for pod in pods:
        created = bool((pod.get("status") or {}).get("phase"))
        if created:
            counts["replicas"] += 1
        if pod_running(pod) and pod_ready(pod):
            counts["readyReplicas"] += 1
            if pod_available(pod, min_ready, now):
                counts["availableReplicas"] += 1
        if created and not terminating(pod):
            if pod_revision(pod) == current:
                counts["currentReplicas"] += 1
            if pod_revision(pod) == update:
                counts["updatedReplicas"] += 1
    replicas = int(sts["spec"].get("replicas", 1))
    strategy = (sts["spec"].get("updateStrategy") or {}).get("type", "RollingUpdate")
    if (
        strategy == "RollingUpdate"
        and counts["updatedReplicas"] == replicas
        and counts["readyReplicas"] == replicas
        and counts["replicas"] == replicas
    ):
        current = update
        counts["currentReplicas"] = counts["updatedReplicas"]
    status: Obj = {
        "observedGeneration": sts["metadata"].get("generation", 1),
        **counts,
        "currentRevision": current,
        "updateRevision": update,
        "collisionCount": revs.collision_count,
    }
    return status


# -- the controller --------------------------------------------------------------------------


class StatefulSetController:
    name = "statefulset"

    def sync(self, api: Api, now: datetime) -> None:
        sets = api.list(STS)
        if not sets:
            return  # no pod list to decode (every pass, most clusters)
        pods = api.list(POD)
        for sts in sets:
            guarded(self.sync_one, api, sts, pods, now)

    def sync_one(self, api: Api, sts: Obj, all_pods: list[Obj], now: datetime) -> None:
        meta = sts["metadata"]
        if meta.get("deletionTimestamp"):
            return
        ns, uid = meta["namespace"], meta["uid"]
        selector_labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
        revs = sync_revisions(api, sts, selector_labels)
        pods = [p for p in all_pods if p["metadata"]["namespace"] == ns and owned_by(p, uid)]
        self._reconcile_pods(api, sts, pods, revs, now)
        # Status from what exists now (pods created or deleted above included).
        pods = [p for p in api.list(POD, ns) if owned_by(p, uid)]
        status = statefulset_status(sts, pods, revs, now)
        keep = {status["currentRevision"], status["updateRevision"]} | {pod_revision(p) or "" for p in pods}
        limit = int(sts["spec"].get("revisionHistoryLimit", 10))
        for rev in revisions_to_prune(revs.all, keep, limit):
            api.delete(CR, ns, rev["metadata"]["name"])
        if status != sts.get("status"):
            sts["status"] = status
            api.update_status(STS, sts)

    def _reconcile_pods(self, api: Api, sts: Obj, pods: list[Obj], revs: Revisions, now: datetime) -> None:
        ns = sts["metadata"]["namespace"]
        replicas = int(sts["spec"].get("replicas", 1))
        first = start_ordinal(sts)
        ordered = (sts["spec"].get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        slots: dict[int, Obj] = {}
        condemned: list[Obj] = []
        for pod in pods:
            ordinal = ordinal_of(sts, pod)
            if ordinal is not None and first <= ordinal < first + replicas:
                slots[ordinal] = pod
            else:
                condemned.append(pod)
        condemned.sort(key=lambda p: ordinal_of(sts, p) or -1, reverse=True)

        # 1. Slots: replace failed pods, create missing ones (with their claims).
        for ordinal in range(first, first + replicas):
            pod = slots.get(ordinal)
            if pod is not None and finished(pod) and not terminating(pod):
                self._deleted(api, sts, pod)
                if ordered:
                    return
                continue
            if pod is None:
                rev = revision_for_ordinal(sts, ordinal, revs)
                body = new_pod(sts, revision_template(rev), rev["metadata"]["name"], ordinal)
                self._ensure_claims(api, sts, ordinal, None, condemned=False)
                api.create(POD, ns, body)
                api.event(
                    sts,
                    "SuccessfulCreate",
                    f"create Pod {body['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful",
                    COMPONENT,
                )
                if ordered:
                    return  # the next waits for this one to be Running and Ready
                continue
            self._ensure_claims(api, sts, ordinal, pod, condemned=False)
            if ordered and not healthy(pod):
                return  # OrderedReady: nothing further while a pod is not Running and Ready

        # 2. Condemned pods (beyond replicas): from the highest ordinal.
        for pod in condemned:
            if terminating(pod):
                if ordered:
                    return  # wait until it is gone
                continue
            if ordered and any(not healthy(p) for p in slots.values()):
                return
            ordinal = ordinal_of(sts, pod)
            if ordinal is not None:
                self._ensure_claims(api, sts, ordinal, pod, condemned=True)
            self._deleted(api, sts, pod)
            if ordered:
                return

        # 3. Rolling update: highest ordinal first down to the partition.
        strategy = sts["spec"].get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        budget = max_unavailable(sts)
        min_ready = int(sts["spec"].get("minReadySeconds") or 0)
        unavailable = sum(1 for p in slots.values() if not healthy(p) or not pod_available(p, min_ready, now))
        update = revs.update["metadata"]["name"]
        for ordinal in range(first + replicas - 1, first + partition - 1, -1):
            if unavailable >= budget:
                return
            pod = slots.get(ordinal)
            if pod is None or terminating(pod) or pod_revision(pod) == update:
                continue
            self._deleted(api, sts, pod)
            unavailable += 1 if healthy(pod) else 0

    def _deleted(self, api: Api, sts: Obj, pod: Obj) -> None:
        api.delete(POD, sts["metadata"]["namespace"], pod["metadata"]["name"])
        api.event(
            sts,
            "SuccessfulDelete",
            f"delete Pod {pod['metadata']['name']} in StatefulSet {sts['metadata']['name']} successful",
            COMPONENT,
        )

    def _ensure_claims(self, api: Api, sts: Obj, ordinal: int, pod: Obj | None, condemned: bool) -> None:
        ns = sts["metadata"]["namespace"]
        for tpl in claim_templates(sts):
            name = claim_name(tpl["metadata"]["name"], sts, ordinal)
            claim = api.find(PVC, ns, name)
            if claim is None:
                api.create(PVC, ns, new_claim(sts, tpl, ordinal, pod))
                api.event(
                    sts,
                    "SuccessfulCreate",
                    f"create Claim {name} Pod {pod_name(sts, ordinal)} in StatefulSet {sts['metadata']['name']} success",
                    COMPONENT,
                )
                continue
            want = claim_owner_refs(sts, pod, condemned)
            have = claim["metadata"].get("ownerReferences") or []
            slot = pod_name(sts, ordinal)
            # References not ours are kept; a stale one to an earlier pod of the slot is dropped.
            kept = [
                r
                for r in have
                if r.get("uid") != sts["metadata"]["uid"] and not (r.get("kind") == "Pod" and r.get("name") == slot)
            ]
            refs = kept + want
            if [r.get("uid") for r in refs] != [r.get("uid") for r in have]:
                claim["metadata"]["ownerReferences"] = refs
                api.update(PVC, claim)
