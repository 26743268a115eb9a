"""startupProbe gating and HTTPS probes: a fake exec, and a TLS server on 127.0.0.1 (no Docker)."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro.node.prober import Prober, https_get, probe_command
from tests.certs import self_signed

CTR = {"name": "web", "ports": [{"name": "https", "containerPort": 8443}]}


def test_https_probe_goes_from_the_node_to_the_pod_address() -> None:
    assert probe_command({"httpGet": {"path": "/healthz", "port": "https", "scheme": "HTTPS"}}, CTR) == (
        "host",
        ["8443", "/healthz", "1"],
    )
    # A path with a space or a line break cannot smuggle anything into the request line.
    assert probe_command({"httpGet": {"path": "/a b\r\nX: y", "port": 8443, "scheme": "HTTPS"}}, CTR)[1][1] == (
        "/a%20b%0D%0AX:%20y"
    )
    seen: list[tuple[Any, ...]] = []
    prober = Prober(
        lambda ident, argv: (0, b""),
        lambda uid: None,
        lambda *args: None,
        get=lambda *args: seen.append(args) or (0, b""),
    )
    ctr = {
        **CTR,
        "readinessProbe": {
            "httpGet": {"scheme": "HTTPS", "port": 8443, "path": "/h", "httpHeaders": [{"name": "X-Probe", "value": "1"}]},
            "periodSeconds": 0,
        },
    }
    prober.track("uid", ctr, "c1", "infra", "10.152.0.7")
    prober.start()
    try:
        deadline = time.monotonic() + 5
        while not prober.ready("uid", "web", "c1") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen[0] == ("10.152.0.7", 8443, "/h", 1.0, {"X-Probe": "1"})
    finally:
        prober.stop.set()


@pytest.fixture()
def tls_server(tmp_path: Path) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate: /ok answers 200, the rest 404."""
    cert, key = self_signed("probe.test")
    (tmp_path / "c.pem").write_bytes(cert)
    (tmp_path / "k.pem").write_bytes(key)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.send_response(200 if self.path == "/ok" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_https_get_speaks_tls_and_reads_the_status(tls_server: int) -> None:
    assert https_get("127.0.0.1", tls_server, "/ok", 2.0, {}) == (0, b"")
    assert https_get("127.0.0.1", tls_server, "/missing", 2.0, {}) == (1, b"HTTP probe failed with statuscode: 404")


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
