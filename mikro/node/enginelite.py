"""The few Docker engine calls of `mikro start`'s common path, over the engine's unix socket
with the standard library only.

`mikro start` of a cluster whose control-plane container and image exist already needs four
things of the engine: inspect an image, inspect a container, start it, stop it (when it dies
during its start). Importing the Docker SDK for them (requests, urllib3, charset_normalizer:
0.25-0.3 s of CPU) came before the container's start, so it delayed the whole start by that
much. Anything else (building the image, creating the container, an engine on TCP) is the
Docker SDK's, through `mikro.node.docker_backend`, as before: `Engine.from_env` gives None
when the engine is not on a unix socket, and every call raises `EngineError` on an answer it
does not expect, after which the caller takes the full path.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
from typing import Any
from urllib.parse import quote

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 30.0


class EngineError(Exception):
    """The engine did not answer as the common path expects: take the Docker SDK's path."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def socket_path(docker_host: str | None) -> str | None:
    """The engine's unix socket for DOCKER_HOST's value; None when it is not a unix socket."""
    host = docker_host or DEFAULT_HOST
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    return path if path.startswith("/") else None


_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@/+-]*$")


def _ref(ref: str) -> str:
    """A container name, id or image reference in a URL's path (the engine's routes take an
    image's slashes as they are); anything else is refused before it reaches the engine."""
    if not _REF.match(ref) or ".." in ref or "//" in ref:
        raise EngineError(f"not a container or image reference: {ref!r}")
    return quote(ref, safe="/:@+")


class Engine:
    """A keep-alive connection to the engine's unix socket (one thread at a time)."""

    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        self.conn = _UnixConnection(path, timeout)

    @classmethod
    def from_env(cls, timeout: float = TIMEOUT) -> Engine | None:
        path = socket_path(os.environ.get("DOCKER_HOST"))
        return cls(path, timeout) if path is not None and os.path.exists(path) else None

    def call(self, method: str, path: str) -> tuple[int, Any]:
        """(status, decoded JSON body or None)."""
        try:
            self.conn.request(method, path)
            resp = self.conn.getresponse()
            body = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            raise EngineError(f"{method} {path}: {exc}") from None
        if not body or not resp.getheader("Content-Type", "").startswith("application/json"):
            return resp.status, None
        try:
            return resp.status, json.loads(body)
        except ValueError:
            raise EngineError(f"{method} {path}: not JSON") from None

    def _found(self, path: str) -> dict[str, Any] | None:
        status, data = self.call("GET", path)
        if status == 404:
            return None
        if status != 200 or not isinstance(data, dict):
            raise EngineError(f"GET {path}: {status}")
        return data

    def image(self, ref: str) -> dict[str, Any] | None:
        """An image's inspection; None when there is none."""
        return self._found(f"/images/{_ref(ref)}/json")

    def inspect(self, ident: str) -> dict[str, Any] | None:
        """A container's inspection; None when there is none."""
        return self._found(f"/containers/{_ref(ident)}/json")

    def start(self, ident: str) -> None:
        status, data = self.call("POST", f"/containers/{_ref(ident)}/start")
        if status not in (204, 304):
            raise EngineError(f"start {ident}: {status} {(data or {}).get('message', '')}".strip())

    def stop(self, ident: str, timeout: int) -> None:
        status, data = self.call("POST", f"/containers/{_ref(ident)}/stop?t={int(timeout)}")
        if status not in (204, 304, 404):
            raise EngineError(f"stop {ident}: {status} {(data or {}).get('message', '')}".strip())

    def close(self) -> None:
        self.conn.close()
