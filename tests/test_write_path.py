"""The API server's create path: generated names that collide are generated again, uids are
random version-4 UUIDs, and a create answered over keep-alive HTTP is one well-formed response
(headers and body written together)."""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import pytest

from mikro.api import pki, registry, uids
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.controlplane import bootstrap
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]


@pytest.fixture()
def reg(tmp_path: Path) -> Registry:
    r = Registry(Store(tmp_path / "db"), "10.96.0.0/16", "node")
    bootstrap(r, "c", "node", "10.0.0.1")
    return r


def generated(prefix: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": prefix}, "data": {"k": "v"}}


def test_a_generated_name_that_is_taken_is_generated_again(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    suffixes = iter(["aaaaa", "aaaaa", "bbbbb"])
    monkeypatch.setattr(registry, "random_suffix", lambda: next(suffixes))
    first = reg.create(CM, "default", generated("x-"))
    second = reg.create(CM, "default", generated("x-"))
    assert (first["metadata"]["name"], second["metadata"]["name"]) == ("x-aaaaa", "x-bbbbb")
    assert second["data"] == {"k": "v"}


def test_generation_gives_up_after_eight_taken_names(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def same() -> str:
        calls.append(1)
        return "aaaaa"

    monkeypatch.setattr(registry, "random_suffix", same)
    reg.create(CM, "default", generated("x-"))
    calls.clear()
    with pytest.raises(ApiError) as taken:
        reg.create(CM, "default", generated("x-"))
    assert taken.value.code == 409 and len(calls) == registry.GENERATE_NAME_ATTEMPTS


def test_a_named_create_that_is_taken_is_not_renamed(reg: Registry) -> None:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fixed", "generateName": "x-"}}
    reg.create(CM, "default", body)
    with pytest.raises(ApiError) as taken:
        reg.create(CM, "default", body)
    assert taken.value.code == 409 and taken.value.reason == "AlreadyExists"


def test_uids_are_distinct_random_uuids() -> None:
    seen = {uids.uuid4() for _ in range(1000)}  # more than one read of the pool
    assert len(seen) == 1000
    for text in list(seen)[:50]:
        u = uuid.UUID(text)
        assert u.version == 4 and u.variant == uuid.RFC_4122 and str(u) == text


def test_find_answers_none_or_the_object(reg: Registry) -> None:
    assert reg.store.find(CM, "default", "nope") is None
    reg.create(CM, "default", {"metadata": {"name": "there"}, "data": {"a": "b"}})
    assert reg.store.find(CM, "default", "there")["data"] == {"a": "b"}


def test_keep_alive_creates_each_get_one_whole_response(reg: Registry, tmp_path: Path) -> None:
    _, cert, key = pki.ensure(tmp_path / "pki", ("10.0.0.1",))
    server = serve(reg, "tok", None, 0, (str(cert), str(key)))
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection("127.0.0.1", server.server_address[1], context=ctx)
        names = []
        for _ in range(5):  # one connection: each response must end exactly where it says
            conn.request("POST", "/api/v1/namespaces/default/configmaps", json.dumps(generated("k-")),
                         {"Authorization": "Bearer tok", "Content-Type": "application/json"})
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 201 and resp.getheader("Content-Type") == "application/json"
            assert int(resp.getheader("Content-Length")) == len(body)
            names.append(json.loads(body)["metadata"]["name"])
        conn.request("GET", "/api/v1/namespaces/default/configmaps/nope", headers={"Authorization": "Bearer tok"})
        resp = conn.getresponse()
        assert resp.status == 404 and json.loads(resp.read())["reason"] == "NotFound"
        conn.close()
        assert len(set(names)) == 5
        assert {o["metadata"]["name"] for o in reg.list(CM, "default")[0]} >= set(names)
    finally:
        server.shutdown()
        server.server_close()


def _https(reg: Registry, tmp_path: Path) -> tuple[Any, http.client.HTTPSConnection]:
    _, cert, key = pki.ensure(tmp_path / "pki", ("10.0.0.1",))
    server = serve(reg, "tok", None, 0, (str(cert), str(key)))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return server, http.client.HTTPSConnection("127.0.0.1", server.server_address[1], context=ctx)


def test_writes_are_answered_with_the_object_exactly_as_stored(reg: Registry, tmp_path: Path) -> None:
    """A create, a replace and a patch answer the stored JSON text as is (not encoded again):
    byte for byte what a GET of the same version answers, and what a watcher receives."""
    server, conn = _https(reg, tmp_path)
    watch = reg.store.watch(lambda change: change.resource.kind == "ConfigMap")
    headers = {"Authorization": "Bearer tok", "Content-Type": "application/json"}
    url = "/api/v1/namespaces/default/configmaps"
    try:
        answers = []
        conn.request("POST", url, json.dumps({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "é"}}), headers)
        answers.append(conn.getresponse())
        created = json.loads(answers[-1].read())
        created["data"]["k"] = "2"
        conn.request("PUT", url + "/a", json.dumps(created), headers)
        answers.append(conn.getresponse())
        answers[-1].read()
        conn.request("PATCH", url + "/a", json.dumps({"data": {"k": "3"}}),
                     {**headers, "Content-Type": "application/merge-patch+json"})
        answers.append(conn.getresponse())
        patched = answers[-1].read()
        assert [a.status for a in answers] == [201, 200, 200]
        conn.request("GET", url + "/a", headers=headers)
        got = conn.getresponse().read()
        assert patched == got == reg.store._read(CM, "default", "a").encode()  # the stored text itself
        assert json.loads(patched)["data"] == {"k": "3"} and json.loads(patched)["metadata"]["labels"] == {"x": "1"}
        changes = [watch.next(5) for _ in range(3)]
        assert [c.type for c in changes if c] == ["ADDED", "MODIFIED", "MODIFIED"]
        assert changes[-1] is not None and changes[-1].text == patched.decode()
        assert changes[0] is not None and changes[0].obj["data"] == {"k": "é"}
        # a dry run stores nothing: its answer is the object encoded, not the last write's text
        conn.request("POST", url + "?dryRun=All", json.dumps({"metadata": {"name": "b"}, "data": {"k": "dry"}}), headers)
        dry = conn.getresponse()
        assert dry.status == 201 and json.loads(dry.read())["metadata"]["name"] == "b"
        conn.close()
    finally:
        reg.store.unwatch(watch)
        server.shutdown()
        server.server_close()


def test_a_change_keeps_the_metadata_it_was_written_with(reg: Registry) -> None:
    """Watchers read a change's namespace, name and labels without decoding the object: as
    they were when written, whatever the writer does to its object afterwards."""
    seen = []
    watch = reg.store.watch(lambda change: change.resource.kind == "ConfigMap" and seen.append(change.meta) is None)
    obj = reg.create(CM, "default", {"metadata": {"name": "m", "labels": {"tier": "web"}}})
    obj["metadata"]["labels"]["tier"] = "changed afterwards"
    obj["metadata"]["name"] = "other"
    assert seen == [("default", "m", {"tier": "web"})]
    reg.store.unwatch(watch)
    replayed = reg.store.watch(lambda change: change.meta[1] == "m", since=0).next(1)
    assert replayed is not None and replayed.meta == ("default", "m", {"tier": "web"})
    assert replayed.obj["metadata"]["labels"] == {"tier": "web"}


def test_configmap_writes_wake_the_controllers_once_later_a_pod_at_once(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mikro.controllers import manager

    monkeypatch.setattr(manager, "LAZY_SECONDS", 3600.0)  # the later pass is not this test's business
    c = manager.Controllers(reg)
    watch = reg.store.watch(c._on_change)  # the controllers' own subscription, without their loop
    try:
        for i in range(20):
            reg.create(CM, "default", {"metadata": {"name": f"flood-{i}"}})
        assert not c.wake.is_set() and c.lazy.locked()  # 20 ConfigMaps: one pass on its way, none now
        pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "hello-ip:1"}]}}
        reg.create(BY_KIND["Pod"], "default", pod)
        assert c.wake.is_set()
    finally:
        watch.close()
