"""A small client of mikro's API, as kubectl is one. Standard library only, so that the CLI
starts fast and never needs the docker package."""

from __future__ import annotations

import http.client
import json
import os
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO
from urllib.parse import urlencode

from mikro import __version__, config
from mikro.api.resources import Resource
from mikro.errors import ApiError

# The server names a writer that gives no fieldManager after this, as kube-apiserver does.
USER_AGENT = f"mikro/{__version__}"
# Kept-alive connections a client holds between requests (as many as its busiest moment used,
# up to this; mikro.cli.bulk runs at most this many requests at once).
MAX_IDLE = 8


def parse_warning(header: str) -> str:
    """The text of a `Warning: 299 - "text"` header, as kubectl prints it."""
    code, _, rest = header.partition(" ")
    agent, _, text = rest.partition(" ")
    if code.isdigit() and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return header


class NotRunning(Exception):
    """The control plane does not answer."""


class Client:
    def __init__(self, host: str, port: int, token: str, ca_file: str | None = None) -> None:
        self.host, self.port, self.token = host, port, token
        self.ca_file = ca_file or str(config.paths().ca)
        self._context: ssl.SSLContext | None = None
        self.warnings: list[str] = []  # the server's Warning headers, for the caller to show
        # Keep-alive connections not in use: a request takes one (or opens one) and gives it
        # back, so that a run of requests pays one TLS handshake per connection, not per
        # request, and threads (mikro.cli.bulk) each get their own.
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @classmethod
    def from_state(cls) -> Client:
        info = config.read_json(config.paths().endpoint)
        if not info:
            raise NotRunning("mikro is not running")
        pid = info.get("pid")
        if pid:
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                raise NotRunning("mikro is not running") from None
            except PermissionError:
                pass
        return cls("127.0.0.1", int(info["port"]), info["token"])

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        with self._lock:
            if self._context is None:
                self._context = ssl.create_default_context(cafile=self.ca_file)
        return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self._context)

    def _checkout(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        """A connection for one request: an idle kept-alive one (True), else a new one."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            return self._connect(timeout), False
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, True

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the kept-alive connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        timeout: float | None = 60,
        warnings: list[str] | None = None,
    ) -> Any:
        """One request on a kept-alive connection; the answer's JSON, or ApiError. The server's
        warnings go to `warnings` when given (one request's own, for callers on threads), else
        to `self.warnings`."""
        url = path + ("?" + urlencode(query, doseq=True) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Accept": accept, "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = content_type
        while True:
            conn, reused = self._checkout(timeout)
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if reused:
                    # The server closed this idle connection (its keep-alive timeout) before
                    # reading the request: send it again on a new one.
                    continue
                raise NotRunning(f"the mikro API at {self.server} does not answer ({exc})") from None
            except (ConnectionRefusedError, ssl.SSLError) as exc:
                conn.close()
                raise NotRunning(f"the mikro API at {self.server} does not answer ({exc})") from None
            except BaseException:
                conn.close()
                raise
            break
        if resp.will_close:
            conn.close()
        else:
            self._checkin(conn)
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        if resp.status >= 400:
            raise ApiError.from_status(resp.status, payload)
        sink = self.warnings if warnings is None else warnings
        sink.extend(parse_warning(w) for w in resp.headers.get_all("Warning") or [])
        return payload

    def stream(
        self, path: str, query: dict[str, Any] | None = None, accept: str = "application/json"
    ) -> Iterator[bytes]:
        """GET a streaming response (watch, logs), yielding lines."""
        conn = self._connect(None)
        url = path + ("?" + urlencode(query, doseq=True) if query else "")
        try:
            conn.request("GET", url, headers={"Authorization": f"Bearer {self.token}", "Accept": accept})
        except ConnectionRefusedError as exc:
            raise NotRunning(str(exc)) from None
        resp = conn.getresponse()
        if resp.status >= 400:
            raw = resp.read()
            try:
                raise ApiError.from_status(resp.status, json.loads(raw))
            except ValueError:
                raise ApiError(resp.status, raw.decode(errors="replace")) from None
        try:
            while True:
                line = resp.readline()
                if not line:
                    return
                yield line
        finally:
            conn.close()

    def exec(
        self,
        path: str,
        command: list[str],
        container: str | None,
        output: Callable[[int, bytes], None],
        stdin: BinaryIO | None = None,
        tty: bool = False,
        on_open: Callable[[Any], None] | None = None,
    ) -> int:
        """Run a command over `pods/exec` (WebSocket, as kubectl); return its exit code."""
        import socket

        from mikro.cli.streams import ExecSession

        query: dict[str, Any] = {"command": command, "stdout": "true", "stderr": "false" if tty else "true"}
        if tty:
            query["tty"] = "true"
        if container:
            query["container"] = container
        if stdin is not None:
            query["stdin"] = "true"
        if self._context is None:
            self._context = ssl.create_default_context(cafile=self.ca_file)
        try:
            raw = socket.create_connection((self.host, self.port), timeout=30)
        except OSError as exc:
            raise NotRunning(f"the mikro API at {self.server} does not answer ({exc})") from None
        with self._context.wrap_socket(raw, server_hostname=self.host) as sock:
            sock.settimeout(None)
            session = ExecSession(
                sock, f"{self.host}:{self.port}", path + "?" + urlencode(query, doseq=True), self.token
            )
            if on_open is not None:
                on_open(session)
            if stdin is not None:
                threading.Thread(target=session.pump_stdin, args=(stdin,), daemon=True).start()
            return session.run(output)

    # -- typed helpers ---------------------------------------------------------------------

    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        return self.request("GET", f"{res.base_path(ns)}/{name}")

    def list(self, res: Resource, ns: str | None = None, **query: Any) -> dict[str, Any]:
        return self.request("GET", res.base_path(ns), query={k: v for k, v in query.items() if v})

    def create(
        self, res: Resource, ns: str | None, obj: dict[str, Any], dry_run: bool = False, **params: str
    ) -> dict[str, Any]:
        query = {"dryRun": "All", **params} if dry_run else params
        return self.request("POST", res.base_path(ns), obj, query=query or None)

    def patch(
        self,
        res: Resource,
        ns: str | None,
        name: str,
        body: Any,
        kind: str = "application/merge-patch+json",
        dry_run: bool = False,
        sub: str = "",
        **params: str,
    ) -> dict[str, Any]:
        path = f"{res.base_path(ns)}/{name}" + (f"/{sub}" if sub else "")
        query = {"dryRun": "All", **params} if dry_run else params
        return self.request("PATCH", path, body, content_type=kind, query=query or None)

    def delete(
        self, res: Resource, ns: str | None, name: str, propagation: str | None = None, grace: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            body["propagationPolicy"] = propagation
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        return self.request("DELETE", f"{res.base_path(ns)}/{name}", body)

    def healthy(self) -> bool:
        try:
            conn = self._connect(2)
            conn.request("GET", "/readyz", headers={"Authorization": f"Bearer {self.token}"})
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False
