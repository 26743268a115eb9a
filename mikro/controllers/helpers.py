"""What every controller shares: the seam its writes go through, owner references, pod
readiness, template hashes and the clock.

A controller reads and writes only through `Api`, a small Protocol: `ClusterApi` implements
it over the registry (so objects a controller creates are defaulted and validated exactly as
kubectl's), and tests wrap it with a recorder that lists the actions of each pass.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from mikro.api.registry import Registry
from mikro.api.resources import Resource
from mikro.errors import ApiError

log = logging.getLogger("mikro.controllers")

Obj = dict[str, Any]
Clock = Callable[[], datetime]

HASH_LABEL = "pod-template-hash"
REVISION_HASH_LABEL = "controller-revision-hash"
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)  # fractions dropped
    except ValueError:
        return None


class Api(Protocol):
    """The only way a controller touches the cluster: reads, and the writes it may make."""

    def list(self, res: Resource, ns: str | None = None) -> list[Obj]: ...

    def find(self, res: Resource, ns: str, name: str) -> Obj | None: ...

    def create(self, res: Resource, ns: str, body: Obj) -> Obj: ...

    def update(self, res: Resource, obj: Obj) -> Obj: ...

    def update_status(self, res: Resource, obj: Obj) -> Obj: ...

    def delete(self, res: Resource, ns: str, name: str) -> None: ...

    def remove(self, res: Resource, ns: str, name: str) -> None:
        """Remove at once (the last step of a graceful deletion, e.g. an emptied namespace)."""
        ...

    def event(self, obj: Obj, reason: str, message: str, component: str, type_: str = "Normal") -> None: ...


class ClusterApi:
    """`Api` over the registry: creates and deletions take the API's path; a controller's
    own updates (scale, annotations, status) are written as the controller-manager does."""

    def __init__(self, registry: Registry) -> None:
        self.reg = registry
        self.store = registry.store

    def list(self, res: Resource, ns: str | None = None) -> list[Obj]:
        return self.store.list(res, ns)[0]

    def find(self, res: Resource, ns: str, name: str) -> Obj | None:
        return self.store.find(res, ns, name)

    def create(self, res: Resource, ns: str, body: Obj) -> Obj:
        return self.reg.create(res, ns, body)

    def update(self, res: Resource, obj: Obj) -> Obj:
        return self.store.update(res, obj)

    def update_status(self, res: Resource, obj: Obj) -> Obj:
        return self.store.update(res, obj, status_only=True)

    def delete(self, res: Resource, ns: str, name: str) -> None:
        self.reg.delete(res, ns, name)

    def remove(self, res: Resource, ns: str, name: str) -> None:
        self.store.delete(res, ns, name)

    def event(self, obj: Obj, reason: str, message: str, component: str, type_: str = "Normal") -> None:
        self.reg.events.record(obj, reason, message, type_, component)


class Failures:
    """How many reconciles failed for another reason than a race, so far (the manager looks
    again soon after a pass that added to it)."""

    count = 0


failures = Failures()


def guarded(fn: Callable[..., Any], *args: Any) -> None:
    """Run one object's reconcile; a 404 or 409 means it raced, the next pass sees the new state."""
    try:
        fn(*args)
    except ApiError as err:
        if err.code not in (404, 409):
            failures.count += 1
            log.warning("%s: %s", getattr(fn, "__qualname__", fn), err.message)


def short_hash(value: Any, length: int = 10) -> str:
    """A stable, name-safe hash of any JSON value."""
    digest = int(hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest(), 16)
    out = ""
    for _ in range(length):
        digest, rem = divmod(digest, len(SAFE_ALPHABET))
        out += SAFE_ALPHABET[rem]
    return out


def template_hash(template: Obj) -> str:
    """A stable, name-safe hash of a pod template (the `pod-template-hash` label)."""
    return short_hash(template)


def owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


def controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("uid")
    return None


def owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return False


def pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least `minReadySeconds` (the Ready condition's transition time)."""
    if not pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            since = parse_time(cond.get("lastTransitionTime"))
            return since is None or (now - since).total_seconds() >= min_ready_seconds
    return False


def pod_running(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return not pod["metadata"].get("deletionTimestamp") and phase not in ("Succeeded", "Failed")


def template_without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    labels = (t.get("metadata") or {}).get("labels") or {}
    labels.pop(HASH_LABEL, None)
    return t


def pod_from_template(template: Obj, owner: Obj, ns: str) -> Obj:
    """A pod body as a controller creates it: the template's labels, annotations and spec."""
    tmeta = copy.deepcopy(template.get("metadata") or {})
    return {
        "metadata": {
            "namespace": ns,
            "labels": tmeta.get("labels") or {},
            "annotations": tmeta.get("annotations") or {},
            "ownerReferences": [owner_ref(owner)],
        },
        "spec": copy.deepcopy(template.get("spec") or {}),
    }
