"""Fault and abuse suite of the API server (issue 11): each test replays one way a hostile or
clumsy client froze, bloated or corrupted the API, against a real server in a thread (HTTPS
where TLS matters), and checks what a client sees afterwards. No Docker."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import ssl
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mikro.api import pki, watchcache
from mikro.api import store as store_module
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import ApiHTTPServer, serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap

TOKEN = "abuse-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CM_PATH = "/api/v1/namespaces/default/configmaps"
# Bounds the tests wait on a socket, so that a server that froze fails the test, not hangs it.
CLIENT_TIMEOUT = 15


@dataclass
class Api:
    server: ApiHTTPServer
    port: int
    tls: ssl.SSLContext | None

    def connect(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT, context=self.tls)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=CLIENT_TIMEOUT)

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, token: bool = True
    ) -> tuple[int, Any]:
        conn = self.connect()
        try:
            data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
            sent = {**(AUTH if token else {}), **({"Content-Type": "application/json"} if data else {})}
            conn.request(method, path, body=data, headers={**sent, **(headers or {})})
            return answer(conn.getresponse())
        finally:
            conn.close()


def answer(resp: http.client.HTTPResponse) -> tuple[int, Any]:
    raw = resp.read()
    try:
        return resp.status, json.loads(raw)
    except ValueError:
        return resp.status, raw


def start(tmp_path: Path, tls: bool) -> Api:
    registry = Registry(Store(tmp_path / "store.db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    context = None
    certs = None
    if tls:
        ca, crt, key = pki.ensure(tmp_path / "pki")
        certs = (str(crt), str(key))
        context = ssl.create_default_context(cafile=str(ca))
    server = serve(registry, TOKEN, None, tls=certs)
    server.ready.set()
    return Api(server, server.server_address[1], context)


def stop(api: Api) -> None:
    """Stop serving without waiting for the server's next poll (half a second per test)."""
    api.server.stopping.set()
    threading.Thread(target=api.server.shutdown, daemon=True).start()


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[Api]:
    api = start(tmp_path, tls=False)
    yield api
    stop(api)


@pytest.fixture()
def tls_api(tmp_path: Path) -> Iterator[Api]:
    api = start(tmp_path, tls=True)
    yield api
    stop(api)


@pytest.fixture()
def tracebacks(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The log records so far that carry a traceback or are errors (none may)."""
    caplog.set_level(logging.INFO)

    def found() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]

    return found


def raw_exchange(api: Api, data: bytes, wait_close: bool = True) -> tuple[bytes, bool]:
    """Send raw bytes on a plain connection; return what came back and whether the server
    then closed the connection (when `wait_close`: a close that does not come costs 2 s)."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(data)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                return received, True
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")),
            0,
        )
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        if not wait_close:
            return head + b"\r\n\r\n" + rest, False
        sock.settimeout(2)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return head + b"\r\n\r\n" + rest, closed


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def body_of(response: bytes) -> Any:
    return json.loads(response.partition(b"\r\n\r\n")[2])


# -- item 1: idle clients ----------------------------------------------------------------------


