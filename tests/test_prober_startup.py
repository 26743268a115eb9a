"""startupProbe gating and HTTPS probe commands, with a fake exec (no Docker)."""

from __future__ import annotations

import time
from typing import Any

from mikro.node.prober import Prober, probe_command

CTR = {"name": "web", "ports": [{"name": "https", "containerPort": 8443}]}


def test_https_probe_speaks_tls_without_checking_the_certificate() -> None:
    where, argv = probe_command({"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}}, CTR)
    assert where == "infra"
    assert argv[:4] == ["timeout", "1", "sh", "-c"]
    assert "wget -q --no-check-certificate" in argv[4]
    assert argv[5:] == ["https-probe", "https://127.0.0.1:8443/healthz", "1", "8443"]
    # A path with a space cannot break out of the URL argument.
    _, argv = probe_command({"httpGet": {"path": "/a b;rm", "port": 8443, "scheme": "HTTPS"}}, CTR)
    assert argv[6] == "https://127.0.0.1:8443/a%20b;rm"


def test_liveness_and_readiness_wait_for_the_startup_probe() -> None:
    calls: list[list[str]] = []
    answers = {"startup": 1}

    def run(ident: str, argv: list[str]) -> tuple[int, bytes]:
        calls.append(argv)
        if argv[-1] == "/started":
            return answers["startup"], b"not yet"
        return 0, b""

    changes: list[str] = []
    failures: list[tuple[Any, ...]] = []
    prober = Prober(run, changes.append, lambda *args: failures.append(args))
    ctr = {
        **CTR,
        "startupProbe": {"exec": {"command": ["test", "-f", "/started"]}, "periodSeconds": 0, "failureThreshold": 100},
        "readinessProbe": {"exec": {"command": ["true", "/ready"]}, "periodSeconds": 0},
        "livenessProbe": {"exec": {"command": ["true", "/alive"]}, "periodSeconds": 0},
    }
    prober.track("uid", ctr, "c1", "infra")
    prober.start()
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls and all(argv[-1] == "/started" for argv in calls)  # nothing else runs before startup
        assert not prober.started("uid", "web", "c1") and not prober.ready("uid", "web", "c1")
        answers["startup"] = 0
        while not prober.ready("uid", "web", "c1") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert prober.started("uid", "web", "c1") and prober.ready("uid", "web", "c1")
        assert any(argv[-1] == "/alive" for argv in calls) and "uid" in changes
        started_calls = sum(1 for argv in calls if argv[-1] == "/started")
        time.sleep(0.5)
        assert sum(1 for argv in calls if argv[-1] == "/started") == started_calls  # startup runs no more
    finally:
        prober.stop.set()


def test_startup_probe_failing_past_its_threshold_restarts_the_container() -> None:
    failures: list[tuple[Any, ...]] = []
    prober = Prober(lambda ident, argv: (1, b"no"), lambda uid: None, lambda *args: failures.append(args))
    ctr = {**CTR, "startupProbe": {"exec": {"command": ["false"]}, "periodSeconds": 0, "failureThreshold": 2}}
    prober.track("uid", ctr, "c1", "infra")
    prober.start()
    try:
        deadline = time.monotonic() + 5
        while not any(f[4] for f in failures) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(f[2] == "startup" and f[4] for f in failures), failures
    finally:
        prober.stop.set()
