"""The CronJob controller (batch/v1): Jobs on a schedule, as pkg/controller/cronjob (v2) does.

`plan(cronjob, jobs, now)` is pure: which Job to create for which scheduled time, which Jobs to
delete (Replace, history limits), the status and events, and when the next run is due. Only
the most recent missed time is run (one catch-up after a stop), more than 100 missed times
raise `TooManyMissedTimes`, and `startingDeadlineSeconds` bounds how late a run may start.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from mikro.api import batch
from mikro.api.resources import BY_KIND
from mikro.controllers.job import job_finished, owned_by, owner_ref, parse_rfc3339, rfc3339

CRONJOB, JOB = BY_KIND["CronJob"], BY_KIND["Job"]
COMPONENT = "cronjob-controller"
MAX_MISSED = 100


def local_zone() -> tzinfo:
    """The zone a schedule without `timeZone` follows: the machine's, as the controller
    manager's local time on Kubernetes."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = str(Path("/etc/localtime").resolve())
            name = target.split("/zoneinfo/", 1)[1] if "/zoneinfo/" in target else ""
        except OSError:
            name = ""
    try:
        return ZoneInfo(name) if name else UTC
    except (ValueError, OSError, KeyError):
        return UTC


def zone_of(cj: dict[str, Any]) -> tzinfo:
    tz = (cj.get("spec") or {}).get("timeZone")
    if tz:
        return batch.load_zone(tz)
    return local_zone()


def job_name(cj: dict[str, Any], scheduled: datetime) -> str:
    """`<cronjob>-<scheduled time in minutes since the epoch>`, as getJobName."""
    return f"{cj['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cj: dict[str, Any], scheduled: datetime, tz: tzinfo) -> dict[str, Any]:
    template = copy.deepcopy((cj.get("spec") or {}).get("jobTemplate") or {})
    tmeta = template.get("metadata") or {}
    annotations = dict(tmeta.get("annotations") or {})
    annotations[batch.SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat(timespec="seconds").replace("+00:00", "Z")
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(cj, scheduled),
            "namespace": cj["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [owner_ref(cj)],
        },
        "spec": template.get("spec") or {},
    }


def _ref(job: dict[str, Any]) -> dict[str, Any]:
    meta = job["metadata"]
    return {
        "kind": "Job",
        "namespace": meta["namespace"],
        "name": meta["name"],
        "uid": meta["uid"],
        "apiVersion": "batch/v1",
        "resourceVersion": meta.get("resourceVersion", ""),
    }


@dataclass
class Plan:
    create: dict[str, Any] | None = None  # the Job to create
    delete: list[str] = field(default_factory=list)  # Job names
    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    requeue_after: float | None = None


def most_recent_missed(
    cj: dict[str, Any], now: datetime, tz: tzinfo
) -> tuple[datetime | None, int]:
    """The latest scheduled time not yet run (earliest bound: the last run or the CronJob's
    creation, and startingDeadlineSeconds), and how many were missed in all."""
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    earliest = parse_rfc3339(status.get("lastScheduleTime")) or parse_rfc3339(cj["metadata"].get("creationTimestamp")) or now
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        bound = now - timedelta(seconds=int(deadline))
        if bound > earliest:
            earliest = bound
    return batch.missed_times(spec["schedule"], tz, earliest, now, cap=MAX_MISSED + 1)


