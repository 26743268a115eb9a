"""`mikro apply -f` and `delete -f` of many objects (mikro.cli.bulk) against an in-process API
server: the listed path (one list per kind and namespace) gives the same verdicts, lines and
stored objects as the per-object path; the parallel writes keep the file's order in what they
print, and all-or-nothing; the client's kept-alive connections survive the server closing them."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mikro.api import server as api_server
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.cli import applyplan, bulk, manifest
from mikro.controlplane import bootstrap
from mikro.errors import ApiError
from tests.test_apiserver import TOKEN, PlainClient


class RecordingClient(PlainClient):
    """Records each request's method, path and dryRun, for checking what the paths send."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: list[tuple[str, str, bool]] = []

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
                **kwargs: Any) -> Any:
        self.sent.append((method, path, bool(query and query.get("dryRun"))))
        return super().request(method, path, body, query, **kwargs)


Factory = Callable[[], RecordingClient]


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[Factory]:
    started: list[Any] = []

    def make() -> RecordingClient:
        registry = Registry(Store(tmp_path / f"db{len(started)}"), "10.152.128.0/17", "mikro")
        bootstrap(registry, "mikro", "mikro", "10.152.0.1")
        httpd = serve(registry, TOKEN, None)
        httpd.ready.set()
        started.append(httpd)
        return RecordingClient("127.0.0.1", httpd.server_address[1], TOKEN)

    yield make
    for httpd in started:
        httpd.stopping.set()
        httpd.shutdown()


def cm(name: str, ns: str | None = None, **data: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"set": "bulk"}}
    if ns:
        meta["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"v": "1"}}


def secret(name: str, ns: str, value: str = "MQ==") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "data": {"k": value}}


def load(tmp_path: Path, objs: list[dict[str, Any]], name: str = "m.yaml") -> list[manifest.Document]:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(objs, sort_keys=False))
    return manifest.load([str(path)])


def stored(client: PlainClient) -> dict[tuple[str, str, str], Any]:
    """What the objects applied hold, without what differs between two servers by nature."""
    out = {}
    for kind in ("ConfigMap", "Secret"):
        for obj in client.list(BY_KIND[kind])["items"]:
            if obj["metadata"]["name"] == "kube-root-ca.crt":
                continue
            meta = obj["metadata"]
            out[(kind, meta["namespace"], meta["name"])] = {
                "labels": meta.get("labels"),
                "annotations": meta.get("annotations"),
                "data": obj.get("data"),
            }
    return out


# Many objects in two namespaces and two kinds (20 ConfigMaps in each namespace, so that they
# are listed; 3 Secrets, so that they are read one by one).
FIRST = (
    [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}]
    + [cm(f"a{i:02d}") for i in range(20)]
    + [cm(f"b{i:02d}", "team") for i in range(20)]
    + [secret(f"s{i}", "team") for i in range(3)]
)


def second() -> list[dict[str, Any]]:
    """The next apply: some unchanged, some changed, a key dropped, some new, across both."""
    objs = copy.deepcopy(FIRST)
    objs[1]["data"] = {"v": "2"}  # a00 changed
    objs[2]["metadata"]["labels"] = {}  # a01: a label dropped from the manifest
    objs[21]["data"]["w"] = "new key"  # b00 changed
    objs[41]["data"] = {"k": "Mg=="}  # s0 changed
    objs += [cm(f"c{i:02d}") for i in range(3)]  # new
    objs += [cm("b99", "team"), secret("s9", "team")]  # new
    return objs


def run(client: RecordingClient, tmp_path: Path, objs: list[dict[str, Any]], listing: bool,
        capsys: pytest.CaptureFixture[str]) -> list[str]:
    bulk.apply_documents(client, load(tmp_path, objs), "default", listing=listing)
    return capsys.readouterr().out.splitlines()


