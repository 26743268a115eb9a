"""The dashboard addon: a web page on 127.0.0.1 that reads and watches the Kubernetes API.

The page is static (addons/dashboard/static: plain HTML, CSS and ES modules, no build step and
no CDN). It talks to the API as any client does, with the cluster's bearer token, through a
small same-origin proxy here, as `kubectl proxy` does: the browser cannot trust the cluster's
own CA, and a same-origin page needs no CORS. The proxy adds no credentials of its own: a
request without the user's token gets the API's 401.
"""

from __future__ import annotations

import http.client
import logging
import mimetypes
import socket
import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("mikro.dashboard")

DASHBOARD_ADDON = "dashboard"
DEFAULT_PORT = 10443  # microk8s users reach their dashboard on 10443 after a port-forward
PROXIED_PREFIXES = ("/api/", "/apis/", "/version")
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")
MAX_BODY = 3 << 20  # the API's own limit


def static_root() -> Path:
    from mikro.net.ingress import addons_root

    return addons_root() / "dashboard" / "static"


def static_file(root: Path, path: str) -> Path | None:
    """The file a page path names, never outside `root` (`/` is the index)."""
    relative = path.lstrip("/") or "index.html"
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root.resolve()) or not candidate.is_file():
        return None
    return candidate


class DashboardHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: DashboardServer
    server_version = "mikro-dashboard"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            if path.startswith(PROXIED_PREFIXES):
                self._proxy(method)
            elif method == "GET":
                self._static(path)
            else:
                self._plain(405, b"method not allowed\n")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _plain(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        self.end_headers()
        self.wfile.write(body)

    def _static(self, path: str) -> None:
        found = static_file(self.server.static, path)
        if found is None:
            self._plain(404, b"not found\n")
            return
        kind = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
        if found.suffix == ".js":
            kind = "text/javascript"
        self._plain(200, found.read_bytes(), f"{kind}; charset=utf-8" if kind.startswith("text") else kind)

    def _proxy(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            self._plain(413, b"request entity too large\n")
            self.close_connection = True
            return
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPSConnection("127.0.0.1", self.server.api_port, context=self.server.tls, timeout=None)
        headers = {h: self.headers[h] for h in FORWARDED_HEADERS if self.headers.get(h)}
        try:
            upstream.request(method, self.path, body=body, headers=headers)
            resp = upstream.getresponse()
        except OSError as exc:
            self._plain(502, f"the mikro API does not answer: {exc}\n".encode())
            return
        try:
            self.send_response(resp.status)
            for name in ("Content-Type", "Warning"):
                if resp.getheader(name):
                    self.send_header(name, resp.getheader(name))
            self.send_header("Cache-Control", "no-store")
            # Without it a browser holds the first bytes of a text stream back to sniff its type.
            self.send_header("X-Content-Type-Options", "nosniff")
            length_header = resp.getheader("Content-Length")
            if length_header is not None:
                self.send_header("Content-Length", length_header)
                self.end_headers()
                self.wfile.write(resp.read())
                return
            # A stream (watch, logs -f): pass each piece on as it comes, chunked.
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while True:
                piece = resp.read1(65536)
                if not piece:
                    break
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()


class DashboardServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api_port: int, ca_file: str, static: Path) -> None:
        super().__init__(address, DashboardHandler)
        self.api_port = api_port
        self.tls = ssl.create_default_context(cafile=ca_file)
        self.static = static


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """The preferred port when it is free, else the next free one above it."""
    for port in range(preferred, preferred + 100):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {preferred}-{preferred + 99}")


class DashboardAddon:
    """Runs the dashboard's server while the addon is enabled (level-triggered, once a second)."""

    def __init__(self, addons: Callable[[], dict[str, str]], set_status: Callable[[str, str], None],
                 set_port: Callable[[int], None], api_port: int, ca_file: str, host: str = "127.0.0.1") -> None:
        self.addons, self.set_status, self.set_port = addons, set_status, set_port
        self.api_port, self.ca_file, self.host = api_port, ca_file, host
        self.server: DashboardServer | None = None
        self.stop = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="dashboard", daemon=True).start()

    def _loop(self) -> None:
        while not self.stop.wait(1.0):
            try:
                self.reconcile()
            except Exception:  # the addon must not end the control plane
                log.exception("dashboard reconcile failed")
        self.shutdown()

    def reconcile(self) -> None:
        state = self.addons()
        wanted = state.get(DASHBOARD_ADDON) == "enabled"
        if wanted and self.server is None:
            preferred = int(state.get(f"{DASHBOARD_ADDON}.port") or DEFAULT_PORT)
            try:
                port = free_port(preferred, self.host)
                self.server = DashboardServer((self.host, port), self.api_port, self.ca_file, static_root())
            except OSError as exc:
                self.set_status(DASHBOARD_ADDON, f"error: {exc}")
                return
            threading.Thread(target=self.server.serve_forever, name="dashboard-http", daemon=True).start()
            self.set_port(port)
            self.set_status(DASHBOARD_ADDON, "running")
            log.info("dashboard on http://%s:%d/", self.host, port)
        elif not wanted and self.server is not None:
            self.shutdown()

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
