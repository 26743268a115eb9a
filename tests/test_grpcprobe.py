"""The gRPC probe against a real HTTP/2 gRPC health server (in-process, h2's server side, no
Docker): SERVING is healthy; NOT_SERVING, an unknown service, a server that is not gRPC and a
closed port are failures with the kubelet's messages."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import h2.config
import h2.connection
import h2.events
import pytest

from mikro.node import grpcprobe

STATUS = {"": 1, "cart": 1, "payments": 2}  # service -> HealthCheckResponse status


def service_of(message: bytes) -> str:
    body = message[5:]
    return body[2 : 2 + body[1]].decode() if body[:1] == b"\x0a" else ""


def serve_one(conn_sock: socket.socket) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.initiate_connection()
    conn_sock.sendall(conn.data_to_send())
    body = b""
    with conn_sock:
        while True:
            data = conn_sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    service = service_of(body)
                    sid = event.stream_id
                    if service not in STATUS:  # grpc-go answers NotFound in trailers only
                        conn.send_headers(
                            sid,
                            [
                                (":status", "200"),
                                ("content-type", "application/grpc"),
                                ("grpc-status", "5"),
                                ("grpc-message", "unknown service"),
                            ],
                            end_stream=True,
                        )
                    else:
                        reply = b"\x08" + bytes([STATUS[service]])
                        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/grpc")])
                        conn.send_data(sid, b"\x00" + len(reply).to_bytes(4, "big") + reply)
                        conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
            conn_sock.sendall(conn.data_to_send())


@pytest.fixture()
def server() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_serving_is_healthy(server: int) -> None:
    assert grpcprobe.check("127.0.0.1", server, "", 2) == (0, b"")
    assert grpcprobe.check("127.0.0.1", server, "cart", 2) == (0, b"")


def test_not_serving_and_an_unknown_service_fail(server: int) -> None:
    assert grpcprobe.check("127.0.0.1", server, "payments", 2) == (
        1,
        b'service unhealthy (responded with "NOT_SERVING")',
    )
    assert grpcprobe.check("127.0.0.1", server, "nope", 2) == (1, b"rpc error: code = NotFound desc = unknown service")


def test_a_closed_port_and_a_server_that_is_not_grpc() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def http1() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=http1, daemon=True).start()
    code, message = grpcprobe.check("127.0.0.1", port, "", 2)
    assert code == 1 and message.startswith(b"rpc error: code = Unavailable")
    listener.close()
    code, message = grpcprobe.check("127.0.0.1", port, "", 1)
    assert (code, message) == (
        1,
        f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: context deadline exceeded'.encode(),
    )


def test_messages_are_the_health_protocols() -> None:
    assert grpcprobe.request_message("") == b"\x00\x00\x00\x00\x00"
    assert grpcprobe.request_message("cart") == b"\x00\x00\x00\x00\x06\x0a\x04cart"
    assert grpcprobe.response_status(b"\x00\x00\x00\x00\x02\x08\x01") == 1
    assert grpcprobe.response_status(b"\x00\x00\x00\x00\x00") == 0  # UNKNOWN when absent