def test_listed_and_per_object_paths_agree(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed, single = servers(), servers()
    outputs: dict[bool, list[list[str]]] = {True: [], False: []}
    for client, listing in ((listed, True), (single, False)):
        outputs[listing].append(run(client, tmp_path, FIRST, listing, capsys))
        # someone else labels one object: the three-way merge keeps what the manifest never set
        client.patch(BY_KIND["ConfigMap"], "default", "a02", {"metadata": {"labels": {"other": "x"}}})
        outputs[listing].append(run(client, tmp_path, second(), listing, capsys))
        outputs[listing].append(run(client, tmp_path, second(), listing, capsys))
    assert outputs[True] == outputs[False]
    first, changed, again = outputs[True]
    assert first[:2] == ["namespace/team created", "configmap/a00 created"]
    assert all(line.endswith(" created") for line in first) and len(first) == len(FIRST)
    verdicts = dict(line.rsplit(" ", 1) for line in changed)
    assert {k for k, v in verdicts.items() if v == "configured"} == {
        "configmap/a00", "configmap/a01", "configmap/b00", "secret/s0"
    }
    assert {k for k, v in verdicts.items() if v == "created"} == {
        "configmap/c00", "configmap/c01", "configmap/c02", "configmap/b99", "secret/s9"
    }
    assert list(verdicts.values()).count("unchanged") == len(FIRST) - 4
    assert all(line.endswith(" unchanged") for line in again)
    assert stored(listed) == stored(single)
    a01 = listed.get(BY_KIND["ConfigMap"], "default", "a01")
    assert "set" not in (a01["metadata"].get("labels") or {})
    a02 = listed.get(BY_KIND["ConfigMap"], "default", "a02")
    assert a02["metadata"]["labels"] == {"set": "bulk", "other": "x"}
    assert applyplan.LAST_APPLIED in a02["metadata"]["annotations"]


def test_an_unchanged_file_is_one_list_per_kind_and_namespace(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = servers()
    run(client, tmp_path, FIRST, True, capsys)
    client.sent.clear()
    lines = run(client, tmp_path, FIRST, True, capsys)
    assert all(line.endswith(" unchanged") for line in lines)
    assert sorted(client.sent) == sorted([
        ("GET", "/api/v1/namespaces", False),
        ("GET", "/api/v1/namespaces/default/configmaps", False),
        ("GET", "/api/v1/namespaces/team/configmaps", False),
        ("GET", "/api/v1/namespaces/team/secrets", False),
    ])
    # by default (listing=None) the many ConfigMaps are listed, the few others got one by one
    client.sent.clear()
    bulk.apply_documents(client, load(tmp_path, FIRST), "default")
    assert sorted(client.sent) == sorted([
        ("GET", "/api/v1/namespaces/team", False),
        ("GET", "/api/v1/namespaces/default/configmaps", False),
        ("GET", "/api/v1/namespaces/team/configmaps", False),
        *[("GET", f"/api/v1/namespaces/team/secrets/s{i}", False) for i in range(3)],
    ])


def test_every_change_is_tried_before_any_is_written(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = servers()
    run(client, tmp_path, [cm(f"a{i:02d}") for i in range(20)], True, capsys)
    objs = [cm(f"a{i:02d}", v="2") for i in range(20)] + [cm(f"n{i:02d}") for i in range(20)]
    objs.insert(30, cm("lost", "nowhere"))  # refused by the server: the namespace does not exist
    client.sent.clear()
    with pytest.raises(ApiError) as err:
        bulk.apply_documents(client, load(tmp_path, objs), "default")
    assert err.value.message == f'error when creating "{tmp_path / "m.yaml"}": namespaces "nowhere" not found'
    assert capsys.readouterr().out == ""
    assert not [s for s in client.sent if s[0] != "GET" and not s[2]]  # no write was sent
    names = {o["metadata"]["name"] for o in client.list(BY_KIND["ConfigMap"], "default")["items"]}
    assert not any(n.startswith("n") for n in names)
    assert client.get(BY_KIND["ConfigMap"], "default", "a00")["data"] == {"v": "1"}


def test_parallel_writes_print_in_the_files_order_after_their_namespace(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = servers()
    objs: list[dict[str, Any]] = [cm(f"z{i:02d}") for i in range(30, 0, -1)]
    objs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "later"}})
    objs += [cm(f"y{i:02d}", "later") for i in range(25)]
    lines = run(client, tmp_path, objs, True, capsys)
    assert lines == (
        [f"configmap/z{i:02d} created" for i in range(30, 0, -1)]
        + ["namespace/later created"]
        + [f"configmap/y{i:02d} created" for i in range(25)]
    )
    assert len(client.list(BY_KIND["ConfigMap"], "later")["items"]) >= 25


def test_segments_write_ordered_kinds_alone() -> None:
    docs = [manifest.Document("m", i, 1, o) for i, o in enumerate([
        cm("a"), cm("b"), {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}}, cm("c"),
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "m"}}, cm("d"),
    ], start=1)]
    items = [bulk.prepare(d, "default") for d in docs]
    assert [[i.name for i in run] for run in bulk.segments(items)] == [
        ["a", "b"], ["sa"], ["c"], ["n"], ["m"], ["d"]
    ]


def test_delete_many_prints_in_order_and_reports_the_missing(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = servers()
    run(client, tmp_path, [cm(f"d{i:02d}") for i in range(30)], True, capsys)
    targets = [(BY_KIND["ConfigMap"], "default", f"d{i:02d}") for i in (31, *range(30))]
    code, deleted = bulk.delete(client, targets, "background", False, None)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.splitlines() == [f'configmap "d{i:02d}" deleted' for i in range(30)]
    assert captured.err == 'Error from server (NotFound): configmaps "d31" not found\n'
    assert [name for _, _, name in deleted] == [f"d{i:02d}" for i in range(30)]
    assert client.list(BY_KIND["ConfigMap"], "default", labelSelector="set=bulk")["items"] == []
    code, deleted = bulk.delete(client, targets[:2], "background", True, None)
    assert (code, deleted, capsys.readouterr().err) == (0, [], "")


def test_kept_alive_connections_outlive_the_servers_idle_timeout(
    servers: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_server.Handler, "timeout", 0.3)
    client = servers()
    client.get(BY_KIND["Namespace"], None, "default")
    assert len(client._idle) == 1  # noqa: SLF001 - the connection kept for the next request
    time.sleep(0.8)  # the server has closed it meanwhile
    assert client.get(BY_KIND["Namespace"], None, "default")["metadata"]["name"] == "default"
    client.close()
    assert client._idle == []  # noqa: SLF001


def test_wait_gone_polls_one_list_per_kind_and_namespace(
    servers: Factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = servers()
    run(client, tmp_path, [cm(f"w{i:02d}") for i in range(20)] + [secret("s", "default")], True, capsys)
    targets = [(BY_KIND["ConfigMap"], "default", f"w{i:02d}") for i in range(20)]
    _, deleted = bulk.delete(client, [*targets, (BY_KIND["Secret"], "default", "s")], "background", False, None)
    client.sent.clear()
    bulk.wait_gone(client, deleted, timeout=30)
    assert sorted(client.sent) == [
        ("GET", "/api/v1/namespaces/default/configmaps", False),
        ("GET", "/api/v1/namespaces/default/secrets/s", False),
    ]
    # objects that stay are polled again until the deadline
    run(client, tmp_path, [cm(f"w{i:02d}") for i in range(20)], True, capsys)
    client.sent.clear()
    bulk.wait_gone(client, targets, timeout=0.5, interval=0.05)
    assert client.sent.count(("GET", "/api/v1/namespaces/default/configmaps", False)) > 1
