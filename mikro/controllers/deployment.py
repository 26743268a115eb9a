"""The Deployment controller: one ReplicaSet per pod template, rolled by the strategy.

`DeploymentController` makes and scales the ReplicaSets; `DeploymentStatusController` runs
after the ReplicaSet controller in the same pass and reports what the ReplicaSets counted.
The rollout arithmetic (`rollout_limits`, `surge_room`, `scale_down_old`) and the status
(`deployment_status`) are pure functions.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from mikro.api.defaults import parse_int_or_percent
from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import (
    HASH_LABEL,
    Api,
    Obj,
    guarded,
    owned_by,
    owner_ref,
    rfc3339,
    template_hash,
    template_without_hash,
)
from mikro.errors import ApiError

POD, RS, DEPLOY = BY_KIND["Pod"], BY_KIND["ReplicaSet"], BY_KIND["Deployment"]
REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
COMPONENT = "deployment-controller"


def current_replicaset(template: Obj, rss: list[Obj]) -> Obj | None:
    """The ReplicaSet whose pod template is the Deployment's (its hash label aside)."""
    return next((rs for rs in rss if template_without_hash(rs["spec"]["template"]) == template), None)


def rs_sorted_key(rs: Obj) -> tuple[int, str]:
    return (
        int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")),
        rs["metadata"].get("creationTimestamp", ""),
    )


def revision_of(obj: Obj) -> int:
    return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))


def rollout_limits(deploy: Obj) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as counts, from spec.strategy.rollingUpdate."""
    replicas = int(deploy["spec"].get("replicas", 1))
    rolling = (deploy["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    surge = parse_int_or_percent(rolling.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = parse_int_or_percent(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def surge_room(deploy: Obj, rss: list[Obj]) -> int:
    """How many more pods the ReplicaSets may be given before passing replicas + maxSurge."""
    surge, _ = rollout_limits(deploy)
    replicas = int(deploy["spec"].get("replicas", 1))
    return replicas + surge - sum(int(rs["spec"].get("replicas", 0)) for rs in rss)


def available_of(rs: Obj) -> int:
    return int((rs.get("status") or {}).get("availableReplicas", 0))


def scale_down_old(deploy: Obj, new_rs: Obj, old: list[Obj]) -> list[tuple[Obj, int]]:
    """The old ReplicaSets' new sizes (oldest first) keeping replicas - maxUnavailable available."""
    replicas = int(deploy["spec"].get("replicas", 1))
    _, max_unavailable = rollout_limits(deploy)
    available = sum(available_of(rs) for rs in old + [new_rs])
    removable = available - (replicas - max_unavailable)
    out = []
    for rs in old:
        count = int(rs["spec"].get("replicas", 0))
        if not count:
            continue
        # Pods of an old ReplicaSet that are not available can go at once: they serve nothing.
        unavailable_here = max(count - available_of(rs), 0)
        cut = min(count, max(removable, 0) + unavailable_here)
        if cut <= 0:
            continue
        out.append((rs, count - cut))
        removable -= max(cut - unavailable_here, 0)
    return out


