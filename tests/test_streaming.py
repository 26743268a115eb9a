"""The streaming protocols without Docker: options, Status messages, Docker's stream framing,
and whole exec sessions over a socket pair, driven with the requests and messages that real
kubectl 1.32 and the official Python client sent (recorded from a session against mikro)."""

from __future__ import annotations

import email.message
import json
import socket
import threading
from typing import Any

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection
from wsproto.utilities import generate_accept_token

from mikro.api import streaming
from mikro.errors import ApiError
from mikro.node.docker_backend import Demuxer

KUBECTL_EXEC_I = (
    "GET /api/v1/namespaces/default/pods/web/exec?command=cat&container=web&stderr=true&stdin=true&stdout=true HTTP/1.1"
)
KUBECTL_HEADERS = {
    "Host": "127.0.0.1:43227",
    "User-Agent": "kubectl/v1.32.4 (linux/amd64) kubernetes/4cb5f07",
    "Connection": "Upgrade",
    "Kubectl-Command": "kubectl exec",
    "Sec-WebSocket-Key": "7+DQqI1wfM+Q3wuDeumrZg==",
    "Sec-WebSocket-Protocol": "v5.channel.k8s.io",
    "Sec-WebSocket-Version": "13",
    "Upgrade": "websocket",
}
PYTHON_HEADERS = {
    "Upgrade": "websocket",
    "Host": "127.0.0.1:43227",
    "Origin": "https://127.0.0.1:43227",
    "Sec-WebSocket-Key": "rmmykOfsZTDSkCVl5X9F8w==",
    "Sec-WebSocket-Version": "13",
    "Connection": "Upgrade",
    "sec-websocket-protocol": "v4.channel.k8s.io",
}
# What kubectl sent: `printf 'a\nb\n' | kubectl exec -i`, then a TTY session's resize.
STDIN_DATA = b"\x00a\nb\n"
STDIN_CLOSE = b"\xff\x00"
RESIZE = b'\x04{"Width":101,"Height":33}\n'


def query(url: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs, urlsplit

    return parse_qs(urlsplit(url.split(" ")[1]).query, keep_blank_values=True)


# -- pure pieces --------------------------------------------------------------------------------


def test_exit_code_status_is_what_kubectl_reads() -> None:
    status = streaming.exit_status(3)
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert streaming.exit_status(0) == {"metadata": {}, "status": "Success"}
    assert streaming.exit_status(None)["status"] == "Failure"


def test_kubectl_exec_options() -> None:
    opts = streaming.stream_options("exec", query(KUBECTL_EXEC_I))
    assert opts == streaming.StreamOptions(("cat",), "web", True, True, True, False)


def test_tty_drops_stderr_and_attach_needs_no_command() -> None:
    opts = streaming.stream_options("attach", {"stdout": ["true"], "stderr": ["true"], "tty": ["true"]})
    assert opts.tty and opts.stdout and not opts.stderr and opts.command == ()


@pytest.mark.parametrize(
    ("sub", "q", "message"),
    [
        ("exec", {"stdout": ["true"]}, "you must specify at least one command for the container"),
        ("exec", {"command": ["ls"]}, "you must specify at least 1 of stdin, stdout, stderr"),
        ("exec", {"command": ["ls"], "stdout": ["yes"]}, 'invalid value "yes" for query parameter stdout'),
    ],
)
def test_bad_options_are_400(sub: str, q: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ApiError) as err:
        streaming.stream_options(sub, q)
    assert err.value.code == 400 and message in str(err.value)


def test_forward_ports() -> None:
    assert streaming.forward_ports({"ports": ["8080,9090", "80"]}) == [8080, 9090, 80]
    for bad in ({}, {"ports": ["0"]}, {"ports": ["http"]}, {"ports": ["70000"]}):
        with pytest.raises(ApiError):
            streaming.forward_ports(bad)
    assert streaming.port_header(8080) == b"\x90\x1f"


def test_negotiate_in_the_clients_order() -> None:
    assert streaming.negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"], streaming.EXEC_PROTOCOLS) == (
        "v5.channel.k8s.io"
    )
    assert streaming.negotiate(["v4.channel.k8s.io"], streaming.EXEC_PROTOCOLS) == "v4.channel.k8s.io"
    assert streaming.negotiate(["channel.k8s.io", "SPDY/3.1"], streaming.EXEC_PROTOCOLS) is None


