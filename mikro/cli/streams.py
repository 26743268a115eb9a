"""The client side of `pods/exec` over WebSocket (`v5.channel.k8s.io`), as kubectl speaks it,
so that `mikro kubectl exec` works against any mikro API, local or not, and never by Docker."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import ssl
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator
from typing import BinaryIO

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from mikro.errors import ApiError

V5 = "v5.channel.k8s.io"


def exit_code_of(status: dict) -> int:
    """The exit code a Status on the error channel carries (kubectl's reading of it)."""
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode" and str(cause.get("message", "")).isdigit():
            return int(cause["message"])
    raise ApiError(500, status.get("message") or "the command failed")


class ExecSession:
    def __init__(self, sock: socket.socket, host: str, target: str, token: str) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.lock = threading.Lock()
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=host,
                    target=target,
                    subprotocols=[V5],
                    extra_headers=[(b"authorization", f"Bearer {token}".encode())],
                )
            )
        )
        reject_code, reject_body = 0, b""
        while True:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    reject_code = event.status_code
                elif isinstance(event, RejectData):
                    reject_body += event.data
                    if event.body_finished:
                        try:
                            raise ApiError.from_status(reject_code, json.loads(reject_body))
                        except ValueError:
                            raise ApiError(reject_code, reject_body.decode(errors="replace")) from None
            if not data:
                raise ApiError(reject_code or 500, "the API closed the connection during the upgrade")

    def send(self, channel: int, data: bytes) -> None:
        with self.lock:
            self.sock.sendall(self.ws.send(BytesMessage(data=bytes([channel]) + data)))

    def resize(self, width: int, height: int) -> None:
        self.send(4, json.dumps({"Width": width, "Height": height}).encode())

    def pump_stdin(self, stdin: BinaryIO) -> None:
        """Send stdin until its end, then v5's close signal for channel 0. Reads the file
        descriptor directly: a daemon thread blocked in a buffered read would hold the buffer's
        lock when the interpreter exits."""
        try:
            fd = stdin.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        try:
            while True:
                chunk = os.read(fd, 65536) if fd is not None else stdin.read(65536)
                if not chunk:
                    break
                self.send(0, chunk)
            self.send(255, b"\x00")
        except OSError:
            pass

    def run(self, output: Callable[[int, bytes], None]) -> int:
        """Carry output until the server closes; return the command's exit code."""
        code: int | None = None
        parts = b""
        while True:
            # Read only when there is something to read, and under the lock the stdin thread
            # writes under: one TLS session must not be read and written at the same time.
            pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
            if not pending and not select.select([self.sock], [], [], 1.0)[0]:
                continue
            with self.lock:
                try:
                    data = self.sock.recv(65536)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
                self.ws.receive_data(data or None)
                events = list(self.ws.events())
            for event in events:
                if isinstance(event, Ping):
                    with self.lock:
                        self.sock.sendall(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    with self.lock:
                        try:
                            self.sock.sendall(self.ws.send(event.response()))
                        except Exception:  # noqa: BLE001 - the peer may be gone already
                            pass
                    return code if code is not None else 0
                elif isinstance(event, Message):
                    parts += event.data.encode() if isinstance(event, TextMessage) else event.data
                    if not event.message_finished or not parts:
                        continue
                    channel, payload, parts = parts[0], parts[1:], b""
                    if channel in (1, 2):
                        output(channel, payload)
                    elif channel == 3:
                        code = exit_code_of(json.loads(payload))
            if not data:
                return code if code is not None else 0


def terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.columns, size.lines


@contextlib.contextmanager
def raw_terminal() -> Iterator[None]:
    """The local terminal in raw mode for a TTY session (keys go to the remote shell as they
    are typed), restored afterwards whatever happens."""
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def follow_terminal_size(session: ExecSession) -> None:
    """Send the terminal's size now and whenever it changes (SIGWINCH), as kubectl does."""

    def send(*_: object) -> None:
        size = terminal_size()
        if size is not None:
            session.resize(*size)

    send()
    signal.signal(signal.SIGWINCH, send)