def new_replicaset_body(deploy: Obj, old: list[Obj], revision: int) -> Obj:
    meta, spec = deploy["metadata"], deploy["spec"]
    template = spec.get("template") or {}
    replicas = int(spec.get("replicas", 1))
    h = template_hash(template)
    tpl = copy.deepcopy(template)
    tpl.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
    selector = copy.deepcopy(spec["selector"])
    selector.setdefault("matchLabels", {})[HASH_LABEL] = h
    start = replicas if not old else 0
    if (spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and old:
        start = min(replicas, max(0, surge_room(deploy, old)))
    annotations = {REVISION: str(revision)}
    cause = (meta.get("annotations") or {}).get(CHANGE_CAUSE)
    if cause:
        annotations[CHANGE_CAUSE] = cause
    return {
        "metadata": {
            "name": f"{meta['name']}-{h}",
            "namespace": meta["namespace"],
            "labels": tpl["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [owner_ref(deploy)],
        },
        "spec": {
            "replicas": start,
            "selector": selector,
            "template": tpl,
            "minReadySeconds": spec.get("minReadySeconds", 0),
        },
    }


def owned_replicasets(api: Api, deploy: Obj, by_owner: dict[str, list[Obj]] | None = None) -> list[Obj]:
    """The Deployment's ReplicaSets, oldest first; `by_owner` (see `replicasets_by_owner`)
    instead of a list of the namespace's ReplicaSets for each Deployment."""
    ns, uid = deploy["metadata"]["namespace"], deploy["metadata"]["uid"]
    candidates = api.list(RS, ns) if by_owner is None else by_owner.get(uid, [])
    return sorted(
        [rs for rs in candidates if rs["metadata"]["namespace"] == ns and owned_by(rs, uid)], key=rs_sorted_key
    )


def replicasets_by_owner(api: Api) -> dict[str, list[Obj]]:
    """Every ReplicaSet under the uid of each of its owners, from one list for a whole pass:
    a list of the namespace per Deployment decoded 100 x 100 ReplicaSets per pass, twice,
    the idle control plane's largest cost (9.6% of a CPU with 100 Deployments). A pass over
    one Deployment changes only that Deployment's ReplicaSets, so the others' stay true."""
    out: dict[str, list[Obj]] = {}
    for rs in api.list(RS):
        for uid in {ref.get("uid") for ref in rs["metadata"].get("ownerReferences") or []}:
            out.setdefault(str(uid), []).append(rs)
    return out


class DeploymentController:
    name = "deployment"

    def sync(self, api: Api, now: datetime) -> None:
        by_owner = replicasets_by_owner(api)
        for deploy in api.list(DEPLOY):
            guarded(self.sync_one, api, deploy, by_owner)

    def sync_one(self, api: Api, deploy: Obj, by_owner: dict[str, list[Obj]] | None = None) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        if meta.get("deletionTimestamp"):
            return
        ns = meta["namespace"]
        rss = owned_replicasets(api, deploy, by_owner)
        new_rs = current_replicaset(spec.get("template") or {}, rss)
        old = [rs for rs in rss if rs is not new_rs]
        replicas = int(spec.get("replicas", 1))
        max_revision = max([revision_of(rs) for rs in rss] + [0])
        paused = bool(spec.get("paused"))
        if new_rs is None and not paused:
            body = new_replicaset_body(deploy, old, max_revision + 1)
            try:
                new_rs = api.create(RS, ns, body)
            except ApiError as err:
                if err.code != 409:
                    raise
                # A ReplicaSet of that name survived its Deployment (orphaned): adopt it.
                found = api.find(RS, ns, body["metadata"]["name"])
                if found is None:
                    raise
                found["metadata"]["ownerReferences"] = [owner_ref(deploy)]
                found["metadata"].setdefault("annotations", {})[REVISION] = str(max_revision + 1)
                new_rs = api.update(RS, found)
            api.event(
                deploy,
                "ScalingReplicaSet",
                f"Scaled up replica set {new_rs['metadata']['name']} to {body['spec']['replicas']}",
                COMPONENT,
            )
        elif new_rs is not None and revision_of(new_rs) != max_revision and old and not paused:
            # Rolled back to an older template: it becomes the newest revision again.
            new_rs["metadata"].setdefault("annotations", {})[REVISION] = str(max_revision + 1)
            new_rs = api.update(RS, new_rs)
        if new_rs is None or paused:
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            self._recreate(api, deploy, new_rs, old, replicas)
        else:
            self._rolling(api, deploy, new_rs, old, replicas)
        self._cleanup(api, deploy, old)

    def _scale(self, api: Api, deploy: Obj, rs: Obj, count: int) -> None:
        current = int(rs["spec"].get("replicas", 0))
        if current == count:
            return
        rs["spec"]["replicas"] = count
        api.update(RS, rs)
        verb = "up" if count > current else "down"
        api.event(
            deploy,
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {rs['metadata']['name']} to {count} from {current}",
            COMPONENT,
        )

    def _rolling(self, api: Api, deploy: Obj, new_rs: Obj, old: list[Obj], replicas: int) -> None:
        if not any(int(rs["spec"].get("replicas", 0)) for rs in old):
            self._scale(api, deploy, new_rs, replicas)
            return
        new_count = int(new_rs["spec"].get("replicas", 0))
        if new_count < replicas:
            room = surge_room(deploy, old + [new_rs])
            if room > 0:
                self._scale(api, deploy, new_rs, min(replicas, new_count + room))
        elif new_count > replicas:
            self._scale(api, deploy, new_rs, replicas)
        for rs, count in scale_down_old(deploy, new_rs, old):
            self._scale(api, deploy, rs, count)

    def _recreate(self, api: Api, deploy: Obj, new_rs: Obj, old: list[Obj], replicas: int) -> None:
        for rs in old:
            self._scale(api, deploy, rs, 0)
        old_uids = {rs["metadata"]["uid"] for rs in old}
        remaining = [
            p for p in api.list(POD, deploy["metadata"]["namespace"]) if any(owned_by(p, uid) for uid in old_uids)
        ]
        if not remaining:
            self._scale(api, deploy, new_rs, replicas)

    def _cleanup(self, api: Api, deploy: Obj, old: list[Obj]) -> None:
        limit = int(deploy["spec"].get("revisionHistoryLimit", 10))
        idle = [
            rs
            for rs in old
            if not int(rs["spec"].get("replicas", 0)) and not int((rs.get("status") or {}).get("replicas", 0))
        ]
        for rs in idle[: max(len(idle) - limit, 0)]:
            api.delete(RS, rs["metadata"]["namespace"], rs["metadata"]["name"])


def condition(old_conditions: dict[str, Obj], stamp: str, ctype: str, status: str, reason: str, message: str) -> Obj:
    """A condition keeping its times while its status (transition) or text (update) is unchanged."""
    prev = old_conditions.get(ctype)
    changed = not prev or prev.get("status") != status
    same = prev and prev.get("reason") == reason and prev.get("message") == message
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "message": message,
        "lastUpdateTime": prev["lastUpdateTime"] if same and prev else stamp,
        "lastTransitionTime": stamp if changed or not prev else prev["lastTransitionTime"],
    }


def deployment_status(deploy: Obj, rss: list[Obj], now: datetime) -> Obj:
    """The Deployment's status from its ReplicaSets' (pure)."""
    meta, spec = deploy["metadata"], deploy["spec"]
    new_rs = current_replicaset(spec.get("template") or {}, rss)
    statuses = [rs.get("status") or {} for rs in rss]
    replicas = int(spec.get("replicas", 1))
    total = sum(s.get("replicas", 0) for s in statuses)
    ready = sum(s.get("readyReplicas", 0) for s in statuses)
    available = sum(s.get("availableReplicas", 0) for s in statuses)
    updated = (new_rs.get("status") or {}).get("replicas", 0) if new_rs else 0
    new_ready = (new_rs.get("status") or {}).get("availableReplicas", 0) if new_rs else 0
    recreate = (spec.get("strategy") or {}).get("type") == "Recreate"
    _, max_unavailable = (0, 0) if recreate else rollout_limits(deploy)
    old_conditions = {c["type"]: c for c in (deploy.get("status") or {}).get("conditions") or []}
    stamp = rfc3339(now)
    is_available = available >= replicas - max_unavailable
    complete = new_rs is not None and updated == replicas and total == replicas and new_ready == replicas
    rs_name = new_rs["metadata"]["name"] if new_rs else meta["name"]
    conditions = [
        condition(
            old_conditions,
            stamp,
            "Available",
            "True" if is_available else "False",
            "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if is_available
            else "Deployment does not have minimum availability.",
        ),
        condition(
            old_conditions,
            stamp,
            "Progressing",
            "True",
            "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
            f'ReplicaSet "{rs_name}" has successfully progressed.'
            if complete
            else f'ReplicaSet "{rs_name}" is progressing.',
        ),
    ]
    status: dict[str, Any] = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "conditions": conditions,
    }
    if total - available > 0:
        status["unavailableReplicas"] = total - available
    for key in ("readyReplicas", "availableReplicas", "updatedReplicas", "replicas"):
        if not status[key]:
            status.pop(key)
    return status


class DeploymentStatusController:
    """Runs after the ReplicaSet controller, so a pass reports the counts it just made."""

    name = "deployment-status"

    def sync(self, api: Api, now: datetime) -> None:
        by_owner = replicasets_by_owner(api)
        for deploy in api.list(DEPLOY):
            guarded(self.sync_one, api, deploy, now, by_owner)

    def sync_one(self, api: Api, deploy: Obj, now: datetime, by_owner: dict[str, list[Obj]] | None = None) -> None:
        meta = deploy["metadata"]
        rss = owned_replicasets(api, deploy, by_owner)
        status = deployment_status(deploy, rss, now)
        new_rs = current_replicaset(deploy["spec"].get("template") or {}, rss)
        revision = (new_rs or {}).get("metadata", {}).get("annotations", {}).get(REVISION)
        if revision and (meta.get("annotations") or {}).get(REVISION) != revision:
            fresh = api.find(DEPLOY, meta["namespace"], meta["name"])
            if fresh is None:
                return
            fresh["metadata"].setdefault("annotations", {})[REVISION] = revision
            deploy = api.update(DEPLOY, fresh)
        if status != deploy.get("status"):
            deploy["status"] = status
            api.update_status(DEPLOY, deploy)