def test_recorded_resize_and_frames() -> None:
    assert streaming.parse_frame(RESIZE)[0] == streaming.RESIZE
    assert streaming.parse_resize(RESIZE[1:]) == (101, 33)
    assert streaming.parse_resize(b"{}") is None and streaming.parse_resize(b'{"Width":0,"Height":5}') is None
    assert streaming.parse_frame(STDIN_CLOSE) == (streaming.CLOSE, b"\x00")
    assert streaming.parse_frame(b"") is None


def test_docker_demuxer_in_any_chunking() -> None:
    raw = b"\x01\x00\x00\x00\x00\x00\x00\x03out" + b"\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    whole = Demuxer().feed(raw)
    assert whole == [(1, b"out"), (2, b"err\n")]
    demuxer, pieces = Demuxer(), []
    for i in range(len(raw)):
        pieces += demuxer.feed(raw[i : i + 1])
    assert pieces == whole


def test_upgrade_detection() -> None:
    assert streaming.is_websocket_upgrade(KUBECTL_HEADERS)
    assert not streaming.is_websocket_upgrade({"Connection": "Upgrade", "Upgrade": "SPDY/3.1"})
    assert not streaming.is_websocket_upgrade({})


# -- whole sessions over a socket pair ------------------------------------------------------------


class FakeProcess:
    """Records what the session hands the process; answers with fixed output and exit code."""

    def __init__(self, output: list[tuple[int, bytes]], code: int) -> None:
        self.output = list(output)
        self.code = code
        self.stdin = b""
        self.stdin_closed = threading.Event()
        self.sizes: list[tuple[int, int]] = []
        self.closed = False

    def read(self) -> list[tuple[int, bytes]] | None:
        # The process echoes its stdin once the client closed it (as `cat` does).
        if not self.stdin_closed.wait(5):
            return None
        if self.output:
            return [self.output.pop(0)]
        if self.stdin:
            data, self.stdin = self.stdin, b""
            self.echoed = data
            return [(1, data)]
        return None

    def write(self, data: bytes) -> None:
        self.stdin += data

    def close_stdin(self) -> None:
        self.stdin_closed.set()

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def exit_code(self) -> int | None:
        return self.code

    def close(self) -> None:
        self.closed = True
        self.stdin_closed.set()  # as a real process's output ends when its socket is shut


class FakeHandler:
    def __init__(self, requestline: str, headers: dict[str, str], sock: socket.socket) -> None:
        self.requestline = requestline
        self.headers = email.message.Message()
        for k, v in headers.items():
            self.headers[k] = v
        self.connection = sock
        self.close_connection = False


def client_session(sock: socket.socket, key: str, sends: list[bytes]) -> tuple[str, list[bytes], int | None]:
    """Read the 101, send messages as a client, collect the server's until it closes."""
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    text = head.decode()
    assert text.startswith("HTTP/1.1 101")
    assert f"Sec-WebSocket-Accept: {generate_accept_token(key.encode()).decode()}" in text.replace(
        "sec-websocket-accept", "Sec-WebSocket-Accept"
    )
    protocol = next(
        line.split(":", 1)[1].strip()
        for line in text.split("\r\n")
        if line.lower().startswith("sec-websocket-protocol")
    )
    ws = Connection(ConnectionType.CLIENT)
    for message in sends:
        sock.sendall(ws.send(BytesMessage(data=message)))
    received: list[bytes] = []
    close_code = None
    parts = b""
    while close_code is None:
        data = sock.recv(65536)
        ws.receive_data(data or None)
        for event in ws.events():
            if isinstance(event, BytesMessage):
                parts += event.data
                if event.message_finished:
                    received.append(parts)
                    parts = b""
            elif isinstance(event, CloseConnection):
                close_code = event.code
                sock.sendall(ws.send(event.response()))
        if not data:
            break
    return protocol, received, close_code


