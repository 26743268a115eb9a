"""The Job controller (batch/v1): pods run to completion, as pkg/controller/job does.

`plan(job, pods, now)` is pure: from a Job and its pods it computes the pods to create and to
delete, the status to write, the events to record and when to look again. `JobController`
applies a plan through a narrow `Control`, so tests drive the state machine with a fake one
and a clock of their own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from mikro.api import batch
from mikro.api.resources import BY_KIND
from mikro.controllers.helpers import owner_ref, rfc3339
from mikro.controllers.helpers import parse_time as parse_rfc3339

JOB, POD = BY_KIND["Job"], BY_KIND["Pod"]
BACKOFF_INITIAL = 10.0  # seconds; DefaultJobPodFailureBackOff
BACKOFF_MAX = 600.0  # MaxJobPodFailureBackOff (10 minutes)
COMPONENT = "job-controller"

MSG_BACKOFF = "Job has reached the specified backoff limit"
MSG_DEADLINE = "Job was active longer than specified deadline"
MSG_COMPLETE = "Reached expected number of succeeded pods"


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def condition_true(obj: dict[str, Any], ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or []
    )


def job_finished(job: dict[str, Any]) -> str | None:
    """"Complete", "Failed" or None."""
    for ctype in ("Complete", "Failed"):
        if condition_true(job, ctype):
            return ctype
    return None


def back_off(failures: int) -> float:
    """The pause before a replacement pod after `failures` consecutive failed pods."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_INITIAL * 2 ** (failures - 1), BACKOFF_MAX)


def format_indexes(indexes: set[int]) -> str:
    """Kubernetes' compressed index list: "0-2,5,7-8"."""
    out: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def pod_index(pod: dict[str, Any]) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(batch.COMPLETION_INDEX)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _phase(pod: dict[str, Any]) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in (pod.get("status") or {}).get("conditions") or []
    )


