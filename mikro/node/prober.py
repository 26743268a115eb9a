"""The kubelet's prober: startup, readiness and liveness probes of running containers.

Probes run inside the pod (through `docker exec`), so they reach the container on localhost
exactly as the kubelet reaches it on the pod's address: httpGet with the infra container's
wget, tcpSocket with its nc, exec in the container itself. HTTPS and gRPC probes go from the
node to the pod's address, as the kubelet's do (grpc: the standard health service, grpcprobe.py). A readiness change re-syncs the pod (its Ready condition, then Endpoints); a liveness
failure past the threshold stops the container, which the runtime then restarts.
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mikro.node import grpcprobe

log = logging.getLogger("mikro.prober")

Exec = Callable[[str, list[str]], tuple[int, bytes]]  # (container id, argv) -> (exit code, output)
# (pod IP, port, path, timeout, headers) -> (0 when healthy, message)
HttpsGet = Callable[[str, int, str, float, dict[str, str]], tuple[int, bytes]]
GrpcCheck = Callable[[str, int, str, float], tuple[int, bytes]]  # (pod IP, port, service, timeout)


def https_get(ip: str, port: int, path: str, timeout: float, headers: dict[str, str]) -> tuple[int, bytes]:
    """An HTTPS probe as the kubelet makes it: TLS without checking the certificate, success
    for a status from 200 to 399."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # the kubelet talks to old servers too
    except ssl.SSLError:
        pass
    conn = http.client.HTTPSConnection(ip, port, timeout=timeout, context=ctx)
    try:
        conn.request("GET", path, headers={"User-Agent": "kube-probe/1.32", "Accept": "*/*", **headers})
        resp = conn.getresponse()
        if 200 <= resp.status < 400:
            return 0, b""
        return 1, f"HTTP probe failed with statuscode: {resp.status}".encode()
    except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
        return 1, f'Get "https://{ip}:{port}{path}": {exc}'.encode()
    finally:
        conn.close()


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
    """Where to run a probe and the command whose exit code is its result: "infra" or "app"
    (inside the pod), "host" (HTTPS, from the control plane to the pod's IP: port, path,
    timeout) or "grpc" (the health service at the pod's IP: port, service, timeout)."""
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
            # From the node to the pod's address, as the kubelet: Python's TLS, which speaks to
            # any server (busybox wget's own TLS cannot negotiate with OpenSSL 3's defaults).
            return "host", [str(port), quote_path(path), timeout]
        url = f"http://127.0.0.1:{port}{quote_path(path)}"
        return "infra", ["timeout", timeout, "wget", "-q", "-O", "/dev/null", url]
    if "grpc" in probe:
        grpc = probe["grpc"] or {}
        port = resolve_port(grpc.get("port"), ctr)
        return None if port is None else ("grpc", [str(port), str(grpc.get("service") or ""), timeout])
    if "tcpSocket" in probe:
        port = resolve_port((probe["tcpSocket"] or {}).get("port"), ctr)
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
    pod_ip: str = ""
    ok: bool = False
    successes: int = 0
    failures: int = 0
    running: bool = field(default=False)


class Prober:
    def __init__(
        self,
        run: Exec,
        on_ready_change: Callable[[str], None],
        on_failure: Callable[[str, str, str, str, bool], None],
        clock: Callable[[], float] = time.monotonic,
        get: HttpsGet = https_get,
        grpc: GrpcCheck = grpcprobe.check,
    ) -> None:
        self.run = run
        self.get = get
        self.grpc = grpc
        self.clock = clock  # monotonic: a wall-clock jump (a laptop's sleep) never fires probes early
        self.on_ready_change = on_ready_change
        # (uid, container name, kind, message, restart): restart when liveness gave up on it
        self.on_failure = on_failure
        self.states: dict[tuple[str, str, str], ProbeState] = {}  # (uid, container, kind)
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="prober")
        self.stop = threading.Event()
        # Set when a probe may have become due sooner than the loop planned: a container
        # tracked (its first probe is due after initialDelaySeconds, often at once) or a
        # startup probe that succeeded (readiness may begin).
        self.wake = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="prober", daemon=True).start()

    def track(self, uid: str, ctr: dict[str, Any], container_id: str | None, infra_id: str, pod_ip: str = "") -> None:
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
                    due=self.clock() + int(probe.get("initialDelaySeconds", 0)),
                    pod_ip=pod_ip,
                )
                self.wake.set()

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
        while not self.stop.is_set():
            for key, state in self._take_due():
                self.pool.submit(self._probe, key, state)
            self.wake.wait(self.next_wait())
            self.wake.clear()

    def next_wait(self, longest: float = 1.0) -> float:
        """Seconds until the next probe is due (at most `longest`): the loop sleeps until
        then or until woken, instead of looking every 0.2 s (a ready container's first
        readiness result waited up to 0.2 s for the next look)."""
        now = self.clock()
        with self.lock:
            dues = [
                s.due
                for k, s in self.states.items()
                if not s.running and not (s.kind == "startup" and s.ok) and not self._waiting_for_startup(k, s)
            ]
        return max(0.0, min([longest, *(due - now for due in dues)]))

    def _take_due(self) -> list[tuple[tuple[str, str, str], ProbeState]]:
        now = self.clock()
        with self.lock:
            due = [
                (k, s)
                for k, s in self.states.items()
                if s.due <= now
                and not s.running
                and not (s.kind == "startup" and s.ok)
                and not self._waiting_for_startup(k, s)
            ]
            for _, state in due:
                state.running = True
        return due

    def tick(self) -> None:
        """Run the probes due now, in this thread (tests drive the clock with it)."""
        for key, state in self._take_due():
            self._probe(key, state)

    def _probe(self, key: tuple[str, str, str], state: ProbeState) -> None:
        uid, name, kind = key
        where, argv = state.command
        target = state.infra_id if where == "infra" else state.container_id
        try:
            if where == "host":
                headers = {
                    str(h.get("name")): str(h.get("value", ""))
                    for h in (state.probe.get("httpGet") or {}).get("httpHeaders") or []
                    if isinstance(h, dict) and h.get("name")
                }
                code, output = self.get(state.pod_ip, int(argv[0]), argv[1], float(argv[2]), headers)
            elif where == "grpc":
                code, output = self.grpc(state.pod_ip, int(argv[0]), argv[1], float(argv[2]))
            else:
                code, output = self.run(target, argv)
        except Exception:  # noqa: BLE001 - the container stopped or went: no result, as the kubelet
            # A probe of a container that is not running says nothing about the next one; counted
            # as a failure it would kill that next container.
            with self.lock:
                state.running = False
                state.due = self.clock() + int(state.probe.get("periodSeconds", 10))
            return
        probe = state.probe
        with self.lock:
            state.running = False
            state.due = self.clock() + int(probe.get("periodSeconds", 10))
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
        self.wake.set()  # this probe's next run is planned anew (and a startup success lets others begin)
        if kind in ("readiness", "startup") and before != state.ok:
            self.on_ready_change(uid)  # a startup success lets readiness and liveness begin
        if code != 0:
            message = output.decode(errors="replace").strip()[-200:] or f"exit code {code}"
            restart = kind in ("liveness", "startup") and failed_out
            if restart:
                with self.lock:
                    state.failures = 0
            self.on_failure(uid, name, kind, message, restart)