def test_idle_connections_and_half_handshakes_do_not_freeze_the_api(tls_api: Api) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(200):
            held.append(socket.create_connection(("127.0.0.1", tls_api.port), timeout=CLIENT_TIMEOUT))
        for _ in range(50):
            sock = socket.create_connection(("127.0.0.1", tls_api.port), timeout=CLIENT_TIMEOUT)
            sock.sendall(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
            held.append(sock)
        assert tls_api.call("GET", "/healthz", token=False) == (200, b"ok")
        code, body = tls_api.call("GET", "/api/v1/namespaces")
        assert code == 200 and "default" in [n["metadata"]["name"] for n in body["items"]]
    finally:
        for sock in held:
            sock.close()


def test_idle_plain_connections_do_not_freeze_the_api(api: Api) -> None:
    held = [socket.create_connection(("127.0.0.1", api.port), timeout=CLIENT_TIMEOUT) for _ in range(200)]
    try:
        assert api.call("GET", "/healthz", token=False) == (200, b"ok")
    finally:
        for sock in held:
            sock.close()


def test_connections_beyond_the_bound_are_closed_not_queued(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ApiHTTPServer, "max_connections", 4)
    api = start(tmp_path, tls=False)
    try:
        held = [socket.create_connection(("127.0.0.1", api.port), timeout=CLIENT_TIMEOUT) for _ in range(4)]
        # The server's accepting thread takes them in turn: wait until all four hold a slot.
        answered = False
        extra = socket.create_connection(("127.0.0.1", api.port), timeout=CLIENT_TIMEOUT)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answered = extra.recv(100).startswith(b"HTTP/1.")
        except ConnectionResetError:
            answered = False
        extra.close()
        assert not answered  # closed at once, not left waiting behind the idle ones
        for sock in held:
            sock.close()
        code = None
        for _ in range(100):  # the slots come back as the server sees the closes
            try:
                code = api.call("GET", "/healthz", token=False)[0]
                break
            except (ConnectionError, http.client.RemoteDisconnected):
                threading.Event().wait(0.05)
        assert code == 200
    finally:
        stop(api)


# -- item 5: bodies ----------------------------------------------------------------------------


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_a_body_over_3_mib_is_refused_unread(api: Api) -> None:
    head = request_head("POST", CM_PATH, {**AUTH, "Content-Type": "application/json", "Content-Length": "4194304"})
    response, closed = raw_exchange(api, head)
    assert status_of(response) == 413
    status = body_of(response)
    assert status["reason"] == "RequestEntityTooLarge"
    assert status["message"] == "Request entity too large: limit is 3145728"
    assert closed


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "5, 6"])
def test_an_invalid_content_length_is_a_400(api: Api, length: str) -> None:
    head = request_head("POST", CM_PATH, {**AUTH, "Content-Type": "application/json", "Content-Length": length})
    response, closed = raw_exchange(api, head)
    assert status_of(response) == 400 and closed


def test_no_token_no_body_read(api: Api) -> None:
    # A megabyte announced and never sent: answered at once, without waiting for it.
    head = request_head("POST", CM_PATH, {"Content-Type": "application/json", "Content-Length": "1048576"})
    response, closed = raw_exchange(api, head)
    assert status_of(response) == 401 and body_of(response)["reason"] == "Unauthorized"
    assert closed


