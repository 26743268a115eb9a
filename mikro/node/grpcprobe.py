"""The kubelet's gRPC probe: one call of the standard health service
(`grpc.health.v1.Health/Check`) over HTTP/2 without TLS, from the node to the pod's address,
healthy only when the answer is SERVING. HTTP/2 framing comes from `h2` (a well-kept library);
the two tiny protobuf messages are written by hand (one string field, one enum field)."""

from __future__ import annotations

import socket
import time

PATH = "/grpc.health.v1.Health/Check"
STATUSES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}
CODES = {
    1: "Canceled",
    2: "Unknown",
    3: "InvalidArgument",
    4: "DeadlineExceeded",
    5: "NotFound",
    7: "PermissionDenied",
    12: "Unimplemented",
    13: "Internal",
    14: "Unavailable",
    16: "Unauthenticated",
}


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def request_message(service: str) -> bytes:
    """A length-prefixed HealthCheckRequest{service} (field 1, a string)."""
    body = b"\x0a" + _varint(len(service.encode())) + service.encode() if service else b""
    return b"\x00" + len(body).to_bytes(4, "big") + body


def response_status(payload: bytes) -> int:
    """The status of a length-prefixed HealthCheckResponse (field 1, an enum; absent is 0)."""
    body = payload[5 : 5 + int.from_bytes(payload[1:5], "big")] if len(payload) >= 5 else b""
    i, status = 0, 0
    while i < len(body):
        key = body[i]
        i += 1
        value = shift = 0
        while i < len(body):  # every field of this message is a varint
            byte = body[i]
            i += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if key == 0x08:
            status = value
    return status


def check(ip: str, port: int, service: str, timeout: float) -> tuple[int, bytes]:
    """(0, b"") when the service is SERVING; (1, the kubelet's message) otherwise."""
    import h2.config
    import h2.connection
    import h2.events

    deadline = time.monotonic() + timeout
    try:
        sock = socket.create_connection((ip, port), timeout=timeout)
    except OSError:
        return (
            1,
            f'timeout: failed to connect service "{ip}:{port}" within {timeout:g}s: context deadline exceeded'.encode(),
        )
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    headers: dict[str, str] = {}
    data = b""
    try:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(
            stream,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", PATH),
                (":authority", f"{ip}:{port}"),
                ("content-type", "application/grpc"),
                ("te", "trailers"),
                ("user-agent", "kube-probe/1.32"),
            ],
        )
        conn.send_data(stream, request_message(service), end_stream=True)
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                    headers.update(dict(event.headers))  # type: ignore[arg-type]
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    ended = True
            sock.sendall(conn.data_to_send())
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, TimeoutError) or time.monotonic() >= deadline:
            return 1, b"timeout: health rpc did not complete within " + f"{timeout:g}s".encode()
        return 1, f"rpc error: code = Unavailable desc = {exc}".encode()
    except Exception as exc:  # noqa: BLE001 - h2's protocol errors: a peer that is not gRPC
        return 1, f"rpc error: code = Unavailable desc = {type(exc).__name__}: {exc}".encode()
    finally:
        sock.close()
    if not headers:  # closed before any HTTP/2 answer: not a gRPC server, as grpc-go reports it
        return 1, b"rpc error: code = Unavailable desc = connection closed before server preface received"
    try:
        code = int(headers.get("grpc-status", "2"))
    except ValueError:
        code = 2
    if code != 0:
        name = CODES.get(code, f"Code({code})")
        return 1, f"rpc error: code = {name} desc = {headers.get('grpc-message', '')}".encode()
    status = response_status(data)
    if status != 1:
        return 1, f'service unhealthy (responded with "{STATUSES.get(status, status)}")'.encode()
    return 0, b""