def run_session(
    requestline: str, headers: dict[str, str], sends: list[bytes], process: FakeProcess
) -> tuple[str, list[bytes], int | None, FakeHandler]:
    server_sock, client_sock = socket.socketpair()
    handler = FakeHandler(requestline, headers, server_sock)
    opts = streaming.stream_options("exec", query(requestline))
    server = threading.Thread(target=streaming.serve_process, args=(handler, opts, lambda o: process))
    server.start()
    try:
        protocol, received, code = client_session(client_sock, headers["Sec-WebSocket-Key"], sends)
    finally:
        server.join(10)
        client_sock.close()
        server_sock.close()
    return protocol, received, code, handler


def test_kubectl_exec_i_session() -> None:
    process = FakeProcess([(2, b"warming up\n")], code=3)
    protocol, received, close_code, handler = run_session(
        KUBECTL_EXEC_I, KUBECTL_HEADERS, [STDIN_DATA, STDIN_CLOSE], process
    )
    assert protocol == "v5.channel.k8s.io" and handler.close_connection
    assert received[0] == b"\x02warming up\n" and received[1] == b"\x01a\nb\n"
    status = json.loads(received[2][1:])
    assert received[2][0] == streaming.ERROR and status["details"]["causes"][0]["message"] == "3"
    assert close_code == 1000 and process.closed


def test_python_client_v4_session_success() -> None:
    requestline = KUBECTL_EXEC_I.replace("cat", "sh&command=-c&command=cat").replace(
        "stdin=true", "stdin=true&tty=true"
    )
    process = FakeProcess([], code=0)
    # v4 has no close signal: the session ends stdin only when the client goes away, so the fake
    # process is told its stdin closed by the resize the client sends last.
    process.resize = lambda w, h: (process.sizes.append((w, h)), process.stdin_closed.set())  # type: ignore[method-assign]
    protocol, received, _, _ = run_session(requestline, PYTHON_HEADERS, [b"\x00hello", RESIZE], process)
    assert protocol == "v4.channel.k8s.io" and process.sizes == [(101, 33)]
    assert received == [b"\x01hello", b'\x03{"metadata":{},"status":"Success"}']


