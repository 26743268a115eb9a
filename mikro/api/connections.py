"""Connections of the API server: TLS per connection, timeouts, a bounded number.

The listening socket stays plain, so `accept()` never waits on a client: each connection's
TLS handshake runs in that connection's own thread with a deadline, as Go's net/http does
(`tls.Conn.HandshakeContext` per connection). Beyond `MAX_CONNECTIONS` a new connection is
closed at once rather than queued, so a flood of idle clients costs threads, not the API.
"""

from __future__ import annotations

import socket
import ssl
import threading
from http.server import ThreadingHTTPServer
from typing import Any

MAX_CONNECTIONS = 512
HANDSHAKE_TIMEOUT = 10.0
# How long a connection may sit between requests, or a request between two reads or writes
# (a watcher that stops reading is dropped after this long).
IDLE_TIMEOUT = 60.0


class BoundedTLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    max_connections = MAX_CONNECTIONS
    handshake_timeout = HANDSHAKE_TIMEOUT
    tls_context: ssl.SSLContext | None = None
    # The kernel's queue of connections not yet accepted (socketserver's default is 5: a burst
    # of parallel clients beyond it was reset).
    request_queue_size = socket.SOMAXCONN

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)
        self.refused_connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls_context is None:
            super().finish_request(request, client_address)
            return
        conn = self._handshake(request)
        if conn is None:
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            try:
                # The plain socket's shutdown: SSLSocket.shutdown() also drops the TLS session,
                # after which a late write (a stream's pump thread finishing its last frame)
                # would go out as plaintext and poison a client that reuses the connection.
                socket.socket.shutdown(conn, socket.SHUT_WR)
            except OSError:
                pass
            conn.close()

    def _handshake(self, request: socket.socket) -> ssl.SSLSocket | None:
        """The TLS handshake of one connection, bounded in time; None when it failed (the
        client went away, spoke something else, or was too slow)."""
        assert self.tls_context is not None
        request.settimeout(self.handshake_timeout)
        try:
            conn = self.tls_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        except OSError:
            return None
        try:
            conn.do_handshake()
        except (OSError, ValueError):
            conn.close()
            return None
        return conn