def test_an_error_before_the_body_does_not_poison_the_connection(api: Api) -> None:
    conn = api.connect()
    thing = {"apiVersion": "example.com/v1", "kind": "Thing", "spec": {"x": "y" * 4096}}
    conn.request(
        "POST",
        "/apis/example.com/v1/namespaces/default/things",  # no such resource: refused before the body
        body=json.dumps(thing),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert answer(conn.getresponse())[0] == 404
    conn.request("GET", "/api/v1/namespaces/default", headers=AUTH)  # same connection
    code, body = answer(conn.getresponse())
    assert code == 200 and body["metadata"]["name"] == "default"
    conn.close()


def test_an_object_over_1_5_mib_is_not_stored(api: Api) -> None:
    big = {"metadata": {"name": "big"}, "data": {"a": "x" * (1536 * 1024)}}
    code, status = api.call("POST", CM_PATH, big)
    assert code == 413 and status["message"] == "etcdserver: request is too large"
    assert api.call("GET", f"{CM_PATH}/big")[0] == 404


def test_chunked_bodies_are_read_and_bounded(api: Api) -> None:
    body = json.dumps({"metadata": {"name": "chunked"}, "data": {"a": "1"}}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    head = request_head("POST", CM_PATH, {**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    response, _ = raw_exchange(api, head + chunked, wait_close=False)
    assert status_of(response) == 201
    assert api.call("GET", f"{CM_PATH}/chunked")[1]["data"] == {"a": "1"}


# -- item 6: YAML alias bomb -------------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_not_expanded(api: Api) -> None:
    levels = ['a0: &a0 ["xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx", "xxxxxxxxxx"]']
    for i in range(1, 9):
        levels.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 5) + "]")
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nbomb:\n" + "\n".join(
        "  " + line for line in levels
    )
    assert len(bomb) < 1000  # expands to 5^9 strings
    code, status = api.call("POST", CM_PATH, bomb.encode(), headers={"Content-Type": "application/yaml"})
    assert code == 400 and "expands to more than" in status["message"]
    assert api.call("GET", f"{CM_PATH}/bomb")[0] == 404


def test_plain_yaml_bodies_still_work(api: Api) -> None:
    text = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  a: '1'\n"
    assert api.call("POST", CM_PATH, text, headers={"Content-Type": "application/yaml"})[0] == 201


# -- item 7: lost updates ----------------------------------------------------------------------


def parallel(count: int, work: Any) -> list[int]:
    codes: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        code = work(i)
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return codes


def test_parallel_patches_keep_every_label(api: Api) -> None:
    assert api.call("POST", CM_PATH, {"metadata": {"name": "target"}})[0] == 201

    def label(i: int) -> int:
        patch = {"metadata": {"labels": {f"k{i}": "v"}}}
        return api.call("PATCH", f"{CM_PATH}/target", patch, headers={"Content-Type": "application/merge-patch+json"})[
            0
        ]

    assert parallel(100, label) == [200] * 100
    labels = api.call("GET", f"{CM_PATH}/target")[1]["metadata"]["labels"]
    assert labels == {f"k{i}": "v" for i in range(100)}


def test_scale_and_patches_in_parallel_lose_nothing(api: Api) -> None:
    deploy = {
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    }
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    assert api.call("POST", "/apis/apps/v1/namespaces/default/deployments", deploy)[0] == 201
    merge = {"Content-Type": "application/merge-patch+json"}

    def work(i: int) -> int:
        if i % 2:
            return api.call("PATCH", f"{path}/scale", {"spec": {"replicas": 7}}, headers=merge)[0]
        return api.call("PATCH", path, {"metadata": {"annotations": {f"a{i}": "x"}}}, headers=merge)[0]

    assert parallel(40, work) == [200] * 40
    got = api.call("GET", path)[1]
    assert got["spec"]["replicas"] == 7
    assert got["metadata"]["annotations"] == {f"a{i}": "x" for i in range(0, 40, 2)}


def test_parallel_updates_with_versions_lose_nothing(api: Api) -> None:
    """Read, change, PUT with the version read, again on 409: what kubectl edit and client-go's
    RetryOnConflict do. Every writer's key survives."""
    assert api.call("POST", CM_PATH, {"metadata": {"name": "cas"}, "data": {}})[0] == 201

    def put(i: int) -> int:
        while True:
            current = api.call("GET", f"{CM_PATH}/cas")[1]
            current["data"] = {**(current.get("data") or {}), f"k{i}": str(i)}
            code, _ = api.call("PUT", f"{CM_PATH}/cas", current)
            if code != 409:
                return code

    assert parallel(30, put) == [200] * 30
    assert api.call("GET", f"{CM_PATH}/cas")[1]["data"] == {f"k{i}": str(i) for i in range(30)}


def test_status_writes_and_patches_in_parallel_lose_nothing(api: Api) -> None:
    pod = {"metadata": {"name": "sp"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    path = "/api/v1/namespaces/default/pods/sp"
    assert api.call("POST", "/api/v1/namespaces/default/pods", pod)[0] == 201
    merge = {"Content-Type": "application/merge-patch+json"}

    def work(i: int) -> int:
        if i % 2:
            status = {"metadata": {"name": "sp"}, "status": {"phase": "Running", "message": f"m{i}"}}
            return api.call("PUT", f"{path}/status", status)[0]
        return api.call("PATCH", path, {"metadata": {"labels": {f"l{i}": "x"}}}, headers=merge)[0]

    assert parallel(40, work) == [200] * 40
    got = api.call("GET", path)[1]
    assert got["metadata"]["labels"] == {f"l{i}": "x" for i in range(0, 40, 2)}
    assert got["status"]["phase"] == "Running"


def test_a_patch_with_a_stale_version_still_conflicts(api: Api) -> None:
    created = api.call("POST", CM_PATH, {"metadata": {"name": "v"}})[1]
    merge = {"Content-Type": "application/merge-patch+json"}
    assert api.call("PATCH", f"{CM_PATH}/v", {"data": {"a": "1"}}, headers=merge)[0] == 200
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"a": "2"}}
    assert api.call("PATCH", f"{CM_PATH}/v", stale, headers=merge)[0] == 409


# -- item 9: NaN, names, paths -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        (b'{"metadata":{"name":"n"},"data":{"a":"1"},"x":NaN}', "application/json"),
        (b'{"metadata":{"name":"n"},"x":Infinity}', "application/json"),
        (b'{"metadata":{"name":"n"},"x":-Infinity}', "application/json"),
        (b'{"metadata":{"name":"n"},"x":1e400}', "application/json"),
        (b"metadata: {name: n}\nx: .nan\n", "application/yaml"),
        (b"metadata: {name: n}\nx: -.inf\n", "application/yaml"),
    ],
)
def test_non_finite_numbers_are_refused(api: Api, body: bytes, ctype: str) -> None:
    code, status = api.call("POST", CM_PATH, body, headers={"Content-Type": ctype})
    assert code == 400 and status["kind"] == "Status"
    assert api.call("GET", f"{CM_PATH}/n")[0] == 404
    listed = api.call("GET", CM_PATH)[1]
    json.loads(json.dumps(listed), parse_constant=lambda c: pytest.fail(f"{c} in a list"))


