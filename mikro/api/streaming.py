"""Streaming subresources of Pods over WebSocket: `exec`, `attach` and `portforward`.

Wire formats, as kubectl 1.30+ and the Python clients speak them:

- exec/attach: subprotocols `v5.channel.k8s.io` (kubectl) and `v4.channel.k8s.io` (the official
  Python client, older clients). Every binary message starts with a channel byte: 0 stdin,
  1 stdout, 2 stderr, 3 error (one `metav1.Status` JSON as the process ends), 4 resize (TTY size
  JSON `{"Width": w, "Height": h}`); v5 adds 255, the close signal `[255, channel]` that
  half-closes one stream (kubectl sends `[255, 0]` at the end of its stdin).
- portforward: subprotocol `v4.channel.k8s.io` (or none): per requested port two channels, data
  `2i` and error `2i+1`; the first message of each carries the port as 2 bytes little-endian.

A request that is not a WebSocket upgrade runs nothing: it is answered `400 Upgrade request
required`, as Kubernetes answers it, before any process starts. (kubectl falls back to SPDY only
when the WebSocket upgrade fails; mikro speaks no SPDY, so the upgrade must, and does, succeed.)

The WebSocket framing is wsproto's (sans-I/O, so it runs on the threaded HTTP server's socket).
"""

from __future__ import annotations

import functools
import json
import select
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from mikro.errors import ApiError

if TYPE_CHECKING:
    from wsproto import WSConnection


@functools.cache
def _wsproto() -> ModuleType:
    """wsproto with the submodules used here, imported by the first WebSocket (with h11: 0.05 s
    of CPU), not while the control plane boots."""
    import wsproto
    import wsproto.connection
    import wsproto.events
    import wsproto.utilities

    return wsproto


SUBRESOURCES = ("exec", "attach", "portforward")

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5: [255, channel] half-closes that channel

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
EXEC_PROTOCOLS = (V5, V4)
PORTFORWARD_PROTOCOLS = (V4, "portforward.k8s.io")
SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"  # kubectl 1.31+: SPDY frames inside the WebSocket


# -- pure protocol pieces ------------------------------------------------------------------


@dataclass(frozen=True)
class StreamOptions:
    command: tuple[str, ...]
    container: str | None
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


def _flag(query: dict[str, list[str]], name: str, default: bool = False) -> bool:
    values = query.get(name)
    if not values:
        return default
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0", ""):
        return False
    raise ApiError(400, f'invalid value "{values[-1]}" for query parameter {name}: must be true or false')


def stream_options(sub: str, query: dict[str, list[str]]) -> StreamOptions:
    """The options of an exec or attach request, checked as Kubernetes checks them."""
    command = tuple(query.get("command") or [])
    container = (query.get("container") or [None])[-1]
    stdin = _flag(query, "stdin")
    stdout = _flag(query, "stdout")
    stderr = _flag(query, "stderr")
    tty = _flag(query, "tty")
    if sub == "exec" and not command:
        raise ApiError(400, "you must specify at least one command for the container")
    if not (stdin or stdout or stderr):
        raise ApiError(400, "you must specify at least 1 of stdin, stdout, stderr")
    return StreamOptions(command, container, stdin, stdout, stderr and not tty, tty)


def forward_ports(query: dict[str, list[str]]) -> list[int]:
    """The `ports` of a portforward request (repeated or comma-separated), each 1-65535."""
    ports = []
    for value in query.get("ports") or []:
        for item in value.split(","):
            item = item.strip()
            if not item.isdigit() or not 0 < int(item) < 65536:
                raise ApiError(400, f'invalid port "{item}": must be a number between 1 and 65535')
            ports.append(int(item))
    if not ports:
        raise ApiError(400, "at least one port must be specified")
    return ports


def negotiate(offered: list[str], supported: tuple[str, ...]) -> str | None:
    """The first protocol the client offers that mikro speaks (the client's order)."""
    for protocol in offered:
        if protocol in supported:
            return protocol
    return None


def is_websocket_upgrade(headers: Any) -> bool:
    connection = [v.strip().lower() for v in (headers.get("Connection") or "").split(",")]
    return "upgrade" in connection and (headers.get("Upgrade") or "").strip().lower() == "websocket"


def is_spdy_upgrade(headers: Any) -> bool:
    connection = [v.strip().lower() for v in (headers.get("Connection") or "").split(",")]
    return "upgrade" in connection and (headers.get("Upgrade") or "").strip().lower() == "spdy/3.1"


