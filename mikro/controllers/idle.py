"""When the controllers' loop must look again although nothing changed.

Every change wakes a pass, so an idle cluster needs none, except where a controller's answer
moves with the clock alone: a pod of a StatefulSet or DaemonSet with `minReadySeconds`
becomes available that long after it became Ready, with no write announcing it (Kubernetes'
controllers enqueue the set again after that delay). Job, CronJob and volume passes answer
their own next time (`batch_hook.Reconciler`). A pass in which a write failed for another
reason than a race (404, 409: the winner's write wakes the next pass) looks again soon.
"""

from __future__ import annotations

from datetime import datetime

from mikro.controllers.helpers import Obj, controller_uid, parse_time, pod_ready

# The kinds whose status counts pods available after `minReadySeconds` (helpers.pod_available).
MIN_READY_KINDS = ("StatefulSet", "DaemonSet")


def until_available(pods: list[Obj], min_ready: dict[str, int], now: datetime) -> float | None:
    """Seconds until the first pod that is Ready but not yet available becomes available,
    for pods whose controller (by uid) has a `minReadySeconds` in `min_ready`; None when no
    pod waits so (pure)."""
    first: float | None = None
    for pod in pods:
        seconds = min_ready.get(controller_uid(pod) or "", 0)
        if seconds <= 0 or not pod_ready(pod):
            continue
        for cond in (pod.get("status") or {}).get("conditions") or []:
            if cond.get("type") != "Ready":
                continue
            since = parse_time(cond.get("lastTransitionTime"))
            if since is None:
                break
            left = seconds - (now - since).total_seconds()
            if left > 0:  # (at 0 the pass that computed `now` counted it available)
                first = left if first is None else min(first, left)
            break
    return first


def min_ready_of(sets: list[Obj]) -> dict[str, int]:
    """uid -> minReadySeconds of the sets that have one (pure)."""
    out = {}
    for obj in sets:
        seconds = int((obj.get("spec") or {}).get("minReadySeconds") or 0)
        if seconds > 0 and not obj["metadata"].get("deletionTimestamp"):
            out[obj["metadata"]["uid"]] = seconds
    return out