@pytest.mark.parametrize("name", ["web\n", "web\r\n", "a\n", "default\n"])
def test_a_name_with_a_trailing_newline_is_invalid(api: Api, name: str) -> None:
    code, status = api.call("POST", CM_PATH, {"metadata": {"name": name}})
    assert code == 422 and status["details"]["causes"][0]["field"] == "metadata.name"
    code, _ = api.call("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert code == 422


def test_paths_are_percent_decoded(api: Api) -> None:
    assert api.call("POST", CM_PATH, {"metadata": {"name": "a.b-c"}})[0] == 201
    assert api.call("GET", f"{CM_PATH}/a%2Eb%2Dc")[1]["metadata"]["name"] == "a.b-c"
    assert api.call("GET", "/api/v1/namespaces/%64efault/configmaps/a.b-c")[0] == 200
    assert api.call("DELETE", f"{CM_PATH}/a%2eb-c")[0] == 200
    assert api.call("GET", f"{CM_PATH}/a.b-c")[0] == 404
    assert api.call("GET", f"{CM_PATH}/%ff%fe")[0] == 400


# -- item 10: bad values answer 400/422, never 500 --------------------------------------------


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("GET", "watch=true&resourceVersion=abc"),
        ("GET", "resourceVersion=abc"),
        ("GET", "resourceVersion=-5"),
        ("GET", "limit=-1"),
        ("GET", "limit=x"),
        ("GET", "watch=true&timeoutSeconds=x"),
        ("GET", "watch=1&timeoutSeconds=-3"),
    ],
)
def test_bad_query_values_are_a_400(api: Api, method: str, query: str) -> None:
    code, status = api.call(method, f"{CM_PATH}?{query}")
    assert code == 400 and status["reason"] == "BadRequest", status


@pytest.mark.parametrize("query", ["gracePeriodSeconds=x", "gracePeriodSeconds=1.5", "gracePeriodSeconds=--1"])
def test_bad_delete_options_are_a_400(api: Api, query: str) -> None:
    api.call("POST", CM_PATH, {"metadata": {"name": "d"}})
    code, status = api.call("DELETE", f"{CM_PATH}/d?{query}")
    assert code == 400 and "strconv.ParseInt" in status["message"]
    code, status = api.call("DELETE", f"{CM_PATH}/d", {"gracePeriodSeconds": "soon"})
    assert code == 400
    code, status = api.call("DELETE", f"{CM_PATH}/d", {"propagationPolicy": "Sideways"})
    assert code == 422 and 'Unsupported value: "Sideways"' in status["message"]
    code, status = api.call("DELETE", f"{CM_PATH}/d", [1, 2])
    assert code == 400
    assert api.call("GET", f"{CM_PATH}/d")[0] == 200


@pytest.mark.parametrize("memory", ["1e400", "1e99999", "9" * 400 + "Ei"])
def test_quantities_that_overflow_are_invalid(api: Api, memory: str) -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"memory": memory}}}]},
    }
    code, status = api.call("POST", "/api/v1/namespaces/default/pods", pod)
    assert code == 422 and "spec.containers[0].resources.limits.memory" in status["message"]


