"""The Job and CronJob controllers driven through their state machines with a fake clock and a
fake control that records writes (no Docker, no store), plus batch/v1 defaulting and validation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from mikro.api import batch, defaults, validation
from mikro.controllers import cronjob, job
from mikro.node import podplan

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_job(name: str = "pi", restart: str = "Never", **spec: Any) -> dict[str, Any]:
    obj = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
        "spec": {
            **spec,
            "template": {
                "spec": {"restartPolicy": restart, "containers": [{"name": "main", "image": "busybox:1"}]},
            },
        },
    }
    return defaults.apply(obj)


class FakeJobControl:
    """Records writes and keeps pods and the Job in memory, as the store would."""

    def __init__(self, jobobj: dict[str, Any]) -> None:
        self.job = jobobj
        self.pods: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.job_deleted = False
        self.n = 0

    def create_pod(self, jobobj: dict[str, Any], body: dict[str, Any]) -> str:
        self.n += 1
        name = body["metadata"]["generateName"] + f"x{self.n:04d}"
        pod = copy.deepcopy(body)
        pod["metadata"].update(name=name, uid=f"pod-{self.n}", creationTimestamp=f"2026-03-01T12:00:{self.n:02d}Z")
        pod["status"] = {"phase": "Pending"}
        self.pods[name] = pod
        self.created.append(name)
        return name

    def delete_pod(self, namespace: str, name: str) -> None:
        self.deleted.append(name)
        self.pods[name]["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"

    def update_status(self, jobobj: dict[str, Any], status: dict[str, Any]) -> None:
        self.job["status"] = copy.deepcopy(status)

    def delete_job(self, jobobj: dict[str, Any]) -> None:
        self.job_deleted = True

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    # -- the kubelet's part, by hand --

    def finish(self, name: str, code: int, at: datetime, restart_count: int = 0) -> None:
        pod = self.pods[name]
        pod["status"] = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": [
                {
                    "name": "main",
                    "restartCount": restart_count,
                    "state": {"terminated": {"exitCode": code, "finishedAt": job.rfc3339(at)}},
                }
            ],
        }

    def running(self, name: str, restarts: int = 0) -> None:
        self.pods[name]["status"] = {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "main", "restartCount": restarts, "state": {"running": {}}}],
        }

    def reap(self) -> None:
        """Terminating pods go away, as the runtime removes them."""
        for name in [n for n, p in self.pods.items() if p["metadata"].get("deletionTimestamp")]:
            del self.pods[name]

    def active(self) -> list[str]:
        return [
            n
            for n, p in self.pods.items()
            if not p["metadata"].get("deletionTimestamp") and p["status"]["phase"] not in ("Succeeded", "Failed")
        ]


class Clock:
    def __init__(self, t: datetime) -> None:
        self.t = t

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


def driver(jobobj: dict[str, Any]) -> tuple[job.JobController, FakeJobControl, Clock]:
    fake = FakeJobControl(jobobj)
    clock = Clock(T0)
    return job.JobController(fake, clock), fake, clock


def sync(ctl: job.JobController, fake: FakeJobControl) -> float | None:
    return ctl.sync(fake.job, list(fake.pods.values()))


def cond(obj: dict[str, Any], ctype: str) -> dict[str, Any] | None:
    return next((c for c in obj.get("status", {}).get("conditions") or [] if c["type"] == ctype), None)


# -- defaulting and validation -----------------------------------------------------------------


def test_job_defaults_generate_the_selector_and_labels_as_kubernetes() -> None:
    obj = make_job()
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["completionMode"] == "NonIndexed" and spec["suspend"] is False and spec["manualSelector"] is False
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "uid-pi"}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "uid-pi",
        "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "uid-pi",
        "job-name": "pi",
    }
    assert validation.validate(obj) == []
    work_queue = make_job(parallelism=3)
    assert "completions" not in work_queue["spec"] and work_queue["spec"]["parallelism"] == 3


@pytest.mark.parametrize(
    ("spec", "restart", "message"),
    [
        ({"completions": -1}, "Never", "spec.completions: Invalid value: -1: must be greater than or equal to 0"),
        ({"parallelism": -2}, "Never", "spec.parallelism: Invalid value: -2: must be greater than or equal to 0"),
        ({}, "Always", 'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'),
        (
            {"completionMode": "Indexed", "completions": 3, "parallelism": 100001},
            "Never",
            "spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed",
        ),
        ({"completionMode": "Indexed", "parallelism": 2}, "Never", "spec.completions: Required value: when completion mode is Indexed"),
        (
            {"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}},
            "Never",
            "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator",
        ),
        (
            {"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}]}},
            "OnFailure",
            'spec.template.spec.restartPolicy: Invalid value: "OnFailure": only "Never" is supported when podFailurePolicy is specified',
        ),
    ],
)
def test_bad_jobs_get_kubernetes_wording(spec: dict[str, Any], restart: str, message: str) -> None:
    errors = [str(e) for e in validation.validate(make_job(restart=restart, **spec))]
    assert message in errors


def test_job_selector_that_does_not_match_is_refused() -> None:
    obj = make_job()
    obj["spec"]["template"]["metadata"]["labels"]["controller-uid"] = "other"
    errors = [str(e) for e in validation.validate(obj)]
    assert "spec.template.metadata.labels[controller-uid]: Invalid value: \"other\": must be 'uid-pi'" in errors


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("61 * * * *", "end of range (61) above maximum (59): 61"),
        ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
        ("0 25 * * *", "end of range (25) above maximum (23): 25"),
        ("5-1 * * * *", "beginning of range (5) beyond end of range (1): 5-1"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("@fortnightly", "unrecognized descriptor: @fortnightly"),
    ],
)
def test_bad_schedules_get_robfig_cron_wording(schedule: str, message: str) -> None:
    with pytest.raises(batch.ScheduleError) as exc:
        batch.parse_schedule(schedule)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("schedule", "after", "want"),
    [
        ("*/15 1-5 * * MON-FRI", datetime(2026, 3, 6, 5, 50, tzinfo=UTC), datetime(2026, 3, 9, 1, 0, tzinfo=UTC)),
        ("0 0 1 JAN *", datetime(2026, 3, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("@hourly", datetime(2026, 3, 1, 10, 30, tzinfo=UTC), datetime(2026, 3, 1, 11, 0, tzinfo=UTC)),
        ("@daily", datetime(2026, 3, 1, 10, 30, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
        ("@midnight", datetime(2026, 3, 1, 10, 30, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC)),
        ("@weekly", datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),
        ("@monthly", datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        ("@yearly", datetime(2026, 3, 2, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("@annually", datetime(2026, 3, 2, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        ("0 9 * * 1,3,5", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), datetime(2026, 3, 4, 9, 0, tzinfo=UTC)),
    ],
)
def test_schedules_evaluate_as_cron(schedule: str, after: datetime, want: datetime) -> None:
    assert batch.next_time(schedule, UTC, after) == want


def test_time_zone_shifts_the_schedule() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    nxt = batch.next_time("0 9 * * *", tokyo, datetime(2026, 3, 1, 0, 30, tzinfo=UTC))
    assert nxt is not None and nxt.astimezone(UTC) == datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


# -- Job state machine -------------------------------------------------------------------------


def test_completions_three_parallelism_two_runs_two_at_a_time_to_complete() -> None:
    ctl, fake, clock = driver(make_job(completions=3, parallelism=2))
    sync(ctl, fake)
    assert len(fake.created) == 2 and fake.job["status"]["startTime"] == "2026-03-01T12:00:00Z"
    assert all(n.startswith("pi-") for n in fake.created)
    assert fake.job["status"]["active"] == 2
    sync(ctl, fake)
    assert len(fake.created) == 2  # no more than parallelism
    fake.finish(fake.created[0], 0, clock.t)
    sync(ctl, fake)
    assert len(fake.created) == 3 and fake.job["status"]["succeeded"] == 1
    for name in fake.active():
        fake.finish(name, 0, clock.t)
    clock.advance(5)
    sync(ctl, fake)
    status = fake.job["status"]
    assert status["succeeded"] == 3 and "active" not in status
    assert cond(fake.job, "Complete")["reason"] == "CompletionsReached"
    assert cond(fake.job, "SuccessCriteriaMet")["status"] == "True"
    assert status["completionTime"] == "2026-03-01T12:00:05Z"
    assert ("Completed", "Job completed") in fake.events
    assert ("SuccessfulCreate", f"Created pod: {fake.created[0]}") in fake.events


def test_failed_pods_count_to_backoff_limit_with_the_controllers_back_off() -> None:
    ctl, fake, clock = driver(make_job(backoffLimit=2))
    sync(ctl, fake)
    fake.finish(fake.created[-1], 1, clock.t)
    wait = sync(ctl, fake)
    assert len(fake.created) == 1 and wait == pytest.approx(10)  # 10 s before the first replacement
    clock.advance(10)
    sync(ctl, fake)
    assert len(fake.created) == 2
    fake.finish(fake.created[-1], 1, clock.t)
    assert sync(ctl, fake) == pytest.approx(20)  # doubling
    clock.advance(20)
    sync(ctl, fake)
    fake.finish(fake.created[-1], 1, clock.t)
    sync(ctl, fake)
    failed = cond(fake.job, "Failed")
    assert failed and failed["reason"] == "BackoffLimitExceeded"
    assert failed["message"] == "Job has reached the specified backoff limit"
    assert cond(fake.job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
    assert fake.job["status"]["failed"] == 3 and len(fake.created) == 3
    sync(ctl, fake)
    assert len(fake.created) == 3  # a failed Job makes no more pods


def test_back_off_is_capped_at_ten_minutes() -> None:
    assert [job.back_off(n) for n in (0, 1, 2, 3, 7, 30)] == [0, 10, 20, 40, 600, 600]


def test_on_failure_restarts_count_toward_backoff_limit() -> None:
    ctl, fake, _ = driver(make_job(restart="OnFailure", backoffLimit=2))
    sync(ctl, fake)
    fake.running(fake.created[0], restarts=1)
    sync(ctl, fake)
    assert cond(fake.job, "FailureTarget") is None
    fake.running(fake.created[0], restarts=2)
    sync(ctl, fake)
    assert cond(fake.job, "FailureTarget")["reason"] == "BackoffLimitExceeded"
    assert fake.deleted == [fake.created[0]] and cond(fake.job, "Failed") is None
    fake.reap()
    sync(ctl, fake)
    assert cond(fake.job, "Failed")["reason"] == "BackoffLimitExceeded"


def test_active_deadline_stops_the_job() -> None:
    ctl, fake, clock = driver(make_job(activeDeadlineSeconds=30))
    assert sync(ctl, fake) == 0.5
    fake.running(fake.created[0])
    assert sync(ctl, fake) == pytest.approx(30)
    clock.advance(30)
    sync(ctl, fake)
    assert cond(fake.job, "FailureTarget")["reason"] == "DeadlineExceeded"
    fake.reap()
    sync(ctl, fake)
    failed = cond(fake.job, "Failed")
    assert failed["reason"] == "DeadlineExceeded" and failed["message"] == "Job was active longer than specified deadline"


def test_pod_failure_policy_fail_job_ignore_and_count() -> None:
    policy = {
        "rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [7]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [7, 42]}},
        ]
    }
    ctl, fake, clock = driver(make_job(backoffLimit=0, podFailurePolicy=policy))
    sync(ctl, fake)
    fake.finish(fake.created[-1], 7, clock.t)  # ignored: not counted, replaced
    sync(ctl, fake)
    clock.advance(10)
    sync(ctl, fake)
    assert "failed" not in fake.job["status"] and len(fake.created) == 2
    fake.finish(fake.created[-1], 42, clock.t)
    sync(ctl, fake)
    failed = cond(fake.job, "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (
        f"Container main for pod default/{fake.created[-1]} failed with exit code 42 matching FailJob rule at index 1"
    )


def test_indexed_job_names_pods_by_index_and_tracks_completed_indexes() -> None:
    ctl, fake, clock = driver(make_job(completionMode="Indexed", completions=3, parallelism=3))
    sync(ctl, fake)
    pods = [fake.pods[n] for n in fake.created]
    assert [p["metadata"]["generateName"] for p in pods] == ["pi-0-", "pi-1-", "pi-2-"]
    assert [p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods] == ["0", "1", "2"]
    assert pods[1]["spec"]["hostname"] == "pi-1"
    env = pods[2]["spec"]["containers"][0]["env"]
    assert env == [
        {
            "name": "JOB_COMPLETION_INDEX",
            "valueFrom": {
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
            },
        }
    ]
    fake.finish(fake.created[0], 0, clock.t)
    fake.finish(fake.created[2], 0, clock.t)
    sync(ctl, fake)
    assert fake.job["status"]["completedIndexes"] == "0,2"
    fake.finish(fake.created[1], 1, clock.t)
    sync(ctl, fake)
    clock.advance(10)
    sync(ctl, fake)
    assert fake.pods[fake.created[-1]]["metadata"]["generateName"] == "pi-1-"  # only the failed index again
    fake.finish(fake.created[-1], 0, clock.t)
    sync(ctl, fake)
    assert fake.job["status"]["completedIndexes"] == "0-2" and cond(fake.job, "Complete")


def test_suspend_deletes_pods_and_resume_restarts_the_clock() -> None:
    ctl, fake, clock = driver(make_job(parallelism=2, completions=4))
    sync(ctl, fake)
    fake.job["spec"]["suspend"] = True
    sync(ctl, fake)
    assert sorted(fake.deleted) == sorted(fake.created)
    assert cond(fake.job, "Suspended")["reason"] == "JobSuspended"
    fake.reap()
    sync(ctl, fake)
    assert len(fake.created) == 2
    clock.advance(60)
    fake.job["spec"]["suspend"] = False
    sync(ctl, fake)
    assert cond(fake.job, "Suspended")["status"] == "False" and len(fake.created) == 4
    assert fake.job["status"]["startTime"] == "2026-03-01T12:01:00Z"


def test_ttl_after_finished_deletes_the_job() -> None:
    ctl, fake, clock = driver(make_job(ttlSecondsAfterFinished=100))
    sync(ctl, fake)
    fake.finish(fake.created[0], 0, clock.t)
    sync(ctl, fake)
    assert cond(fake.job, "Complete")
    clock.advance(40)
    assert sync(ctl, fake) == pytest.approx(60)
    assert not fake.job_deleted
    clock.advance(60)
    sync(ctl, fake)
    assert fake.job_deleted


def test_work_queue_job_completes_when_one_succeeded_and_none_runs() -> None:
    ctl, fake, clock = driver(make_job(parallelism=2))
    sync(ctl, fake)
    fake.finish(fake.created[0], 0, clock.t)
    sync(ctl, fake)
    assert len(fake.created) == 2 and cond(fake.job, "Complete") is None
    fake.finish(fake.created[1], 0, clock.t)
    sync(ctl, fake)
    assert cond(fake.job, "Complete") and fake.job["status"]["succeeded"] == 2


# -- CronJob state machine ---------------------------------------------------------------------


def make_cronjob(schedule: str = "*/5 * * * *", **spec: Any) -> dict[str, Any]:
    tpl = {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1"}]}}}}
    obj = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "default", "uid": "cj-uid", "creationTimestamp": "2026-03-01T12:00:00Z"},
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            **spec,
            "jobTemplate": {"metadata": {"labels": {"team": "a"}}, "spec": {"template": tpl["spec"]["template"]}},
        },
    }
    return defaults.apply(obj)


class FakeCronControl:
    def __init__(self, cj: dict[str, Any]) -> None:
        self.cj = cj
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[str] = []
        self.deleted: list[str] = []
        self.events: list[tuple[str, str]] = []

    def create_job(self, cj: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | None:
        name = body["metadata"]["name"]
        if name in self.jobs:
            return None
        created = copy.deepcopy(body)
        created["metadata"]["uid"] = f"job-{name}"
        self.jobs[name] = created
        self.created.append(name)
        return created

    def delete_job(self, cj: dict[str, Any], name: str) -> None:
        self.deleted.append(name)
        self.jobs.pop(name, None)

    def update_status(self, cj: dict[str, Any], status: dict[str, Any]) -> None:
        self.cj["status"] = copy.deepcopy(status)

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((reason, message))

    def finish(self, name: str, state: str, at: datetime) -> None:
        self.jobs[name]["status"] = {
            "startTime": job.rfc3339(at - timedelta(seconds=5)),
            "conditions": [{"type": state, "status": "True"}],
            **({"completionTime": job.rfc3339(at)} if state == "Complete" else {}),
        }


def cron_driver(cj: dict[str, Any], start: datetime = T0) -> tuple[cronjob.CronJobController, FakeCronControl, Clock]:
    fake = FakeCronControl(cj)
    clock = Clock(start)
    return cronjob.CronJobController(fake, clock), fake, clock


def csync(ctl: cronjob.CronJobController, fake: FakeCronControl) -> float | None:
    return ctl.sync(fake.cj, list(fake.jobs.values()))


def test_cronjob_creates_a_job_per_schedule_named_by_minute() -> None:
    ctl, fake, clock = cron_driver(make_cronjob())
    wait = csync(ctl, fake)
    assert fake.created == [] and wait == pytest.approx(300.05)
    clock.advance(300)
    csync(ctl, fake)
    minute = int(datetime(2026, 3, 1, 12, 5, tzinfo=UTC).timestamp()) // 60
    assert fake.created == [f"nightly-{minute}"]
    created = fake.jobs[fake.created[0]]
    assert created["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == "2026-03-01T12:05:00Z"
    assert created["metadata"]["labels"] == {"team": "a"}
    assert created["metadata"]["ownerReferences"][0]["uid"] == "cj-uid"
    assert fake.cj["status"]["lastScheduleTime"] == "2026-03-01T12:05:00Z"
    assert fake.cj["status"]["active"][0]["name"] == fake.created[0]
    csync(ctl, fake)
    assert len(fake.created) == 1  # the same time is not run twice
    fake.finish(fake.created[0], "Complete", clock.t + timedelta(seconds=30))
    clock.advance(60)
    csync(ctl, fake)
    assert "active" not in fake.cj["status"]
    assert fake.cj["status"]["lastSuccessfulTime"] == "2026-03-01T12:05:30Z"
    assert ("SawCompletedJob", f"Saw completed job: {fake.created[0]}, condition: Complete") in fake.events


def test_forbid_skips_while_one_runs_and_replace_replaces() -> None:
    ctl, fake, clock = cron_driver(make_cronjob("* * * * *", concurrencyPolicy="Forbid"))
    clock.advance(60)
    csync(ctl, fake)
    clock.advance(60)
    csync(ctl, fake)
    assert len(fake.created) == 1
    assert (
        "JobAlreadyActive",
        "Not starting job because prior execution is running and concurrency policy is Forbid",
    ) in fake.events
    fake.cj["spec"]["concurrencyPolicy"] = "Replace"
    clock.advance(60)
    csync(ctl, fake)
    assert len(fake.created) == 2 and fake.deleted == [fake.created[0]]
    assert [a["name"] for a in fake.cj["status"]["active"]] == [fake.created[1]]


def test_missed_runs_after_a_stop_catch_up_once_with_the_latest_time() -> None:
    ctl, fake, clock = cron_driver(make_cronjob("*/10 * * * *"))
    clock.advance(3 * 3600 + 5)  # down for three hours: eighteen runs missed
    csync(ctl, fake)
    assert len(fake.created) == 1
    assert fake.cj["status"]["lastScheduleTime"] == "2026-03-01T15:00:00Z"
    assert not any(reason == "TooManyMissedTimes" for reason, _ in fake.events)


def test_more_than_a_hundred_missed_times_is_an_event_and_deadline_bounds_lateness() -> None:
    ctl, fake, clock = cron_driver(make_cronjob("* * * * *"))
    clock.advance(200 * 60 + 30)
    csync(ctl, fake)
    assert any(reason == "TooManyMissedTimes" for reason, _ in fake.events)
    assert len(fake.created) == 1
    late, lfake, lclock = cron_driver(make_cronjob("0 * * * *", startingDeadlineSeconds=60))
    lclock.advance(3600 + 120)  # the 13:00 run is two minutes late: beyond its deadline
    csync(late, lfake)
    assert lfake.created == []


def test_suspended_cronjob_creates_nothing_and_history_limits_prune() -> None:
    ctl, fake, clock = cron_driver(make_cronjob("* * * * *", suspend=True))
    clock.advance(600)
    csync(ctl, fake)
    assert fake.created == []
    ctl, fake, clock = cron_driver(make_cronjob("* * * * *", successfulJobsHistoryLimit=1, failedJobsHistoryLimit=0))
    for i in range(3):
        clock.advance(60)
        csync(ctl, fake)
        fake.finish(fake.created[-1], "Complete" if i < 2 else "Failed", clock.t + timedelta(seconds=1))
    clock.advance(1)
    csync(ctl, fake)
    assert sorted(fake.deleted) == sorted([fake.created[0], fake.created[2]])


def test_cronjob_validation_wording() -> None:
    obj = make_cronjob("* * *", timeZone="Mars/Olympus", concurrencyPolicy="Sometimes")
    errors = [str(e) for e in validation.validate(obj)]
    assert 'spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: [* * *]' in errors
    assert 'spec.timeZone: Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' in errors
    assert 'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"' in errors
    good = make_cronjob("@daily")
    assert validation.validate(good) == [], json.dumps(good)


def test_kubelet_restarts_a_crashed_container_at_once_the_first_time() -> None:
    # restartCount so far -> seconds before the next start: CrashLoopBackOff comes with RESTARTS >= 1.
    assert [podplan.restart_delay(n) for n in (0, 1, 2, 3, 5, 6, 10)] == [0, 10, 20, 40, 160, 300, 300]


def test_create_job_from_cronjob_is_kubectls_generator() -> None:
    from mikro.cli.batch import job_from_cronjob

    cj = make_cronjob()
    cj["spec"]["jobTemplate"]["metadata"]["annotations"] = {"team/owner": "ops"}
    got = job_from_cronjob(cj, "run-now")
    assert got["metadata"]["name"] == "run-now"
    assert got["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual", "team/owner": "ops"}
    assert got["metadata"]["labels"] == {"team": "a"}
    assert got["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": "nightly", "uid": "cj-uid", "controller": True}
    ]
    assert got["spec"] == cj["spec"]["jobTemplate"]["spec"]
    defaulted = defaults.apply({**copy.deepcopy(got), "metadata": {**got["metadata"], "uid": "u1", "namespace": "default"}})
    assert validation.validate(defaulted) == []


def test_apply_wait_follows_a_job_to_its_end() -> None:
    from mikro.cli.batch import job_progress

    j = make_job(completions=3)
    j["status"] = {"succeeded": 1}
    assert job_progress(j) == (False, 'Waiting for job "pi": 1 of 3 completions...', None)
    j["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    assert job_progress(j)[:2] == (True, 'job "pi" completed')
    j["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "message": "m"}]
    assert job_progress(j)[2] == "DeadlineExceeded: m"


@pytest.mark.parametrize(
    ("schedule", "after", "until", "latest", "count"),
    [
        ("* * * * *", T0, T0 + timedelta(days=30, seconds=30), T0 + timedelta(days=30), 101),
        ("*/10 * * * *", T0, T0 + timedelta(minutes=35), T0 + timedelta(minutes=30), 3),
        ("0 * * * *", T0, T0 + timedelta(minutes=59, seconds=59, microseconds=900000), None, 0),
        ("0 * * * *", T0, T0 + timedelta(hours=1), T0 + timedelta(hours=1), 1),
    ],
)
def test_missed_times_find_the_latest_and_count_up_to_the_cap(
    schedule: str, after: datetime, until: datetime, latest: datetime | None, count: int
) -> None:
    got, n = batch.missed_times(schedule, UTC, after, until)
    assert (got, n) == (latest, count)
