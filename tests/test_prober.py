"""Probe commands (pure) and the prober's thresholds, with a fake exec."""

from __future__ import annotations

import time
from typing import Any

from mikro.node.prober import Prober, probe_command

CTR = {"name": "web", "ports": [{"name": "http", "containerPort": 8080}]}


def test_probe_commands() -> None:
    assert probe_command({"httpGet": {"path": "/healthz", "port": "http"}, "timeoutSeconds": 2}, CTR) == (
        "infra",
        ["timeout", "2", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"],
    )
    assert probe_command({"tcpSocket": {"port": 8080}}, CTR) == (
        "infra",
        ["timeout", "1", "nc", "-w", "1", "127.0.0.1", "8080", "-e", "true"],
    )
    assert probe_command({"grpc": {"port": 9555}}, CTR) == ("grpc", ["9555", "", "1"])
    assert probe_command({"grpc": {"port": 9555, "service": "cart"}, "timeoutSeconds": 3}, CTR) == (
        "grpc",
        ["9555", "cart", "3"],
    )
    assert probe_command({"exec": {"command": ["cat", "/tmp/ready"]}}, CTR) == (
        "app",
        ["timeout", "1", "cat", "/tmp/ready"],
    )
    assert probe_command({"httpGet": {"port": "nope"}}, CTR) is None


def test_thresholds_and_callbacks() -> None:
    results = {"code": 1}
    changes: list[str] = []
    failures: list[tuple[Any, ...]] = []
    prober = Prober(
        lambda ident, argv: (results["code"], b"refused"), changes.append, lambda *args: failures.append(args)
    )
    ctr = {
        **CTR,
        "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 0, "failureThreshold": 1},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 0, "failureThreshold": 2},
    }
    prober.track("uid", ctr, "c1", "infra")
    assert prober.ready("uid", "web", "c1") is False  # not ready before a probe said yes
    prober.start()
    try:
        deadline = time.monotonic() + 5
        while not any(f[4] for f in failures) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(f[2] == "liveness" and f[4] for f in failures), failures  # restart after 2 failures
        assert any(f[2] == "readiness" and not f[4] for f in failures)
        results["code"] = 0
        while not prober.ready("uid", "web", "c1") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prober.ready("uid", "web", "c1") and changes.count("uid") >= 1
        assert prober.ready("uid", "web", "c2") is False  # another container starts afresh
        assert prober.ready("other", "web", "c9") is True  # no readiness probe: ready when running
    finally:
        prober.stop.set()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_liveness_restarts_only_after_failure_threshold_on_the_period() -> None:
    clock = FakeClock()
    probed: list[float] = []
    failures: list[tuple[Any, ...]] = []

    def run(ident: str, argv: list[str]) -> tuple[int, bytes]:
        probed.append(clock.now - 1000)
        return 1, b"connection refused"

    prober = Prober(run, lambda uid: None, lambda *args: failures.append(args), clock=clock)
    probe = {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 5, "periodSeconds": 10, "failureThreshold": 3}
    prober.track("uid", {**CTR, "livenessProbe": probe}, "c1", "infra")
    for second in range(0, 60):
        clock.now = 1000.0 + second
        prober.tick()
    # first at the initial delay, then every period; the restart comes with the third failure
    assert probed == [5, 15, 25, 35, 45, 55]
    assert [f[4] for f in failures] == [False, False, True, False, False, True]
    assert all(f[:3] == ("uid", "web", "liveness") and f[3] == "connection refused" for f in failures)


def test_readiness_follows_success_and_failure_thresholds() -> None:
    clock = FakeClock()
    results = iter([0, 0, 1, 0, 1, 1, 0])
    changes: list[str] = []
    prober = Prober(lambda ident, argv: (next(results), b""), changes.append, lambda *args: None, clock=clock)
    probe = {"tcpSocket": {"port": 8080}, "periodSeconds": 1, "successThreshold": 2, "failureThreshold": 2}
    prober.track("uid", {**CTR, "readinessProbe": probe}, "c1", "infra")
    seen = []
    for second in range(7):
        clock.now = 1000.0 + second
        prober.tick()
        seen.append(prober.ready("uid", "web", "c1"))
    # ready after two successes; one failure is not enough to lose it, two are; one success back is not enough
    assert seen == [False, True, True, True, True, False, False]
    assert changes == ["uid", "uid"]


def test_the_loop_sleeps_until_the_next_probe_is_due_and_wakes_for_a_new_one() -> None:
    clock = FakeClock()
    prober = Prober(lambda ident, argv: (0, b""), lambda uid: None, lambda *args: None, clock=clock)
    assert prober.next_wait() == 1.0  # nothing to probe: look again within a second
    probe = {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 0, "periodSeconds": 10}
    prober.wake.clear()
    prober.track("uid", {**CTR, "readinessProbe": probe}, "c1", "infra")
    # A new container's first readiness probe is due at once, and the loop is woken for it.
    assert prober.wake.is_set() and prober.next_wait() == 0.0
    prober.tick()
    clock.now += 0.5
    assert prober.next_wait() == 1.0  # next one in 9.5 s: capped
    clock.now += 9.2
    assert round(prober.next_wait(), 3) == 0.3
    # A readiness probe waiting for its startup probe is not due, however late it is.
    startup = {"exec": {"command": ["true"]}, "initialDelaySeconds": 30, "periodSeconds": 10}
    prober.track("uid2", {**CTR, "startupProbe": startup, "readinessProbe": probe}, "c2", "infra")
    clock.now += 20
    assert prober.next_wait() == 0.0  # uid's readiness is due; uid2's readiness waits
    prober.tick()
    assert round(prober.next_wait(), 3) == 1.0
