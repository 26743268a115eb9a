"""What an NGINX master runs, read from /proc: whether a reload has taken effect.

`nginx -s reload` (SIGHUP) returns before the master has read the new configuration; the
master then starts new workers with it and tells the old ones to stop accepting (their title
becomes "nginx: worker process is shutting down"). So a configuration serves once the master
has a worker that was not there before the signal and no old worker still accepts. Reading
this needs the host's process table (the control plane runs with the host's PID namespace);
where it cannot be read, callers fall back to `docker exec`.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

PROC = Path("/proc")
WORKER = b"nginx: worker process"
SHUTTING_DOWN = b"nginx: worker process is shutting down"


def is_master(pid: int) -> bool:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().startswith(b"nginx: master process")
    except OSError:
        return False


def _children(pid: int) -> list[int]:
    try:
        text = (PROC / str(pid) / "task" / str(pid) / "children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        pass
    out = []  # kernels without CONFIG_PROC_CHILDREN: the parent field of every process
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def accepting_workers(master: int) -> set[int] | None:
    """The master's workers that accept connections; None when it is not an NGINX master."""
    if not is_master(master):
        return None
    out = set()
    for child in _children(master):
        try:
            title = (PROC / str(child) / "cmdline").read_bytes().rstrip(b"\0")
        except OSError:
            continue
        if title.startswith(WORKER) and not title.startswith(SHUTTING_DOWN):
            out.add(child)
    return out


def wait_serving(
    master: int,
    before: set[int],
    timeout: float,
    interval: float = 0.002,
    interrupt: Callable[[], bool] | None = None,
) -> bool | None:
    """Block until the master's accepting workers are all new (not in `before`) and at least
    one; False on timeout (the master refused the configuration and kept the old one) or when
    it is gone; None as soon as `interrupt()` answers True before that. The master forks the
    new workers within milliseconds of the signal, then lets the old ones accept for another
    100 ms (its `ngx_msleep(100)`): the check is a few reads of /proc, not a sleep."""
    deadline = time.monotonic() + timeout
    while True:
        now = accepting_workers(master)
        if now is None:
            return False
        if now and not (now & before):
            return True
        if time.monotonic() >= deadline:
            return False
        if interrupt is not None and interrupt():
            return None
        time.sleep(interval)


def visible(pid: int) -> bool:
    """Whether this process sees `pid` in its process table (the host's)."""
    return (PROC / str(pid)).exists()


def wait_started(pid: int, timeout: float, interval: float = 0.005) -> bool:
    """After a container's start: block until its main process is an NGINX master with a
    worker (the configuration is loaded and its ports listen); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        workers = accepting_workers(pid)
        if workers:
            return True
        if time.monotonic() >= deadline or not visible(pid):
            return False
        time.sleep(interval)


def hup(master: int) -> None:
    """SIGHUP to an NGINX master straight from this process (no Docker round trip), checked
    to be one just before; PermissionError when it runs as another user."""
    if not is_master(master):
        raise PermissionError(f"process {master} is not an NGINX master")
    os.kill(master, signal.SIGHUP)