@pytest.mark.parametrize(
    ("ctype", "patch"),
    [
        ("application/json-patch+json", {"op": "add"}),
        ("application/json-patch+json", ["not an object"]),
        ("application/json-patch+json", [{"op": 5, "path": "/data"}]),
        ("application/json-patch+json", [{"op": "add", "path": "/data/x/y/z", "value": 1}]),
        ("application/json-patch+json", [{"op": "add", "path": "/metadata/name/0", "value": 1}]),
        ("application/merge-patch+json", ["a"]),
        ("application/merge-patch+json", "a string"),
        ("application/strategic-merge-patch+json", 5),
        ("application/merge-patch+json", {"metadata": "x"}),
        ("application/merge-patch+json", {"metadata": {"labels": ["x"]}}),
        ("application/strategic-merge-patch+json", {"metadata": {"labels": {"a": {"b": "c"}}}}),
        ("application/apply-patch+yaml", {"data": {}}),
    ],
)
def test_bad_patches_are_refused_never_a_500(api: Api, ctype: str, patch: Any) -> None:
    api.call("POST", CM_PATH, {"metadata": {"name": "p"}, "data": {"a": "1"}})
    code, status = api.call("PATCH", f"{CM_PATH}/p", patch, headers={"Content-Type": ctype})
    assert code in (400, 415, 422), (code, status)
    assert api.call("GET", f"{CM_PATH}/p")[1]["data"] == {"a": "1"}


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        "x",
        5,
        {"metadata": "x"},
        {"metadata": {"name": 5}},
        {"metadata": {"name": "n", "labels": ["a"]}},
        {"metadata": {"name": "n", "ownerReferences": ["a"]}},
        {"metadata": {"name": "n"}, "spec": "x"},
        {"metadata": {"name": "n"}, "spec": {"template": "x"}},
        {"metadata": {"name": "n"}, "spec": {"template": {"spec": {"containers": {"a": 1}}}}},
        {"metadata": {"name": "n"}, "spec": {"template": {"spec": {"containers": ["a"]}}}},
    ],
)
def test_bodies_of_the_wrong_shape_are_a_400_or_422(api: Api, body: Any) -> None:
    code, status = api.call("POST", "/apis/apps/v1/namespaces/default/deployments", body)
    assert code in (400, 422), (code, status)
    code, status = api.call("PUT", f"{CM_PATH}/x", body)
    assert code in (400, 404, 422), (code, status)


def test_disconnecting_watchers_leave_no_traceback(tls_api: Api, tracebacks: Callable[[], list[str]]) -> None:
    store = tls_api.server.registry.store
    for _ in range(3):
        conn = tls_api.connect()
        conn.request("GET", f"{CM_PATH}?watch=true", headers=AUTH)
        resp = conn.getresponse()
        assert resp.status == 200
        conn.sock.shutdown(socket.SHUT_RDWR)  # gone without a goodbye, mid-stream
        conn.close()
    for _ in range(3):  # and clients gone in the middle of sending a body
        sock = tls_api.tls.wrap_socket(
            socket.create_connection(("127.0.0.1", tls_api.port), timeout=CLIENT_TIMEOUT), server_hostname="127.0.0.1"
        )
        sock.sendall(request_head("POST", CM_PATH, {**AUTH, "Content-Length": "1000"}) + b'{"metadata":')
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()
    for i in range(40):  # changes to write into the closed streams
        tls_api.call("POST", CM_PATH, {"metadata": {"name": f"w{i}"}, "data": {"a": "x" * 20000}})
    cache = watchcache.cache_of(store)
    for _ in range(200):  # each handler ends once its write fails
        if not cache.cursors:
            break
        threading.Event().wait(0.05)
    assert not cache.cursors
    assert tls_api.call("GET", "/healthz", token=False)[0] == 200
    tls_api.server.shutdown()  # nothing in flight: the log is complete
    assert tracebacks() == []


# -- item 12 (issue 12): the watch history and slow watchers -----------------------------------


def test_watch_history_is_bounded_by_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "HISTORY_BYTES", 4 * 1024 * 1024)
    store = Store(tmp_path / "db")
    cm = BY_KIND["ConfigMap"]
    obj = store.create(cm, {"metadata": {"name": "big", "namespace": "default"}, "data": {"a": "0"}})
    first_rv = int(obj["metadata"]["resourceVersion"])
    for i in range(30):
        obj["data"] = {"a": str(i) * (512 * 1024)}
        obj = store.update(cm, obj)
    store.delete(cm, "default", "big")
    assert store.history_bytes <= 4 * 1024 * 1024
    assert sum(len(p.data) for p in store.history) == store.history_bytes
    with pytest.raises(Exception) as err:
        store.watch(lambda c: True, since=first_rv)
    assert getattr(err.value, "code", None) == 410
    recent = store.history[-2].rv
    w = store.watch(lambda c: True, since=recent)
    change = w.next(timeout=0)
    assert change is not None and change.type == "DELETED"


def test_a_watcher_that_stops_reading_is_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "WATCH_PENDING_CHANGES", 10)
    store = Store(tmp_path / "db")
    cm = BY_KIND["ConfigMap"]
    slow = store.watch(lambda c: True)
    for i in range(20):
        store.create(cm, {"metadata": {"name": f"c{i}", "namespace": "default"}})
    assert slow.expired and slow.next(timeout=0) is None and not slow.queue


