"""The kubelet's prober: readiness and liveness probes of running containers.

Probes run inside the pod (through `docker exec`), so they reach the container on localhost
exactly as the kubelet reaches it on the pod's address: httpGet with the infra container's
wget, tcpSocket (and grpc, checked as a TCP connection) with its nc, exec in the container
itself. A readiness change re-syncs the pod (its Ready condition, then Endpoints); a liveness
failure past the threshold stops the container, which the runtime then restarts.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("mikro.prober")

Exec = Callable[[str, list[str]], tuple[int, bytes]]  # (container id, argv) -> (exit code, output)


def resolve_port(port: Any, ctr: dict[str, Any]) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in ctr.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    return None


def quote_path(path: str) -> str:
    """A probe path as it may go into a URL (spaces and the like percent-encoded)."""
    return urllib.parse.quote(path, safe="/?&=%:@!$'()*+,;~-._")


def probe_command(probe: dict[str, Any], ctr: dict[str, Any]) -> tuple[str, list[str]] | None:
    """Where to run a probe ("infra" or "app") and the command whose exit code is its result."""
    timeout = str(max(int(probe.get("timeoutSeconds", 1)), 1))
    if "exec" in probe:
        command = (probe["exec"] or {}).get("command") or []
        return ("app", ["timeout", timeout, *command]) if command else None
    if "httpGet" in probe:
        get = probe["httpGet"] or {}
        port = resolve_port(get.get("port"), ctr)
        if port is None:
            return None
        path = get.get("path") or "/"
        path = path if path.startswith("/") else "/" + path
        if get.get("scheme", "HTTP").upper() == "HTTPS":
            # The kubelet speaks TLS without checking the certificate; so does busybox wget. Its
            # own TLS knows fewer cipher suites than some servers insist on: when the handshake
            # itself fails, the probe falls back to a connection check of the port.
            url = f"https://127.0.0.1:{port}{quote_path(path)}"
            script = (
                'out=$(wget -q --no-check-certificate -O /dev/null "$1" 2>&1) && exit 0; '
                'case "$out" in *"TLS error"*|*"handshake"*|*"TLS"*"not"*) nc -w "$2" 127.0.0.1 "$3" -e true;; '
                '*) echo "$out"; exit 1;; esac'
            )
            return "infra", ["timeout", timeout, "sh", "-c", script, "https-probe", url, timeout, str(port)]
        url = f"http://127.0.0.1:{port}{quote_path(path)}"
        return "infra", ["timeout", timeout, "wget", "-q", "-O", "/dev/null", url]
    for kind in ("tcpSocket", "grpc"):
        if kind in probe:
            port = resolve_port((probe[kind] or {}).get("port"), ctr)
            if port is None:
                return None
            return "infra", ["timeout", timeout, "nc", "-w", timeout, "127.0.0.1", str(port), "-e", "true"]
    return None


@dataclass
class ProbeState:
    kind: str  # startup, readiness or liveness
    probe: dict[str, Any]
    command: tuple[str, list[str]]
    container_id: str
    infra_id: str
    due: float
    ok: bool = False
    successes: int = 0
    failures: int = 0
    running: bool = field(default=False)


class Prober:
    def __init__(
        self, run: Exec, on_ready_change: Callable[[str], None], on_failure: Callable[[str, str, str, str, bool], None]
    ) -> None:
        self.run = run
        self.on_ready_change = on_ready_change
        # (uid, container name, kind, message, restart): restart when liveness gave up on it
        self.on_failure = on_failure
        self.states: dict[tuple[str, str, str], ProbeState] = {}  # (uid, container, kind)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prober")
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="prober", daemon=True).start()

    def track(self, uid: str, ctr: dict[str, Any], container_id: str | None, infra_id: str) -> None:
        """Probe this container from now on (a new container id starts its probes afresh)."""
        for kind in ("startup", "readiness", "liveness"):
            probe = ctr.get(f"{kind}Probe")
            key = (uid, ctr["name"], kind)
            with self.lock:
                current = self.states.get(key)
                if not probe or container_id is None:
                    self.states.pop(key, None)
                    continue
                if current is not None and current.container_id == container_id:
                    continue
                command = probe_command(probe, ctr)
                if command is None:
                    continue
                self.states[key] = ProbeState(
                    kind,
                    probe,
                    command,
                    container_id,
                    infra_id,
                    due=time.monotonic() + int(probe.get("initialDelaySeconds", 0)),
                )

    def forget(self, uid: str) -> None:
        with self.lock:
            for key in [k for k in self.states if k[0] == uid]:
                del self.states[key]

    def started(self, uid: str, name: str, container_id: str) -> bool:
        """A running container has started once its startup probe (if any) succeeded."""
        state = self.states.get((uid, name, "startup"))
        if state is None or state.container_id != container_id:
            return (uid, name, "startup") not in self.states
        return state.ok

    def _waiting_for_startup(self, key: tuple[str, str, str], state: ProbeState) -> bool:
        """Readiness and liveness probes wait until the startup probe has succeeded."""
        if key[2] == "startup":
            return False
        startup = self.states.get((key[0], key[1], "startup"))
        return startup is not None and startup.container_id == state.container_id and not startup.ok

    def ready(self, uid: str, name: str, container_id: str) -> bool:
        """A running container is ready unless a readiness probe says otherwise (or has not
        yet said yes), and never before its startup probe succeeded."""
        if not self.started(uid, name, container_id):
            return False
        state = self.states.get((uid, name, "readiness"))
        if state is None or state.container_id != container_id:
            return (uid, name, "readiness") not in self.states
        return state.ok

    def _loop(self) -> None:
        while not self.stop.wait(0.2):
            now = time.monotonic()
            with self.lock:
                due = [
                    (k, s)
                    for k, s in self.states.items()
                    if s.due <= now and not s.running and not (s.kind == "startup" and s.ok)
                    and not self._waiting_for_startup(k, s)
                ]
                for _, state in due:
                    state.running = True
            for key, state in due:
                self.pool.submit(self._probe, key, state)

    def _probe(self, key: tuple[str, str, str], state: ProbeState) -> None:
        uid, name, kind = key
        where, argv = state.command
        target = state.infra_id if where == "infra" else state.container_id
        try:
            code, output = self.run(target, argv)
        except Exception as exc:  # noqa: BLE001 - a container gone mid-probe is a failed probe
            code, output = -1, str(exc).encode()
        probe = state.probe
        with self.lock:
            state.running = False
            state.due = time.monotonic() + int(probe.get("periodSeconds", 10))
            if self.states.get(key) is not state:
                return  # replaced or forgotten meanwhile
            if code == 0:
                state.successes, state.failures = state.successes + 1, 0
            else:
                state.failures, state.successes = state.failures + 1, 0
            before = state.ok
            if state.successes >= int(probe.get("successThreshold", 1)):
                state.ok = True
            elif state.failures >= int(probe.get("failureThreshold", 3)):
                state.ok = False
            failed_out = state.failures >= int(probe.get("failureThreshold", 3))
        if kind in ("readiness", "startup") and before != state.ok:
            self.on_ready_change(uid)  # a startup success lets readiness and liveness begin
        if code != 0:
            message = output.decode(errors="replace").strip()[-200:] or f"exit code {code}"
            restart = kind in ("liveness", "startup") and failed_out
            if restart:
                with self.lock:
                    state.failures = 0
            self.on_failure(uid, name, kind, message, restart)