def plan(cj: dict[str, Any], jobs: list[dict[str, Any]], now: datetime) -> Plan:
    """What the CronJob controller does next for one CronJob, given the Jobs it controls."""
    p = Plan()
    meta, spec = cj["metadata"], cj.get("spec") or {}
    old_status = cj.get("status") or {}
    status = copy.deepcopy(old_status)
    if meta.get("deletionTimestamp"):
        return p
    by_uid = {j["metadata"]["uid"]: j for j in jobs}
    active = [a for a in status.get("active") or [] if a.get("uid") in by_uid]
    active_uids = {a["uid"] for a in active}
    for job in jobs:
        state = job_finished(job)
        uid = job["metadata"]["uid"]
        if uid in active_uids and state:
            active = [a for a in active if a["uid"] != uid]
            p.events.append(("Normal", "SawCompletedJob", f"Saw completed job: {job['metadata']['name']}, condition: {state}"))
        elif uid not in active_uids and not state:
            p.events.append(
                ("Warning", "UnexpectedJob", f"Saw a job that the controller did not create or forgot: {job['metadata']['name']}")
            )
        if state == "Complete":
            done = (job.get("status") or {}).get("completionTime")
            if done and (not status.get("lastSuccessfulTime") or done > status["lastSuccessfulTime"]):
                status["lastSuccessfulTime"] = done

    # History limits over finished Jobs, oldest first.
    for state, limit_key in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
        limit = spec.get(limit_key)
        if limit is None:
            continue
        done = sorted(
            (j for j in jobs if job_finished(j) == state),
            key=lambda j: ((j.get("status") or {}).get("startTime") or "", j["metadata"].get("creationTimestamp", "")),
        )
        for j in done[: max(len(done) - int(limit), 0)]:
            p.delete.append(j["metadata"]["name"])

    tz = zone_of(cj)
    if not spec.get("suspend"):
        scheduled, missed = most_recent_missed(cj, now, tz)
        if missed > MAX_MISSED:
            p.events.append(
                (
                    "Warning",
                    "TooManyMissedTimes",
                    f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
                )
            )
        if scheduled is not None:
            deadline = spec.get("startingDeadlineSeconds")
            name = job_name(cj, scheduled)
            already = any(a.get("name") == name for a in active) or status.get("lastScheduleTime") == rfc3339(scheduled)
            if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
                p.events.append(
                    ("Warning", "MissSchedule", f"Missed scheduled time to start a job: {scheduled.strftime('%a, %d %b %Y %H:%M:%S %z')}")
                )
            elif already:
                pass
            elif spec.get("concurrencyPolicy") == "Forbid" and active:
                p.events.append(
                    (
                        "Normal",
                        "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid",
                    )
                )
            else:
                if spec.get("concurrencyPolicy") == "Replace":
                    for a in active:
                        p.delete.append(a["name"])
                    active = []
                p.create = job_from_template(cj, scheduled, tz)
                status["lastScheduleTime"] = rfc3339(scheduled)
        nxt = batch.next_time(spec["schedule"], tz, now)
        if nxt is not None:
            p.requeue_after = max((nxt - now).total_seconds(), 0.0) + 0.05
    if active:
        status["active"] = active
    else:
        status.pop("active", None)
    if status != old_status:
        p.status = status
    return p


class Control(Protocol):
    def create_job(self, cj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None: ...  # None: existed

    def delete_job(self, cj: dict[str, Any], name: str) -> None: ...

    def update_status(self, cj: dict[str, Any], status: dict[str, Any]) -> None: ...

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


class RegistryControl:
    def __init__(self, registry: Any) -> None:
        self.reg = registry

    def create_job(self, cj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
        from mikro.errors import ApiError

        try:
            return self.reg.create(JOB, cj["metadata"]["namespace"], body)
        except ApiError as err:
            if err.code == 409:
                return None
            raise

    def delete_job(self, cj: dict[str, Any], name: str) -> None:
        self.reg.delete(JOB, cj["metadata"]["namespace"], name, propagation="Background")

    def update_status(self, cj: dict[str, Any], status: dict[str, Any]) -> None:
        fresh = self.reg.store.get(CRONJOB, cj["metadata"]["namespace"], cj["metadata"]["name"])
        fresh["status"] = status
        self.reg.store.update(CRONJOB, fresh, status_only=True)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.reg.record_event(obj, reason, message, type_, COMPONENT)


class CronJobController:
    def __init__(self, control: Control, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.control = control
        self.clock = clock
        self.seen_unexpected: set[str] = set()

    def sync(self, cj: dict[str, Any], all_jobs: list[dict[str, Any]]) -> float | None:
        uid, ns = cj["metadata"]["uid"], cj["metadata"]["namespace"]
        jobs = [j for j in all_jobs if j["metadata"].get("namespace") == ns and owned_by(j, uid)]
        p = plan(cj, jobs, self.clock())
        status = p.status if p.status is not None else copy.deepcopy(cj.get("status") or {})
        changed = p.status is not None
        for name in p.delete:
            self.control.delete_job(cj, name)
            self.control.event(cj, "Normal", "SuccessfulDelete", f"Deleted job {name}")
        if p.create is not None:
            created = self.control.create_job(cj, p.create)
            if created is not None:
                self.control.event(cj, "Normal", "SuccessfulCreate", f"Created job {created['metadata']['name']}")
                status.setdefault("active", []).append(_ref(created))
                changed = True
        if changed:
            self.control.update_status(cj, status)
        for type_, reason, message in p.events:
            if reason == "UnexpectedJob":
                if message in self.seen_unexpected:
                    continue
                self.seen_unexpected.add(message)
            self.control.event(cj, type_, reason, message)
        return p.requeue_after

    def sync_all(self, store: Any) -> float | None:
        jobs = store.list(JOB)[0]
        cronjobs = store.list(CRONJOB)[0]
        alive = {cj["metadata"]["uid"] for cj in cronjobs}
        for job in jobs:  # garbage collection: a CronJob's Jobs go with it
            refs = [r for r in job["metadata"].get("ownerReferences") or [] if r.get("kind") == "CronJob"]
            if refs and not any(r.get("uid") in alive for r in refs) and not job["metadata"].get("deletionTimestamp"):
                self.control.delete_job({"metadata": job["metadata"]}, job["metadata"]["name"])
        due: float | None = None
        for cj in cronjobs:
            wait = self.sync(cj, jobs)
            if wait is not None:
                due = wait if due is None else min(due, wait)
        return due