def success_status() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exit_status(code: int | None) -> dict[str, Any]:
    """The error channel's last word: Success, or the exit code as kubectl reads it
    (reason NonZeroExitCode, a cause ExitCode whose message is the number)."""
    if code == 0:
        return success_status()
    if code is None:
        return failure_status("the process ended without an exit code")
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure_status(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError", "code": 500}


def frame(channel: int, data: bytes) -> bytes:
    return bytes([channel]) + data


def parse_frame(message: bytes) -> tuple[int, bytes] | None:
    """(channel, payload) of a client message; None for an empty one."""
    if not message:
        return None
    return message[0], message[1:]


def parse_resize(payload: bytes) -> tuple[int, int] | None:
    """(width, height) of a resize message, or None when it is not one."""
    try:
        size = json.loads(payload)
        width, height = int(size["Width"]), int(size["Height"])
    except (ValueError, KeyError, TypeError):
        return None
    if not (0 < width < 65536 and 0 < height < 65536):
        return None
    return width, height


def port_header(port: int) -> bytes:
    return port.to_bytes(2, "little")


# -- the WebSocket on the HTTP server's socket ------------------------------------------------


class ProcessStream(Protocol):
    """A process's streams (the node's ContainerStream)."""

    def read(self) -> list[tuple[int, bytes]] | None: ...
    def write(self, data: bytes) -> None: ...
    def close_stdin(self) -> None: ...
    def resize(self, width: int, height: int) -> None: ...
    def exit_code(self) -> int | None: ...
    def close(self) -> None: ...


class WebSocket:
    """One server-side WebSocket on an accepted (TLS) socket. Writes are serialised by a lock
    that reads also take, so the TLS session is never used by two threads at once; a reader
    waits in select() without the lock."""

    def __init__(self, sock: socket.socket, ws: WSConnection) -> None:
        self.w = _wsproto()
        self.sock = sock
        self.ws = ws
        self.lock = threading.Lock()
        self._parts: list[bytes] = []
        self.messages: deque[bytes] = deque()
        self.ended = False

    @classmethod
    def handshake(cls, handler: Any, supported: tuple[str, ...], allow_none: bool = False) -> tuple[Any, str | None]:
        """Check the upgrade request; return (a function that answers 101, the protocol).
        Nothing has been written when this raises."""
        if not is_websocket_upgrade(handler.headers):
            upgrade = (handler.headers.get("Upgrade") or "").strip()
            if upgrade:
                raise ApiError(
                    400, f"unable to upgrade to {upgrade}: mikro streams this over WebSocket ({', '.join(supported)})"
                )
            raise ApiError(400, "Upgrade request required")
        w = _wsproto()
        ws = w.WSConnection(w.ConnectionType.SERVER)
        head = handler.requestline + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in handler.headers.items()) + "\r\n"
        ws.receive_data(head.encode("latin-1"))
        request = next((e for e in ws.events() if isinstance(e, w.events.Request)), None)
        if request is None:
            raise ApiError(400, "invalid WebSocket upgrade request")
        protocol = negotiate(list(request.subprotocols), supported)
        if protocol is None and not (allow_none and not request.subprotocols):
            raise ApiError(
                400,
                f"none of the offered subprotocols {list(request.subprotocols)} is supported; "
                f"mikro speaks {', '.join(supported)}",
            )

        def accept() -> WebSocket:
            sock = handler.connection
            sock.sendall(ws.send(w.events.AcceptConnection(subprotocol=protocol)))
            handler.close_connection = True
            sock.settimeout(120)
            return cls(sock, ws)

        return accept, protocol

    def send(self, channel: int, data: bytes) -> bool:
        with self.lock:
            if self.ws.state is not self.w.connection.ConnectionState.OPEN:
                return False
            try:
                self.sock.sendall(self.ws.send(self.w.events.BytesMessage(data=frame(channel, data))))
            except OSError:
                return False
        return True

    def send_raw(self, data: bytes) -> bool:
        """One binary message without a channel byte (the SPDY tunnel's bytes)."""
        with self.lock:
            if self.ws.state is not self.w.connection.ConnectionState.OPEN:
                return False
            try:
                self.sock.sendall(self.ws.send(self.w.events.BytesMessage(data=data)))
            except OSError:
                return False
        return True

    def close(self, code: int = 1000) -> None:
        with self.lock:
            if self.ws.state is self.w.connection.ConnectionState.OPEN:
                try:
                    self.sock.sendall(self.ws.send(self.w.events.CloseConnection(code=code)))
                except OSError:
                    pass

    def _ready(self, timeout: float) -> bool:
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        readable, _, _ = select.select([self.sock], [], [], timeout)
        return bool(readable)

    def receive(self, stop: threading.Event | None = None) -> bytes | None:
        """The next whole message from the client; None once the connection is closed."""
        while not self.messages:
            if self.ended or (stop is not None and stop.is_set()):
                return None
            try:
                if not self._ready(0.5):
                    continue
            except (OSError, ValueError):
                return None
            with self.lock:
                try:
                    data = self.sock.recv(65536)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                except OSError:
                    data = b""
                try:
                    self._absorb(data)
                except (self.w.utilities.LocalProtocolError, self.w.utilities.RemoteProtocolError):
                    self.ended = True  # a broken peer: end the session, not the server
        return self.messages.popleft()

    def _absorb(self, data: bytes) -> None:
        """Feed bytes to wsproto and queue every whole message they complete (one read may
        carry several: kubectl's last stdin and its close signal often come together)."""
        self.ws.receive_data(data or None)
        for event in self.ws.events():
            if isinstance(event, self.w.events.Ping):
                self._quiet_send(self.ws.send(event.response()))
            elif isinstance(event, self.w.events.CloseConnection):
                if self.ws.state is self.w.connection.ConnectionState.REMOTE_CLOSING:
                    self._quiet_send(self.ws.send(event.response()))
                self.ended = True
            elif isinstance(event, self.w.events.Message):
                self._parts.append(
                    event.data.encode() if isinstance(event, self.w.events.TextMessage) else bytes(event.data)
                )
                if event.message_finished:
                    self.messages.append(b"".join(self._parts))
                    self._parts = []
        if not data:
            self.ended = True

    def _quiet_send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass


