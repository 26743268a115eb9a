"""The garbage collector: dependents whose every owner is gone are deleted (background
propagation), and Endpoints whose Service is gone."""

from __future__ import annotations

from datetime import datetime

from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import Api, Obj

SVC, EP = BY_KIND["Service"], BY_KIND["Endpoints"]
# Kinds whose objects own others, and kinds whose objects are owned.
OWNER_KINDS = ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicationController", "Pod")
DEPENDENT_KINDS = ("ReplicaSet", "Pod", "ControllerRevision", "PersistentVolumeClaim")


def orphaned(objects: list[Obj], live_uids: set[str]) -> list[Obj]:
    """Objects with owner references, none of which names a live object (pure)."""
    return [
        obj
        for obj in objects
        if (refs := obj["metadata"].get("ownerReferences") or [])
        and not any(ref.get("uid") in live_uids for ref in refs)
        and not obj["metadata"].get("deletionTimestamp")
    ]


class GarbageCollector:
    name = "garbagecollector"

    def sync(self, api: Api, now: datetime) -> None:
        # Pods and ReplicaSets are owners and dependents: listed (decoded) once a pass, not twice.
        listed = {kind: api.list(BY_KIND[kind]) for kind in dict.fromkeys((*OWNER_KINDS, *DEPENDENT_KINDS))}
        uids: set[str] = set()
        for kind in OWNER_KINDS:
            uids |= {o["metadata"]["uid"] for o in listed[kind]}
        for kind in DEPENDENT_KINDS:
            for obj in orphaned(listed[kind], uids):
                api.delete(BY_KIND[kind], obj["metadata"]["namespace"], obj["metadata"]["name"])
        services = {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in api.list(SVC)}
        for ep in api.list(EP):
            if (ep["metadata"]["namespace"], ep["metadata"]["name"]) not in services:
                api.delete(EP, ep["metadata"]["namespace"], ep["metadata"]["name"])