@pytest.mark.parametrize(
    "headers",
    [
        {},  # a plain POST, as kubectl's SPDY fallback and the old mikro client sent
        {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": "v4.channel.k8s.io"},
        {**KUBECTL_HEADERS, "Sec-WebSocket-Protocol": "channel.k8s.io"},
    ],
)
def test_no_websocket_upgrade_runs_nothing(headers: dict[str, str]) -> None:
    started: list[Any] = []
    server_sock, client_sock = socket.socketpair()
    try:
        handler = FakeHandler(KUBECTL_EXEC_I, headers, server_sock)
        opts = streaming.stream_options("exec", query(KUBECTL_EXEC_I))
        with pytest.raises(ApiError) as err:
            streaming.serve_process(handler, opts, started.append)
        assert err.value.code == 400 and started == []
        client_sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            client_sock.recv(1)  # nothing was written: the HTTP layer answers the Status
    finally:
        server_sock.close()
        client_sock.close()


# -- kubectl port-forward: SPDY inside the WebSocket ------------------------------------------

# What kubectl 1.32 sent through the tunnel for one `curl` through `kubectl port-forward
# pod/web 18560:8080`, one WebSocket message per line (Go's framer writes field by field).
KUBECTL_PORT_FORWARD = """
8003 0001 0000003e 00000001 00000000 00 00
78f9e3c6a7c202253a060606ce2248fc6482d22da30138e59514a526e6420b17d65450d0430aea22709eb030b03000000000ffff
00000001 01000000
8003 0001 0000001c 00000003 00000000 00 00
826a46550a2a8712b1a844b302000000ffff
00000003 0000004f
474554202f20485454502f312e310d0a486f73743a203132372e302e302e313a31383536300d0a557365722d4167656e743a206375726c2f372e38382e310d0a4163636570743a202a2f2a0d0a0d0a
8003 0003 00000008 00000003 00000005
"""


def recorded_messages() -> list[bytes]:
    return [bytes.fromhex(line.replace(" ", "")) for line in KUBECTL_PORT_FORWARD.strip().splitlines()]


def test_spdy_framer_reads_kubectl() -> None:
    from mikro.api import spdy

    framer = spdy.Framer()
    frames = [f for message in recorded_messages() for f in framer.feed(message)]
    kinds = [(f.control, f.kind, f.stream_id, f.fin) for f in frames]
    assert kinds == [
        (True, spdy.SYN_STREAM, 1, False),
        (False, 0, 1, True),
        (True, spdy.SYN_STREAM, 3, False),
        (False, 0, 3, False),
        (True, spdy.RST_STREAM, 3, False),
    ]
    assert frames[0].headers == {"streamtype": "error", "port": "8080", "requestid": "0"}
    assert frames[2].headers == {"streamtype": "data", "port": "8080", "requestid": "0"}
    assert frames[3].data.startswith(b"GET / HTTP/1.1\r\n") and frames[4].status == 5


def test_spdy_reply_round_trip() -> None:
    from mikro.api import spdy

    server, client = spdy.Framer(), spdy.Framer()
    wire = server.syn_reply(1) + server.syn_reply(3, {"x": "y"}) + server.ping(7) + spdy.Framer.data(3, b"hi", fin=True)
    frames = client.feed(wire[:5]) + client.feed(wire[5:])
    assert [(f.kind, f.stream_id) for f in frames[:2]] == [(spdy.SYN_REPLY, 1), (spdy.SYN_REPLY, 3)]
    assert frames[1].headers == {"x": "y"} and frames[2].status == 7
    assert (frames[3].data, frames[3].fin) == (b"hi", True)
    with pytest.raises(spdy.ProtocolError):
        spdy.Framer().feed(b"\x80\x02\x00\x01\x00\x00\x00\x00")  # SPDY/2


class RecordedTunnel:
    """Plays kubectl's recorded messages; holds its RST back until mikro has FINned the data
    stream (kubectl resets after reading the pod's answer to its end)."""

    def __init__(self, messages: list[bytes], hold_last: bool = True) -> None:
        from mikro.api import spdy

        self.messages = messages
        self.hold_last = hold_last
        self.sent = spdy.Framer()
        self.frames: list[Any] = []
        self.data_fin = threading.Event()
        self.closed = False

    def receive(self) -> bytes | None:
        if not self.messages:
            return None
        if len(self.messages) == 1 and self.hold_last:
            self.data_fin.wait(5)
        return self.messages.pop(0)

    def send_raw(self, data: bytes) -> bool:
        for frame in self.sent.feed(data):
            self.frames.append(frame)
            if not frame.control and frame.stream_id == 3 and frame.fin:
                self.data_fin.set()
        return True

    def close(self) -> None:
        self.closed = True


def test_port_forward_session_with_recorded_kubectl() -> None:
    from mikro.api import portforward, spdy

    pod_side, mikro_side = socket.socketpair()
    ports: list[int] = []

    def pod() -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += pod_side.recv(4096)
        pod_side.sendall(b"HTTP/1.0 200 OK\r\n\r\nHello from web")
        pod_side.close()

    def connect(port: int) -> socket.socket:
        ports.append(port)
        return mikro_side

    threading.Thread(target=pod, daemon=True).start()
    tunnel = RecordedTunnel(recorded_messages())
    portforward.serve(tunnel, connect)  # type: ignore[arg-type]
    assert ports == [8080] and tunnel.closed
    replies = [f.stream_id for f in tunnel.frames if f.control and f.kind == spdy.SYN_REPLY]
    data = b"".join(f.data for f in tunnel.frames if not f.control and f.stream_id == 3)
    fins = {f.stream_id for f in tunnel.frames if not f.control and f.fin}
    assert replies == [1, 3] and data == b"HTTP/1.0 200 OK\r\n\r\nHello from web" and fins == {1, 3}


def test_port_forward_refused_is_written_to_the_error_stream() -> None:
    from mikro.api import portforward

    def refuse(port: int) -> socket.socket:
        raise ConnectionRefusedError(111, "Connection refused")

    tunnel = RecordedTunnel(recorded_messages()[:5], hold_last=False)
    portforward.serve(tunnel, refuse)  # type: ignore[arg-type]
    errors = b"".join(f.data for f in tunnel.frames if not f.control and f.stream_id == 1)
    assert errors == b"error forwarding port 8080 to pod: [Errno 111] Connection refused"


def test_port_forward_stream_headers_checked() -> None:
    from mikro.api import portforward

    assert portforward.stream_request({"streamtype": "data", "port": "80", "requestid": "1"}) == ("data", "1", 80)
    assert portforward.stream_request({"streamtype": "data", "port": "99999"}) == 'invalid port "99999"'
    assert portforward.stream_request({"streamtype": "x", "port": "80"}) == 'invalid stream type "x"'


# -- mikro's own client (mikro kubectl exec) against the server side ---------------------------


def test_client_exit_code_reading() -> None:
    from mikro.cli.streams import exit_code_of

    assert exit_code_of(streaming.exit_status(0)) == 0
    assert exit_code_of(streaming.exit_status(42)) == 42
    with pytest.raises(ApiError):
        exit_code_of(streaming.failure_status("boom"))


def test_mikro_client_against_server_session() -> None:
    import http.client
    import io

    from mikro.cli.streams import ExecSession

    client_sock, server_sock = socket.socketpair()
    process = FakeProcess([(2, b"note\n")], code=7)

    def server() -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += server_sock.recv(1)
        requestline, _, rest = head.decode("latin-1").partition("\r\n")
        handler = FakeHandler(requestline, {}, server_sock)
        handler.headers = http.client.parse_headers(io.BytesIO(rest.encode("latin-1")))
        opts = streaming.stream_options("exec", query(requestline))
        assert opts.command == ("cat",) and opts.stdin and handler.headers["Authorization"] == "Bearer t0k3n"
        streaming.serve_process(handler, opts, lambda o: process)

    thread = threading.Thread(target=server)
    thread.start()
    try:
        session = ExecSession(
            client_sock,
            "127.0.0.1:1",
            "/api/v1/namespaces/default/pods/web/exec?" + ("command=cat&stdin=true&stdout=true&stderr=true"),
            "t0k3n",
        )
        session.pump_stdin(io.BytesIO(b"typed\n"))  # ends with the v5 close signal
        seen: list[tuple[int, bytes]] = []
        code = session.run(lambda channel, data: seen.append((channel, data)))
    finally:
        thread.join(10)
        client_sock.close()
        server_sock.close()
    assert code == 7 and seen == [(2, b"note\n"), (1, b"typed\n")]


def test_a_broken_client_ends_the_session_not_the_server() -> None:
    server_sock, client_sock = socket.socketpair()
    handler = FakeHandler(KUBECTL_EXEC_I, KUBECTL_HEADERS, server_sock)
    process = FakeProcess([], code=0)
    opts = streaming.stream_options("exec", query(KUBECTL_EXEC_I))
    server = threading.Thread(target=streaming.serve_process, args=(handler, opts, lambda o: process))
    server.start()
    head = b""
    while b"\r\n\r\n" not in head:
        head += client_sock.recv(1)
    client_sock.sendall(b"\x82\x03\x00ab")  # unmasked: a protocol error from a client
    client_sock.shutdown(socket.SHUT_WR)
    server.join(10)
    try:
        assert not server.is_alive() and process.closed
    finally:
        client_sock.close()
        server_sock.close()


def test_channel_port_forward_as_the_python_clients_speak_it() -> None:
    """Per port a data and an error channel, each opened by the port (little-endian)."""
    requestline = "GET /api/v1/namespaces/default/pods/web/portforward?ports=8080 HTTP/1.1"
    server_sock, client_sock = socket.socketpair()
    pod_side, mikro_side = socket.socketpair()
    handler = FakeHandler(requestline, PYTHON_HEADERS, server_sock)

    def pod() -> None:
        assert pod_side.recv(4) == b"ping"
        pod_side.sendall(b"pong")
        pod_side.close()

    threading.Thread(target=pod, daemon=True).start()
    server = threading.Thread(
        target=streaming.serve_portforward, args=(handler, query(requestline), lambda port: mikro_side)
    )
    server.start()
    try:
        protocol, received, close_code = client_session(client_sock, PYTHON_HEADERS["Sec-WebSocket-Key"], [b"\x00ping"])
    finally:
        server.join(10)
        client_sock.close()
        server_sock.close()
    assert protocol == "v4.channel.k8s.io" and close_code == 1000
    assert received == [b"\x00\x90\x1f", b"\x01\x90\x1f", b"\x00pong"]
