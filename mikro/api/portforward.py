"""kubectl's port-forward: SPDY/3.1 streams inside a WebSocket (`SPDY/3.1+portforward.k8s.io`).

For each local connection kubectl opens two SPDY streams carrying the headers `streamtype`
(`error`, then `data`), `port` and `requestid`; mikro answers each with SYN_REPLY, connects to
the pod's port when both streams of a request are there, and carries bytes between the data
stream and that connection. At the end it FINs the data and the error stream (kubectl waits for
the error stream's end before it closes the local connection); a failure to connect is written
to the error stream, which kubectl prints.
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mikro.api import spdy
from mikro.api.streaming import WebSocket
from mikro.errors import ApiError

log = logging.getLogger("mikro.portforward")


@dataclass
class Forward:
    request_id: str
    port: int
    data_id: int = 0
    error_id: int = 0
    sock: socket.socket | None = None


def stream_request(headers: dict[str, str]) -> tuple[str, str, int] | str:
    """(stream type, request id, port) of a SYN_STREAM, or the reason it is refused."""
    kind = headers.get("streamtype", "")
    port = headers.get("port", "")
    if kind not in ("data", "error"):
        return f'invalid stream type "{kind}"'
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f'invalid port "{port}"'
    return kind, headers.get("requestid", ""), int(port)


PROTOCOL = "portforward.k8s.io"


class BareSpdy:
    """The SPDY bytes straight on the upgraded socket (kubectl before 1.31, or with
    KUBECTL_PORT_FORWARD_WEBSOCKETS=false), with the WebSocket's receive/send_raw/close."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.closed = False

    def receive(self) -> bytes | None:
        while not self.closed:
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            try:
                if not pending and not select.select([self.sock], [], [], 0.5)[0]:
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
            if not data:
                self.closed = True
                return None
            return data
        return None

    def send_raw(self, data: bytes) -> bool:
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError:
                return False
        return True

    def close(self) -> None:
        self.closed = True


def accept_spdy(handler: Any) -> BareSpdy:
    """Answer a bare SPDY/3.1 upgrade that asks for the port-forward protocol with 101."""
    offered = [p.strip() for h in handler.headers.get_all("X-Stream-Protocol-Version") or [] for p in h.split(",")]
    if PROTOCOL not in offered:
        raise ApiError(400, f"unable to upgrade: the port-forward protocol must be {PROTOCOL}")
    sock = handler.connection
    sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        + f"X-Stream-Protocol-Version: {PROTOCOL}\r\n\r\n".encode()
    )
    handler.close_connection = True
    sock.settimeout(120)
    return BareSpdy(sock)


def serve(conn: WebSocket | BareSpdy, connect: Callable[[int], socket.socket]) -> None:
    framer = spdy.Framer()
    forwards: dict[str, Forward] = {}
    by_stream: dict[int, Forward] = {}
    pumps: list[threading.Thread] = []
    try:
        while True:
            message = conn.receive()
            if message is None:
                break
            try:
                frames = framer.feed(message)
            except spdy.ProtocolError as exc:
                log.debug("port-forward: %s", exc)
                conn.send_raw(framer.goaway(0, 1))
                break
            for frame in frames:
                if not frame.control:
                    _data(frame, by_stream)
                elif frame.kind == spdy.SYN_STREAM:
                    request = stream_request(frame.headers)
                    if isinstance(request, str):
                        conn.send_raw(framer.rst_stream(frame.stream_id, 1))  # PROTOCOL_ERROR
                        continue
                    kind, request_id, port = request
                    conn.send_raw(framer.syn_reply(frame.stream_id))
                    fwd = forwards.setdefault(request_id, Forward(request_id, port))
                    setattr(fwd, "data_id" if kind == "data" else "error_id", frame.stream_id)
                    by_stream[frame.stream_id] = fwd
                    if fwd.data_id and fwd.error_id and fwd.sock is None:
                        pump = _open(conn, fwd, connect)
                        if pump is not None:
                            pumps.append(pump)
                elif frame.kind == spdy.RST_STREAM:
                    fwd = by_stream.get(frame.stream_id)
                    if fwd is not None and fwd.sock is not None:
                        _shutdown(fwd.sock, socket.SHUT_RDWR)
                elif frame.kind == spdy.PING:
                    conn.send_raw(framer.ping(frame.status))
                elif frame.kind == spdy.GOAWAY:
                    return
    finally:
        for fwd in forwards.values():
            if fwd.sock is not None:
                _shutdown(fwd.sock, socket.SHUT_RDWR)
        for pump in pumps:
            pump.join(timeout=5)
        conn.close()


def _data(frame: spdy.Frame, by_stream: dict[int, Forward]) -> None:
    fwd = by_stream.get(frame.stream_id)
    if fwd is None or frame.stream_id != fwd.data_id or fwd.sock is None:
        return  # kubectl's half of the error stream carries nothing
    try:
        if frame.data:
            fwd.sock.sendall(frame.data)
        if frame.fin:
            fwd.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _open(conn: WebSocket | BareSpdy, fwd: Forward, connect: Callable[[int], socket.socket]) -> threading.Thread | None:
    try:
        fwd.sock = connect(fwd.port)
    except OSError as exc:
        message = f"error forwarding port {fwd.port} to pod: {exc}"
        conn.send_raw(spdy.Framer.data(fwd.error_id, message.encode(), fin=True))
        conn.send_raw(spdy.Framer.data(fwd.data_id, b"", fin=True))
        return None
    pump = threading.Thread(target=_pod_to_client, args=(conn, fwd), name="port-forward", daemon=True)
    pump.start()
    return pump


def _pod_to_client(conn: WebSocket | BareSpdy, fwd: Forward) -> None:
    assert fwd.sock is not None
    while True:
        try:
            data = fwd.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            break
        if not conn.send_raw(spdy.Framer.data(fwd.data_id, data)):
            break
    conn.send_raw(spdy.Framer.data(fwd.data_id, b"", fin=True))
    conn.send_raw(spdy.Framer.data(fwd.error_id, b"", fin=True))
    fwd.sock.close()


def _shutdown(sock: socket.socket, how: int) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass
