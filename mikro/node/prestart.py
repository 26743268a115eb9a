"""Start again what `mikro stop` stopped, while the control plane's code is still importing.

Importing the control plane takes about a second of CPU (the Docker SDK, jsonschema, the API
server); starting the cluster's stopped containers is a wait on the engine of about as long.
At a clean stop the control plane records which of its containers were running (`record`);
the next start reads that record and starts those containers from a thread (`begin`): the
pods' infra containers, the proxies and the ingress at once, and each pod's other containers
as soon as its own infra container runs (they join its network namespace), as the pod
runtime's own boot does, while the main thread imports. The runtime
and the network then find them running: nothing else changes (restart counts, readiness,
back-off stay theirs; a container that cannot start is left to them).

The record is consumed when read, so a control plane that crashes during its start does not
start the same containers twice. The engine is called over its unix socket with the
standard library: the point is not to wait for the Docker SDK's import (0.3 s of CPU).
"""

from __future__ import annotations

import fcntl
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger("mikro.prestart")
RECORD = "stopped-containers.json"
LOCK = "prestart.lock"
CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$")
FIRST_KINDS = ("proxy", "ingress")  # and the pods' infra containers


def plan(containers: list[dict[str, Any]], label_prefix: str) -> dict[str, Any]:
    """The running pods', proxies' and ingress's containers (Docker list entries): what others
    join (infra containers, proxies, ingress) `first`, the rest `then`, and `after`: each infra
    container's id -> the ids of its pod's other containers, started as soon as it runs."""
    first, then = [], []
    infra: dict[str, str] = {}  # pod uid -> its infra container
    apps: dict[str, list[str]] = {}  # pod uid -> its other containers
    for c in containers:
        labels = c.get("Labels") or {}
        kind = labels.get(label_prefix + "kind")
        if c.get("State") != "running" or kind not in ("pod", *FIRST_KINDS):
            continue
        uid = labels.get(label_prefix + "uid", "")
        if kind in FIRST_KINDS:
            first.append(c["Id"])
        elif labels.get(label_prefix + "container") == "POD":
            first.append(c["Id"])
            infra[uid] = c["Id"]
        else:
            then.append(c["Id"])
            apps.setdefault(uid, []).append(c["Id"])
    return {"first": first, "then": then, "after": {infra[uid]: ids for uid, ids in apps.items() if uid in infra}}


def record(state_dir: Path, waves: dict[str, Any]) -> None:
    (state_dir / RECORD).write_text(json.dumps(waves))


def _ids(value: Any) -> list[str]:
    return [i for i in value if isinstance(i, str) and CONTAINER_ID.match(i)] if isinstance(value, list) else []


def take(state_dir: Path) -> dict[str, Any]:
    """The record, removed; empty when there is none or it is not one (a record of an older
    mikro has no `after`: its second wave starts after the whole first)."""
    path = state_dir / RECORD
    empty: dict[str, Any] = {"first": [], "then": [], "after": {}}
    try:
        text = path.read_text()
        path.unlink()
        data = json.loads(text)
    except (OSError, ValueError):
        return empty
    if not isinstance(data, dict):
        return empty
    after = data.get("after") if isinstance(data.get("after"), dict) else {}
    return {
        "first": _ids(data.get("first")),
        "then": _ids(data.get("then")),
        "after": {k: _ids(v) for k, v in after.items() if CONTAINER_ID.match(k) and _ids(v)},
    }


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self.path)
        self.sock = sock


def engine_socket() -> str | None:
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    return host.removeprefix("unix://") if host.startswith("unix://") else None


def start_container(sock_path: str, ident: str) -> bool:
    """`POST /containers/<id>/start`: whether it runs now (204 started, 304 already)."""
    conn = _UnixConnection(sock_path)
    try:
        conn.request("POST", f"/containers/{ident}/start")
        resp = conn.getresponse()
        body = resp.read()
        if resp.status not in (204, 304):
            log.info("prestart of %s: %s %s", ident[:12], resp.status, body[:200].decode(errors="replace").strip())
        return resp.status in (204, 304)
    except OSError as exc:
        log.info("prestart of %s: %s", ident[:12], exc)
        return False
    finally:
        conn.close()


def run(waves: dict[str, Any], start: Callable[[str], bool]) -> None:
    """Start `first` side by side, each pod's containers once its infra container runs (none
    when it did not start: they could not join it), then the rest of `then`."""
    began = time.monotonic()
    after: dict[str, list[str]] = waves.get("after") or {}
    chained = {ident for ids in after.values() for ident in ids}
    joined: list[Future[bool]] = []
    with ThreadPoolExecutor(max_workers=16) as pool:

        def first(ident: str) -> bool:
            ok = start(ident)
            if ok:
                joined.extend(pool.submit(start, app) for app in after.get(ident, []))
            return ok

        started = sum(pool.map(first, waves["first"]))
        started += sum(pool.map(start, [i for i in waves["then"] if i not in chained]))
        started += sum(f.result() for f in joined)
    log.info("prestart: %d containers started again in %.2fs", started, time.monotonic() - began)


def begin(state_dir: Path, only_if_recorded: bool = False) -> threading.Thread | None:
    """Start the recorded containers from a thread; join it before the runtime and the
    network look at Docker. `mikro start` calls it too, before it starts the control plane's
    container (`only_if_recorded`): whichever comes first holds the state directory's
    prestart.lock while it starts them, and the other, waiting for the lock, then finds the
    record taken. None: nothing to do, or the engine is not on a unix socket."""
    sock_path = engine_socket()
    if sock_path is None or (only_if_recorded and not (state_dir / RECORD).exists()):
        return None

    def work() -> None:
        try:
            fd = os.open(state_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.info("prestart: %s", exc)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            waves = take(state_dir)
            if waves["first"] or waves["then"]:
                run(waves, lambda ident: start_container(sock_path, ident))
        finally:
            os.close(fd)  # and the lock with it

    thread = threading.Thread(target=work, name="prestart", daemon=True)
    thread.start()
    return thread