def test_a_dropped_http_watcher_gets_410(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    store = api.server.registry.store
    cache = watchcache.cache_of(store)
    monkeypatch.setattr(cache, "history_bytes", 1)  # the history keeps one change only
    conn = api.connect()
    conn.request("GET", f"{CM_PATH}?watch=true&resourceVersion={store.rv}", headers=AUTH)
    resp = conn.getresponse()
    assert resp.status == 200
    with cache.cond:  # the handler cannot read the history meanwhile
        for i in range(10):
            api.server.registry.create(BY_KIND["ConfigMap"], "default", {"metadata": {"name": f"s{i}"}})
    events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert events[-1]["type"] == "ERROR" and events[-1]["object"]["code"] == 410
    conn.close()


# -- item 12 (issue 11): file modes and the state directory ------------------------------------


def test_store_files_are_private(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.db")
    store.create(BY_KIND["ConfigMap"], {"metadata": {"name": "s", "namespace": "default"}})
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_loose_store_files_are_made_private(tmp_path: Path) -> None:
    Store(tmp_path / "store.db").close()
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        if (tmp_path / name).exists():
            os.chmod(tmp_path / name, 0o644)
    Store(tmp_path / "store.db")
    for name in ("store.db", "store.db-wal", "store.db-shm"):
        if (tmp_path / name).exists():
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name


def test_state_dir_is_made_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mikro import config

    home = tmp_path / "home"
    home.mkdir(mode=0o755)
    (home / "cluster.json").write_text("{}")
    os.chmod(home / "cluster.json", 0o644)
    monkeypatch.setenv("MIKRO_HOME", str(home))
    config.ensure_state_dir()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "cluster.json").stat().st_mode) == 0o600


def test_a_state_dir_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mikro.cli.main import main

    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    if os.getuid() == 0:
        os.chown(other, 65534, 65534)
    else:
        other = Path("/")
    before = stat.S_IMODE(other.stat().st_mode)
    monkeypatch.setenv("MIKRO_HOME", str(other))
    result = CliRunner().invoke(main, ["start", "--timeout", "1"])
    assert result.exit_code != 0
    assert "error:" in result.output and "not to you" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert stat.S_IMODE(other.stat().st_mode) == before
    assert not (other / "store.db").exists()
    if other != Path("/"):
        (other / "store.db").write_text("someone else's")
        for command in (["reset", "--yes"], ["stop"], ["status"], ["kubectl", "get", "pods"]):
            result = CliRunner().invoke(main, command)
            assert result.exit_code != 0 and "not to you" in result.output, command
            assert isinstance(result.exception, SystemExit), command
        assert (other / "store.db").read_text() == "someone else's"


# -- issue 9: what DELETE answers --------------------------------------------------------------


def test_delete_answers_a_status_when_the_object_is_gone(api: Api) -> None:
    created = api.call("POST", CM_PATH, {"metadata": {"name": "gone"}})[1]
    code, status = api.call("DELETE", f"{CM_PATH}/gone")
    assert code == 200 and status["kind"] == "Status" and status["status"] == "Success"
    assert status["details"] == {"name": "gone", "group": "", "kind": "configmaps", "uid": created["metadata"]["uid"]}


def test_delete_answers_the_object_while_its_deletion_is_pending(api: Api) -> None:
    api.call("POST", CM_PATH, {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    code, obj = api.call("DELETE", f"{CM_PATH}/held")
    assert code == 200 and obj["kind"] == "ConfigMap" and obj["metadata"]["deletionTimestamp"]
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    api.call("POST", "/api/v1/namespaces/default/pods", pod)
    code, obj = api.call("DELETE", "/api/v1/namespaces/default/pods/p")
    assert code == 200 and obj["kind"] == "Pod" and obj["metadata"]["deletionGracePeriodSeconds"] == 30


def test_expect_continue_invites_the_body_only_when_it_is_read(api: Api) -> None:
    # Refused first (no token): a final answer, no 100, the connection closed.
    head = request_head("POST", CM_PATH, {"Content-Length": "1000", "Expect": "100-continue"})
    response, closed = raw_exchange(api, head)
    assert response.startswith(b"HTTP/1.1 401") and closed
    # Accepted: a 100, then the body, then the answer.
    body = json.dumps({"metadata": {"name": "expected"}}).encode()
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": str(len(body)), "Expect": "100-continue"}
    with socket.create_connection(("127.0.0.1", api.port), timeout=CLIENT_TIMEOUT) as sock:
        sock.sendall(request_head("POST", CM_PATH, headers))
        assert sock.recv(100).startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        assert sock.recv(100).startswith(b"HTTP/1.1 201")
