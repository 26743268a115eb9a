"""When the controllers' loop looks again with no change to wake it: never for a settled
cluster, at the moment a pod of a set with minReadySeconds becomes available, soon after a
failed write. (The loop waits `ctl.due` seconds, or RESYNC_SECONDS when it is None.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.controllers import idle
from mikro.controllers.manager import RESYNC_SECONDS, RETRY_SECONDS
from tests.controller_kit import Cluster

POD, STS, DS, DEPLOY = BY_KIND["Pod"], BY_KIND["StatefulSet"], BY_KIND["DaemonSet"], BY_KIND["Deployment"]
NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def pod(owner: str, ready: str | None, since: str | None = "2026-01-01T11:59:50Z") -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "lastTransitionTime": since}]
    return {
        "metadata": {"name": "p", "ownerReferences": [{"uid": owner, "controller": True}]},
        "status": {"conditions": conditions},
    }


@pytest.mark.parametrize(
    ("pods", "min_ready", "expected"),
    [
        ([], {"s": 30}, None),
        ([pod("s", "True")], {}, None),  # no set with minReadySeconds
        ([pod("s", "True")], {"s": 30}, 20.0),  # ready 10 s ago, available in 20
        ([pod("s", "True")], {"s": 10}, None),  # available at this very second: counted already
        ([pod("s", "True")], {"s": 5}, None),  # available already
        ([pod("s", "False")], {"s": 30}, None),  # not ready: its readiness will be a change
        ([pod("s", None)], {"s": 30}, None),
        ([pod("other", "True")], {"s": 30}, None),  # another controller's pod
        ([pod("s", "True", None)], {"s": 30}, None),  # no transition time: available (pod_available)
        ([pod("s", "True"), pod("t", "True", "2026-01-01T11:59:59Z")], {"s": 30, "t": 3}, 2.0),  # the first
    ],
)
def test_until_available(pods: list[dict[str, Any]], min_ready: dict[str, int], expected: float | None) -> None:
    assert idle.until_available(pods, min_ready, NOW) == expected


def test_min_ready_of_skips_sets_without_it_and_deleted_ones() -> None:
    sets = [
        {"metadata": {"uid": "a"}, "spec": {"minReadySeconds": 5}},
        {"metadata": {"uid": "b"}, "spec": {}},
        {"metadata": {"uid": "c", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"minReadySeconds": 5}},
    ]
    assert idle.min_ready_of(sets) == {"a": 5}


@pytest.fixture()
def c(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def deployment(replicas: int) -> dict[str, Any]:
    return {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "x"}]}},
        },
    }


def test_a_settled_cluster_needs_no_pass_until_something_changes(c: Cluster) -> None:
    c.reg.create(DEPLOY, "default", deployment(2))
    for _ in range(4):
        c.sync()
        c.start_all()
    assert c.sync() == []  # settled: the pass writes nothing
    assert c.ctl.due is None  # and the loop sleeps until a change (or the safety net)
    assert RESYNC_SECONDS >= 60


def test_a_pod_of_a_set_with_min_ready_seconds_is_counted_when_it_becomes_available(c: Cluster) -> None:
    c.reg.create(
        STS,
        "default",
        {
            "metadata": {"name": "db"},
            "spec": {
                "replicas": 1,
                "minReadySeconds": 30,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "x"}]}},
            },
        },
    )
    c.sync()
    p = c.store.get(POD, "default", "db-0")
    p["spec"]["nodeName"] = "mikro"
    p = c.store.update(POD, p)
    p["status"] = {
        "phase": "Running",
        "podIP": "10.152.0.9",
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T11:59:50Z"}],
    }
    c.store.update(POD, p, status_only=True)
    c.sync()
    status = c.store.get(STS, "default", "db")["status"]
    assert (status["readyReplicas"], status["availableReplicas"]) == (1, 0)
    assert c.ctl.due == 20.0  # no write will announce it: the loop looks again then
    c.clock.tick(20)
    c.sync()
    assert c.store.get(STS, "default", "db")["status"]["availableReplicas"] == 1
    c.sync()
    assert c.ctl.due is None


def test_a_failed_write_is_tried_again_soon(c: Cluster) -> None:
    c.reg.create(BY_KIND["ResourceQuota"], "default", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "1"}}})
    c.sync()  # the quota's status (its use) is written: admission counts from it
    c.reg.create(DEPLOY, "default", deployment(2))
    c.sync()
    c.sync()
    assert len(c.pods()) == 1  # the second pod is forbidden by the quota (a 403, not a race)
    assert c.ctl.due == RETRY_SECONDS


def test_a_namespace_waiting_for_its_last_events_is_woken_by_their_deletion(c: Cluster) -> None:
    from mikro.api.store import Change

    event = {"metadata": {"name": "e", "namespace": "gone"}}
    c.ctl.wake.clear()
    c.ctl._on_change(Change("ADDED", BY_KIND["Event"], event, 1))
    assert not c.ctl.wake.is_set()  # an Event written wakes no pass (there are many)
    c.ctl._on_change(Change("DELETED", BY_KIND["Event"], event, 2))
    assert c.ctl.wake.is_set()



def test_a_started_loop_runs_a_pass_before_any_change(c: Cluster) -> None:
    """What was written before the loop watched (a reboot's pod statuses, written by the runtime's
    boot) reaches the workloads' status at once, not at the safety net's pass minutes later."""
    import time

    from mikro.controllers.manager import Controllers

    c.reg.create(DEPLOY, "default", deployment(2))
    c.sync()
    c.sync()
    c.start_all()  # the pods turned ready while no controller loop ran
    assert (c.store.get(DEPLOY, "default", "web").get("status") or {}).get("readyReplicas") is None
    loop = Controllers(c.reg, clock=c.clock, api=c.api)
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if (c.store.get(DEPLOY, "default", "web").get("status") or {}).get("readyReplicas") == 2:
                break
            time.sleep(0.05)
        assert c.store.get(DEPLOY, "default", "web")["status"]["readyReplicas"] == 2
    finally:
        loop.stop.set()
        loop.wake.set()


def test_a_change_after_a_quiet_spell_is_acted_on_at_once_and_a_burst_is_gathered(tmp_path: Path) -> None:
    """The controllers' loop waits DEBOUNCE_SECONDS to gather a burst of writes into one pass,
    but not for a change after a quiet spell (a scale, a small apply): that pass starts at once."""
    from mikro.api.registry import Registry
    from mikro.api.store import Store
    from mikro.controllers.manager import DEBOUNCE_SECONDS, Controllers

    loop = Controllers(Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro"), controllers=[], extra=[])
    waits: list[float | None] = []
    loop.stop.wait = lambda timeout=None: bool(waits.append(timeout))  # type: ignore[method-assign]
    passes: list[list[float | None]] = []

    def sync_all() -> None:
        passes.append(list(waits))
        if len(passes) == 1:
            loop.wake.set()  # a write during the first pass: the next follows a burst
        else:
            loop.stop.set()

    loop.sync_all = sync_all  # type: ignore[method-assign]
    loop.wake.set()
    loop._loop()
    assert passes == [[], [DEBOUNCE_SECONDS]]