# -- exec and attach --------------------------------------------------------------------------


def serve_process(
    handler: Any, opts: StreamOptions, start: Callable[[StreamOptions], ProcessStream], attach: bool = False
) -> None:
    """Upgrade, start the process, and carry its streams until it ends."""
    accept, protocol = WebSocket.handshake(handler, EXEC_PROTOCOLS)
    stream = start(opts)  # raises ApiError before anything is written
    try:
        conn = accept()
    except OSError:
        stream.close()
        return
    done = threading.Event()
    reader = threading.Thread(
        target=_client_to_process, args=(conn, stream, opts, protocol, done), name="exec-stdin", daemon=True
    )
    reader.start()
    try:
        while True:
            pieces = stream.read()
            if pieces is None:
                break
            for channel, data in pieces:
                wanted = opts.stderr if channel == STDERR else opts.stdout
                if wanted and not conn.send(STDERR if channel == STDERR else STDOUT, data):
                    break
        status = success_status() if attach else exit_status(stream.exit_code())
        conn.send(ERROR, json.dumps(status, separators=(",", ":")).encode())
        conn.close()
    finally:
        done.set()
        reader.join(timeout=5)
        stream.close()


def _client_to_process(
    conn: WebSocket, stream: ProcessStream, opts: StreamOptions, protocol: str | None, done: threading.Event
) -> None:
    stdin_open = opts.stdin
    while True:
        message = conn.receive(stop=done)
        if message is None:
            break
        parsed = parse_frame(message)
        if parsed is None:
            continue
        channel, payload = parsed
        if channel == STDIN and stdin_open:
            try:
                stream.write(payload)
            except OSError:
                stdin_open = False
        elif channel == RESIZE and opts.tty:
            size = parse_resize(payload)
            if size is not None:
                stream.resize(*size)
        elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]) and stdin_open:
            stream.close_stdin()
            stdin_open = False
    if not done.is_set():
        # The client went away before the process ended: let the process see the end of its
        # input, and stop carrying its output.
        stream.close()


# -- port forwarding --------------------------------------------------------------------------


def serve_portforward(handler: Any, query: dict[str, list[str]], connect: Callable[[int], socket.socket]) -> None:
    """Upgrade, then carry TCP connections to the pod: kubectl's SPDY inside the WebSocket
    (portforward.py), or the channel framing, one connection per port in `ports`."""
    if is_spdy_upgrade(handler.headers):
        from mikro.api import portforward

        portforward.serve(portforward.accept_spdy(handler), connect)
        return
    accept, protocol = WebSocket.handshake(handler, (SPDY_TUNNEL, *PORTFORWARD_PROTOCOLS), allow_none=True)
    if protocol == SPDY_TUNNEL:
        from mikro.api import portforward

        portforward.serve(accept(), connect)
        return
    ports = forward_ports(query)
    conn = accept()
    done = threading.Event()
    targets: dict[int, socket.socket] = {}
    for i, port in enumerate(ports):
        conn.send(2 * i, port_header(port))
        conn.send(2 * i + 1, port_header(port))
        try:
            targets[i] = connect(port)
        except OSError as exc:
            conn.send(2 * i + 1, f"failed to connect to port {port} in the pod: {exc}".encode())
    pumps = [
        threading.Thread(target=_target_to_client, args=(conn, sock, 2 * i, done), daemon=True)
        for i, sock in targets.items()
    ]
    for pump in pumps:
        pump.start()
    try:
        while targets and not done.is_set():
            message = conn.receive(stop=done)
            if message is None:
                break
            parsed = parse_frame(message)
            if parsed is None:
                continue
            channel, payload = parsed
            target = targets.get(channel // 2)
            if channel % 2 == 0 and target is not None and payload:
                try:
                    target.sendall(payload)
                except OSError:
                    break
    finally:
        done.set()
        for sock in targets.values():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for pump in pumps:
            pump.join(timeout=5)
        conn.close()


def connect_tcp(ip: str, port: int) -> socket.socket:
    """A connection to a pod's port over the cluster network (routed from the host on Linux)."""
    sock = socket.create_connection((ip, port), timeout=10)
    sock.settimeout(None)
    return sock


def _target_to_client(conn: WebSocket, sock: socket.socket, channel: int, done: threading.Event) -> None:
    while not done.is_set():
        try:
            data = sock.recv(65536)
        except OSError:
            data = b""
        if not data or not conn.send(channel, data):
            break
    done.set()
    conn.close()