def _finished_at(pod: dict[str, Any]) -> datetime | None:
    latest: datetime | None = None
    status = pod.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        t = parse_rfc3339(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t is not None and (latest is None or t > latest):
            latest = t
    return latest


# -- pod failure policy ----------------------------------------------------------------------


def match_failure_policy(job: dict[str, Any], pod: dict[str, Any]) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule a failed pod matches, or None."""
    policy = (job.get("spec") or {}).get("podFailurePolicy") or {}
    status = pod.get("status") or {}
    statuses = (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or [])
    meta = pod["metadata"]
    for index, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action", "")
        codes = rule.get("onExitCodes")
        if codes:
            for cs in statuses:
                if codes.get("containerName") and cs.get("name") != codes["containerName"]:
                    continue
                term = (cs.get("state") or {}).get("terminated")
                if not term or term.get("exitCode", 0) == 0:
                    continue
                code = term["exitCode"]
                values = codes.get("values") or []
                hit = code in values if codes.get("operator") == "In" else code not in values
                if hit:
                    return action, (
                        f"Container {cs.get('name')} for pod {meta.get('namespace')}/{meta['name']} failed with exit "
                        f"code {code} matching {action} rule at index {index}"
                    )
        for pattern in rule.get("onPodConditions") or []:
            for cond in status.get("conditions") or []:
                if cond.get("type") == pattern.get("type") and cond.get("status") == pattern.get("status", "True"):
                    return action, (
                        f"Pod {meta.get('namespace')}/{meta['name']} has condition {cond.get('type')} matching "
                        f"{action} rule at index {index}"
                    )
    return None


# -- the plan --------------------------------------------------------------------------------


@dataclass
class Plan:
    create: list[dict[str, Any]] = field(default_factory=list)  # pod bodies
    delete: list[str] = field(default_factory=list)  # pod names
    status: dict[str, Any] | None = None  # the new status, None when unchanged
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    delete_job: bool = False  # ttlSecondsAfterFinished ran out
    requeue_after: float | None = None  # seconds until the Job needs another look


def _condition(old: list[dict[str, Any]], ctype: str, status: str, reason: str, message: str, now: datetime) -> list[dict[str, Any]]:
    """The conditions with `ctype` set, keeping its transition time when its status stays."""
    out = [c for c in old if c.get("type") != ctype]
    prev = next((c for c in old if c.get("type") == ctype), None)
    if prev and prev.get("status") == status and prev.get("reason") == reason and prev.get("message") == message:
        return old
    stamp = rfc3339(now)
    out.append(
        {
            "type": ctype,
            "status": status,
            "reason": reason,
            "message": message,
            "lastProbeTime": stamp,
            "lastTransitionTime": stamp if not prev or prev.get("status") != status else prev.get("lastTransitionTime"),
        }
    )
    return out


def new_pod(job: dict[str, Any], index: int | None) -> dict[str, Any]:
    """A pod of the Job's template; Indexed Jobs' pods carry their completion index."""
    meta, spec = job["metadata"], job["spec"]
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.get("metadata") or {}
    labels = dict(tmeta.get("labels") or {})
    annotations = dict(tmeta.get("annotations") or {})
    pod_spec = template.get("spec") or {}
    name = meta["name"]
    generate = f"{name}-"
    if index is not None:
        generate = f"{name}-{index}-"
        annotations[batch.COMPLETION_INDEX] = str(index)
        labels[batch.COMPLETION_INDEX] = str(index)
        pod_spec.setdefault("hostname", f"{name}-{index}")
        ref = {"fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.annotations['{batch.COMPLETION_INDEX}']"}}
        for ctr in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
            env = ctr.setdefault("env", [])
            if not any(e.get("name") == "JOB_COMPLETION_INDEX" for e in env):
                env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": ref})
    return {
        "metadata": {
            "generateName": generate,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_ref(job)],
        },
        "spec": pod_spec,
    }


def plan(job: dict[str, Any], pods: list[dict[str, Any]], now: datetime) -> Plan:
    """What the Job controller does next for one Job, given its pods (those it controls)."""
    p = Plan()
    meta, spec = job["metadata"], job.get("spec") or {}
    old_status = job.get("status") or {}
    status = copy.deepcopy(old_status)
    conditions: list[dict[str, Any]] = list(status.get("conditions") or [])
    if meta.get("deletionTimestamp"):
        return p

    terminating = [q for q in pods if q["metadata"].get("deletionTimestamp") and _phase(q) not in ("Succeeded", "Failed")]
    active = [q for q in pods if not q["metadata"].get("deletionTimestamp") and _phase(q) not in ("Succeeded", "Failed")]
    succeeded_pods = [q for q in pods if _phase(q) == "Succeeded"]
    failed_pods = [q for q in pods if _phase(q) == "Failed"]
    indexed = spec.get("completionMode") == "Indexed"
    completions = spec.get("completions")
    parallelism = int(spec.get("parallelism", 1) or 0)
    backoff_limit = int(spec.get("backoffLimit", 6))

    # Failed pods: the pod failure policy decides which count and whether the Job fails now.
    counted_failed: list[dict[str, Any]] = []
    fail_job: str | None = None
    for q in failed_pods:
        match = match_failure_policy(job, q) if spec.get("podFailurePolicy") else None
        if match is None or match[0] == "Count":
            counted_failed.append(q)
        elif match[0] == "FailJob":
            counted_failed.append(q)
            fail_job = fail_job or match[1]
    succeeded_indexes = {i for i in (pod_index(q) for q in succeeded_pods) if i is not None and completions and i < completions}
    succeeded = len(succeeded_indexes) if indexed else len(succeeded_pods)
    succeeded = max(succeeded, int(old_status.get("succeeded", 0))) if not indexed else succeeded
    failed = max(len(counted_failed), int(old_status.get("failed", 0)))

    finished = job_finished(job)
    if finished:
        # Only time to live is left to watch; stray pods of a finished Job are stopped.
        p.delete = [q["metadata"]["name"] for q in active]
        ttl = spec.get("ttlSecondsAfterFinished")
        if ttl is not None:
            done = parse_rfc3339(status.get("completionTime")) or next(
                (parse_rfc3339(c.get("lastTransitionTime")) for c in conditions if c.get("type") == finished), None
            )
            expire = (done or now) + timedelta(seconds=int(ttl))
            if now >= expire:
                p.delete_job = True
            else:
                p.requeue_after = (expire - now).total_seconds()
        return p

    suspended = bool(spec.get("suspend"))
    was_suspended = condition_true(job, "Suspended")
    failure: tuple[str, str] | None = None
    target = next((c for c in conditions if c.get("type") == "FailureTarget" and c.get("status") == "True"), None)
    if target is not None:
        failure = (target.get("reason", ""), target.get("message", ""))
    elif fail_job:
        failure = ("PodFailurePolicy", fail_job)
    elif failed > backoff_limit:
        failure = ("BackoffLimitExceeded", MSG_BACKOFF)
    elif spec.get("template", {}).get("spec", {}).get("restartPolicy") == "OnFailure" and _past_backoff_on_failure(
        active, backoff_limit
    ):
        failure = ("BackoffLimitExceeded", MSG_BACKOFF)
    else:
        deadline = spec.get("activeDeadlineSeconds")
        start = parse_rfc3339(status.get("startTime"))
        if deadline is not None and start is not None and not suspended:
            ends = start + timedelta(seconds=int(deadline))
            if now >= ends:
                failure = ("DeadlineExceeded", MSG_DEADLINE)
            else:
                p.requeue_after = (ends - now).total_seconds()

    complete = False
    if failure is None:
        if indexed or completions is not None:
            complete = completions is not None and succeeded >= int(completions)
        else:  # a work queue: done when one pod succeeded and none is left running
            complete = succeeded > 0 and not active

    if failure is not None:
        if target is None:
            conditions = _condition(conditions, "FailureTarget", "True", failure[0], failure[1], now)
        p.delete = [q["metadata"]["name"] for q in active]
        if not active and not terminating:
            conditions = _condition(conditions, "Failed", "True", failure[0], failure[1], now)
            p.events.append(("Warning", failure[0], failure[1]))
        active_after: list[dict[str, Any]] = []
    elif complete:
        conditions = _condition(conditions, "SuccessCriteriaMet", "True", "CompletionsReached", MSG_COMPLETE, now)
        p.delete = [q["metadata"]["name"] for q in active]
        if not active and not terminating:
            conditions = _condition(conditions, "Complete", "True", "CompletionsReached", MSG_COMPLETE, now)
            status["completionTime"] = rfc3339(now)
            p.events.append(("Normal", "Completed", "Job completed"))
        active_after = []
    elif suspended:
        p.delete = [q["metadata"]["name"] for q in active]
        if not was_suspended:
            conditions = _condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", now)
            p.events.append(("Normal", "Suspended", "Job suspended"))
        active_after = []
    else:
        if was_suspended:
            conditions = _condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", now)
            p.events.append(("Normal", "Resumed", "Job resumed"))
            status["startTime"] = rfc3339(now)
        if not status.get("startTime"):
            status["startTime"] = rfc3339(now)
            deadline = spec.get("activeDeadlineSeconds")
            if deadline is not None:
                p.requeue_after = float(deadline)
        active_after = _manage(p, job, active, succeeded_pods, counted_failed, succeeded_indexes, now, parallelism)

    status["active"] = len(active_after) + len(p.create)
    status["ready"] = sum(1 for q in active_after if _ready(q))
    status["terminating"] = len(terminating) + len(p.delete)
    status["succeeded"] = succeeded
    status["failed"] = failed
    if indexed:
        status["completedIndexes"] = format_indexes(succeeded_indexes)
    status["uncountedTerminatedPods"] = {}
    for key in ("active", "succeeded", "failed"):
        if not status[key]:
            status.pop(key)
    if conditions:
        status["conditions"] = conditions
    if status != old_status:
        p.status = status
    return p


def _past_backoff_on_failure(active: list[dict[str, Any]], limit: int) -> bool:
    """restartPolicy OnFailure: the containers' restarts count toward backoffLimit."""
    restarts = 0
    for q in active:
        status = q.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            restarts += int(cs.get("restartCount", 0))
    return restarts > 0 if limit == 0 else restarts >= limit


def _manage(
    p: Plan,
    job: dict[str, Any],
    active: list[dict[str, Any]],
    succeeded_pods: list[dict[str, Any]],
    failed_pods: list[dict[str, Any]],
    succeeded_indexes: set[int],
    now: datetime,
    parallelism: int,
) -> list[dict[str, Any]]:
    """Create or delete pods so that the right number runs; returns the pods left active."""
    spec = job["spec"]
    completions = spec.get("completions")
    indexed = spec.get("completionMode") == "Indexed"
    if indexed:
        want = min(parallelism, int(completions) - len(succeeded_indexes))
    elif completions is not None:
        want = min(parallelism, int(completions) - len(succeeded_pods))
    else:
        want = 0 if succeeded_pods else parallelism
    want = max(want, 0)
    keep = active
    if len(active) > want:
        # Remove the least advanced first: not ready, then the youngest.
        ranked = sorted(active, key=lambda q: (_ready(q), q["metadata"].get("creationTimestamp", "")), reverse=False)
        surplus = ranked[: len(active) - want]
        p.delete += [q["metadata"]["name"] for q in surplus]
        keep = [q for q in active if q not in surplus]
        return keep
    missing = want - len(active)
    if missing <= 0:
        return keep
    # The controller's own back-off between replacement pods: failures since the last success.
    last_success = max((t for t in (_finished_at(q) for q in succeeded_pods) if t), default=None)
    recent = [t for t in (_finished_at(q) for q in failed_pods) if t and (last_success is None or t > last_success)]
    if recent:
        due = max(recent) + timedelta(seconds=back_off(len(recent)))
        if now < due:
            wait = (due - now).total_seconds()
            p.requeue_after = wait if p.requeue_after is None else min(p.requeue_after, wait)
            return keep
    if indexed:
        taken = {pod_index(q) for q in active}
        free = [i for i in range(int(completions)) if i not in succeeded_indexes and i not in taken]
        for i in free[:missing]:
            p.create.append(new_pod(job, i))
    else:
        for _ in range(missing):
            p.create.append(new_pod(job, None))
    return keep


# -- applying plans --------------------------------------------------------------------------


class Control(Protocol):
    """The writes the Job controller makes."""

    def create_pod(self, job: dict[str, Any], body: dict[str, Any]) -> str: ...  # returns the pod's name

    def delete_pod(self, namespace: str, name: str) -> None: ...

    def update_status(self, job: dict[str, Any], status: dict[str, Any]) -> None: ...

    def delete_job(self, job: dict[str, Any]) -> None: ...

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


class RegistryControl:
    """The Control over the API registry (what the control plane uses)."""

    def __init__(self, registry: Any) -> None:
        self.reg = registry

    def create_pod(self, job: dict[str, Any], body: dict[str, Any]) -> str:
        return self.reg.create(POD, job["metadata"]["namespace"], body)["metadata"]["name"]

    def delete_pod(self, namespace: str, name: str) -> None:
        self.reg.delete(POD, namespace, name)

    def update_status(self, job: dict[str, Any], status: dict[str, Any]) -> None:
        body = copy.deepcopy(job)
        body["status"] = status
        self.reg.store.update(JOB, body, status_only=True)

    def delete_job(self, job: dict[str, Any]) -> None:
        self.reg.delete(JOB, job["metadata"]["namespace"], job["metadata"]["name"], propagation="Background")

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.reg.record_event(obj, reason, message, type_, COMPONENT)


class JobController:
    def __init__(self, control: Control, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.control = control
        self.clock = clock

    def sync(self, job: dict[str, Any], all_pods: list[dict[str, Any]]) -> float | None:
        """One level-triggered pass over one Job; returns seconds until it needs another."""
        uid, ns = job["metadata"]["uid"], job["metadata"]["namespace"]
        pods = [q for q in all_pods if q["metadata"].get("namespace") == ns and owned_by(q, uid)]
        p = plan(job, pods, self.clock())
        if p.delete_job:
            self.control.delete_job(job)
            return None
        for name in p.delete:
            self.control.delete_pod(ns, name)
            self.control.event(job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        for body in p.create:
            name = self.control.create_pod(job, body)
            self.control.event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        if p.status is not None:
            self.control.update_status(job, p.status)
        for type_, reason, message in p.events:
            self.control.event(job, type_, reason, message)
        if p.create or p.delete:
            return 0.5  # look again soon: the pods just created or removed change the status
        return p.requeue_after

    def sync_all(self, store: Any) -> float | None:
        pods = store.list(POD)[0]
        due: float | None = None
        for job in store.list(JOB)[0]:
            wait = self.sync(job, pods)
            if wait is not None:
                due = wait if due is None else min(due, wait)
        return due
