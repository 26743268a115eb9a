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
    assert probe_command({"grpc": {"port": 9555}}, CTR)[1][-3] == "9555"
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
