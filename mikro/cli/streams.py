"""The client side of `pods/exec` over WebSocket (`v5.channel.k8s.io`), as kubectl speaks it,
so that `mikro kubectl exec` works against any mikro API, local or not, and never by Docker."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
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

    def pump_stdin(self, stdin: BinaryIO) -> None:
        try:
            while True:
                chunk = stdin.read1(65536) if hasattr(stdin, "read1") else stdin.read(65536)
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
            data = self.sock.recv(65536)
            with self.lock:
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
