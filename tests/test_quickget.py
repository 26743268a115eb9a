"""`mikro kubectl get`'s quick path (mikro.cli.quickget): against a real API server over TLS in
a thread, it prints byte for byte what the general path (mikro.cli.kubectl.get through the
Client) prints, and it leaves everything it does not take (other forms, errors, a certificate
it cannot verify) to the general path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mikro import __version__, config
from mikro.api import pki, resources
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.cli import client, discovery, entry, printers, quickget, tableshape
from tests.inprocess import api_server

CLUSTER = "mkt-quickget"


def test_every_kind_resolves_as_the_resource_table_does() -> None:
    for plural, singular, short, group, prefix, namespaced in quickget.KINDS:
        names = [plural, singular, *short, plural.upper(), *([f"{plural}.{group}", f"{singular}.{group}"] if group else [])]
        for name in names:
            res = resources.lookup(name)
            assert res is not None and res.custom is None, name
            assert quickget.lookup(name) == (res.base_path(None), res.namespaced), name
            assert (prefix, namespaced) == (res.base_path(None).rpartition("/")[0], res.namespaced)
    assert quickget.lookup("frobs") is None and quickget.lookup("pods.apps") is None


def test_the_tables_column_names_upper_cased_are_the_printers_headers() -> None:
    # (the quick path reads the headers from the Table; the general path from printers.COLUMNS)
    for kind, columns in [*printers.COLUMNS.items(), ("Unknown", printers.DEFAULT_COLUMNS)]:
        names = [c["name"].upper() for c in printers.table(kind, [])["columnDefinitions"]]
        assert names == [header for header, _, _ in columns], kind


def test_it_speaks_as_the_client() -> None:
    assert quickget.USER_AGENT == client.USER_AGENT == f"mikro/{__version__}"
    assert quickget.TABLE == discovery.TABLE


def test_the_entry_point_takes_the_quick_path(cluster: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIKRO_KUBECTL", "builtin")
    monkeypatch.setattr(quickget, "leave", sys.exit)  # (not os._exit: this is the test's process)
    taken: list[Any] = []
    monkeypatch.setattr(entry, "_get", lambda options: taken.append(options) or 0)  # the general path
    monkeypatch.setattr(sys, "argv", ["mikro", "kubectl", "get", "cm", "-A"])
    with pytest.raises(SystemExit) as exited:
        entry.run()
    assert exited.value.code == 0 and taken == []
    monkeypatch.setattr(sys, "argv", ["mikro", "kubectl", "get", "cm", "-o", "name"])
    with pytest.raises(SystemExit):
        entry.run()
    assert [o["output"] for o in taken] == ["name"]


def reader(*chunks: bytes) -> Any:
    """A read() as an _ssl socket's: a record at a time, into the buffer when one is given."""
    parts = list(chunks)

    def read(size: int, buffer: Any = None) -> Any:
        part = parts.pop(0)[:size] if parts else b""
        if buffer is None:
            return part
        buffer[: len(part)] = part
        return len(part)

    return read


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n{}{}"], b"{}{}"),
        ([b"HTTP/1.1 200 OK\r\nContent-", b"Length: 5\r\n\r\n{\"a", b"\":", b"1}"], b'{"a":1}'[:5]),
        ([b"HTTP/1.1 200 OK\r\ncontent-length:2\r\n\r\n{}"], b"{}"),
        ([b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\n{}"], None),
        ([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"], None),
        ([b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}"], None),
        ([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}"], None),  # cut short
        ([b"HTTP/1.1 200 OK\r\n"], None),
    ],
)
def test_read_answer(chunks: list[bytes], expected: bytes | None) -> None:
    assert quickget._read_answer(reader(*chunks)) == expected  # noqa: SLF001


@pytest.fixture()
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    with api_server(tmp_path, monkeypatch, CLUSTER) as registry:
        for i in range(3):
            ns = "default" if i < 2 else "kube-system"
            registry.create(BY_KIND["ConfigMap"], ns, {"metadata": {"name": f"c{i}", "labels": {"n": str(i)}}, "data": {"a": "1"}})
            pod = {"metadata": {"name": f"p{i}", "labels": {"n": str(i)}},
                   "spec": {"containers": [{"name": "web", "image": "hello-ip:1"}]}}
            registry.create(BY_KIND["Pod"], ns, pod)
        deploy = {"metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "hello-ip:1"}]}}}}
        registry.create(BY_KIND["Deployment"], "default", deploy)
        # every age read from now on is the same: both paths print the same AGE cells
        frozen = time.time() + 3 * 3600
        monkeypatch.setattr(time, "time", lambda: frozen)
        yield registry


def both(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[Any, Any]:
    options = entry.parse_get(args)
    assert options is not None
    quick_code = quickget.get(dict(options))
    quick = capsys.readouterr()
    slow_code = entry._get(dict(options))  # noqa: SLF001 - the general path
    slow = capsys.readouterr()
    return (quick.out, quick.err, quick_code), (slow.out, slow.err, slow_code)


@pytest.mark.parametrize(
    "args",
    [
        ["pods", "-A"],
        ["po"],
        ["pods", "-o", "wide", "-A"],
        ["cm", "-A"],
        ["ConfigMaps", "-n", "kube-system"],
        ["cm", "-l", "n=1"],
        ["cm", "-A", "--field-selector", "metadata.name=c2"],
        ["deployments.apps", "-owide"],
        ["ns"],
        ["ns", "-A"],
        ["svc", "--namespace=kube-system", "-o", "wide"],
        ["po", "-n", "nosuch"],
        ["cm", "-A", "-l", "n=9"],
        ["no"],
    ],
)
@pytest.mark.parametrize("typed", [False, True], ids=["json", "msgspec"])
def test_quick_path_prints_as_the_general_path(
    cluster: Registry, args: list[str], typed: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if typed:  # decoded as a large Table is
        monkeypatch.setattr(quickget, "LARGE", 0)
    quick, slow = both(args, capsys)
    assert quick[2] == 0  # taken by the quick path, not left to the general one
    assert quick == slow
    assert quick[0] or quick[1].startswith("No resources found")


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"Table","columnDefinitions":[{"name":"Name","priority":0},{"name":"Age"}],'
        b'"rows":[{"cells":["a","1s"],"object":{"metadata":{"namespace":"x"}}},{"cells":["bb",2]}]}',
        b'{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Ip","priority":1}],'
        b'"rows":[{"cells":["a",null,true],"object":{"metadata":{"namespace":"x"}}},'
        b'{"cells":["b",1.5],"object":{"metadata":{}}}]}',
        b'{"kind":"Table","columnDefinitions":[],"rows":[]}',
        b'{"kind":"Table","columnDefinitions":[{"name":"Name"}],"rows":[{"cells":[]}]}',
    ],
)
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("with_namespace", [False, True])
def test_json_and_msgspec_decode_alike(body: bytes, wide: bool, with_namespace: bool) -> None:
    def shown(decode: Any) -> Any:
        """What get makes of the body: its text, or None (left to the general path)."""
        try:
            decoded = decode()
            return decoded if decoded is None else quickget.render(*decoded, wide=wide)
        except (KeyError, TypeError, IndexError, AttributeError, ValueError):
            return None

    plain = shown(lambda: quickget.decode(body, with_namespace))
    typed = shown(lambda: quickget._decode_typed(tableshape.decode(body), with_namespace))  # noqa: SLF001
    assert plain == typed


@pytest.mark.parametrize(
    "args",
    [["frobs"], ["po", "p0"], ["po,cm"], ["cm", "-o", "json"], ["all"], ["deploy/web"], ["po", "-o", "name"],
     ["cm", "-l", "!!bad"], [], ["cm", "-n", "x HTTP/1.1\r\nX-Other: y"], ["cm", "-n", "a/b"], ["cm", "-n", ""]],
)
def test_other_forms_are_left_to_the_general_path(
    cluster: Registry, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    options = entry.parse_get(args)
    assert options is not None
    assert quickget.get(options) is None
    assert capsys.readouterr() == ("", "")


def test_a_certificate_not_of_the_clusters_ca_is_refused(
    cluster: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = config.paths()
    other, _, _ = pki.ensure(tmp_path / "other")
    shutil.copy(other, paths.ca)
    options = entry.parse_get(["cm"])
    assert options is not None
    assert quickget.get(dict(options)) is None
    assert capsys.readouterr() == ("", "")
    # the general path refuses it too, in its words
    assert entry._get(dict(options)) == 1  # noqa: SLF001
    assert capsys.readouterr() == ("", f"error: {entry.NOT_RUNNING_HINT}\n")


def test_not_running_is_left_to_the_general_path(cluster: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    config.paths().endpoint.unlink()
    options = entry.parse_get(["cm"])
    assert options is not None
    assert quickget.get(options) is None
    assert capsys.readouterr() == ("", "")


def test_leaving_flushes_the_output_first(tmp_path: Path) -> None:
    script = "import sys; from mikro.cli import quickget; sys.stdout.write('out'); sys.stderr.write('err'); quickget.leave(3)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env,
                          cwd=Path(__file__).parent.parent)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out", "err")


def test_a_large_answer_arrives_whole(cluster: Registry, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # (over server.SEPARATE_BODY: written apart from its headers; read record by record)
    monkeypatch.setattr(quickget, "LARGE", 0)
    for i in range(300):
        cluster.create(BY_KIND["ConfigMap"], "default", {"metadata": {"name": f"big-{i:03d}"}, "data": {"k": "x" * 1000}})
    listed = client.Client.from_state().list(BY_KIND["ConfigMap"], "default")
    assert len(listed["items"]) == 302
    quick, slow = both(["cm"], capsys)
    assert quick == slow and quick[0].count("\n") == 303
