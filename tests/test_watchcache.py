"""The shared watch history: watchers as cursors, a history bounded by bytes, 410 for a
watcher that fell behind, and the watch stream's initial events and bookmarks over HTTP."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mikro.api import server as server_module
from mikro.api import watchcache
from mikro.api.registry import Registry
from mikro.api.resources import BY_KIND
from mikro.api.server import serve
from mikro.api.store import Store
from mikro.api.watchcache import WatchCache
from mikro.controlplane import bootstrap
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]
TOKEN = "test-token"


def make(store: Store, name: str, size: int = 10, labels: dict[str, str] | None = None) -> dict:
    meta = {"name": name, "namespace": "default", **({"labels": labels} if labels else {})}
    return store.create(CM, {"metadata": meta, "data": {"a": "x" * size}})


def test_changes_reach_each_cursor_in_commit_order(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    cache = WatchCache(store)
    first = cache.subscribe(store.rv)
    make(store, "a")
    obj = make(store, "b")
    second = cache.subscribe(store.rv)
    obj["data"] = {"a": "changed"}
    store.update(CM, obj)
    store.delete(CM, "default", "a")
    assert [(e.type, e.name) for e in first.next(0)] == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("MODIFIED", "b"),
        ("DELETED", "a"),
    ]
    assert [(e.type, e.name) for e in second.next(0)] == [("MODIFIED", "b"), ("DELETED", "a")]
    assert first.next(0) == [] and first.rv == store.rv
    event = cache.after(0)[-2]
    assert json.loads(event.frame()) == {"type": "MODIFIED", "object": store.get(CM, "default", "b")}


def test_a_watch_resumes_from_a_kept_version_and_gets_410_from_a_dropped_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    cache = WatchCache(store, history_bytes=5000)
    start = store.rv
    for i in range(20):
        make(store, f"c{i}", size=1000)
    assert cache.bytes <= 5000 and cache.compacted > start
    with pytest.raises(ApiError) as err:
        cache.subscribe(start)
    assert err.value.code == 410 and err.value.reason == "Expired"
    assert "too old resource version" in err.value.message
    resumed = cache.subscribe(cache.compacted)
    names = [e.name for e in resumed.next(0)]
    assert names and names[-1] == "c19" and len(names) == len(cache.events)


def test_a_cache_made_later_serves_what_the_store_still_remembers(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    start = store.rv
    make(store, "before")
    cache = WatchCache(store)
    assert [e.name for e in cache.subscribe(start).next(0)] == ["before"]


def test_a_watcher_that_stops_reading_is_dropped_and_costs_no_memory(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    cache = WatchCache(store, history_bytes=64 * 1024)
    stalled = [cache.subscribe(store.rv) for _ in range(100)]
    reader = cache.subscribe(store.rv)
    for i in range(200):
        make(store, f"c{i}", size=2000)  # 400 KB of changes, six times the history
        reader.next(0)
    # memory: one history for everyone, bounded by its bytes; a cursor holds no changes
    assert cache.bytes <= 64 * 1024
    assert sum(len(e.text) for e in cache.events) == cache.bytes
    assert all(vars(c).keys() == {"cache", "rv"} for c in stalled)
    for cursor in stalled:
        with pytest.raises(ApiError) as err:
            cursor.next(0)
        assert err.value.code == 410
    assert reader.next(0) == [] and reader.rv == store.rv  # one that kept up is not dropped
    for cursor in stalled:
        cursor.close()
    assert cache.cursors == {reader}


def test_watchers_share_each_change(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    cache = WatchCache(store)
    cursors = [cache.subscribe(store.rv) for _ in range(10)]
    make(store, "one")
    events = [c.next(0) for c in cursors]
    assert all(e[0] is events[0][0] for e in events)
    assert events[0][0].text is store.history[-1].data  # the store's own JSON text, not a copy


# -- over HTTP ---------------------------------------------------------------------------------


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[int, Store]]:
    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    bootstrap(registry, "mikro", "mikro", "10.152.0.1")
    server = serve(registry, TOKEN, None)
    server.ready.set()
    yield server.server_address[1], registry.store
    server.stopping.set()
    server.shutdown()


def stream(port: int, path: str) -> Iterator[dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    try:
        while line := resp.readline():
            yield json.loads(line)
    finally:
        conn.close()


def test_send_initial_events_ends_with_an_annotated_bookmark(api: tuple[int, Store]) -> None:
    port, store = api
    for i, tier in enumerate(["front", "back", "front"]):
        make(store, f"s{i}", labels={"tier": tier})
    path = (
        "/api/v1/namespaces/default/configmaps?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"
        "&resourceVersionMatch=NotOlderThan&labelSelector=tier%3Dfront&timeoutSeconds=1"
    )
    events = list(stream(port, path))
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events[:2]] == [("ADDED", "s0"), ("ADDED", "s2")]
    bookmark = events[2]
    assert bookmark["type"] == "BOOKMARK" and bookmark["object"]["kind"] == "ConfigMap"
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["object"]["metadata"]["resourceVersion"] == str(store.rv)


def test_bookmarks_tell_how_far_a_watch_has_come(api: tuple[int, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "BOOKMARK_SECONDS", 0.0)
    port, store = api
    rv = store.rv
    events = list(stream(port, f"/api/v1/configmaps?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"))
    assert events and all(e["type"] == "BOOKMARK" for e in events)
    assert events[-1]["object"]["metadata"]["resourceVersion"] == str(store.rv)
    plain = list(stream(port, f"/api/v1/configmaps?watch=true&resourceVersion={rv}&timeoutSeconds=1"))
    assert plain == []  # no bookmarks unless asked for


def test_a_watch_from_a_compacted_version_is_a_410(api: tuple[int, Store], monkeypatch: pytest.MonkeyPatch) -> None:
    port, store = api
    cache = watchcache.cache_of(store)
    monkeypatch.setattr(cache, "history_bytes", 1)
    old = store.rv
    make(store, "a")
    make(store, "b")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/api/v1/configmaps?watch=true&resourceVersion={old}", headers={"Authorization": f"Bearer {TOKEN}"})
    resp = conn.getresponse()
    body = json.loads(resp.read())
    assert resp.status == 410 and body["reason"] == "Expired" and "too old resource version" in body["message"]


def test_a_watch_of_one_name_and_of_a_field_selector(api: tuple[int, Store]) -> None:
    port, store = api
    make(store, "one")
    make(store, "two")
    rv = store.rv
    obj = store.get(CM, "default", "two")
    obj["data"] = {"a": "new"}
    store.update(CM, obj)
    make(store, "three")
    named = list(stream(port, "/api/v1/watch/namespaces/default/configmaps/two?timeoutSeconds=1"))
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in named] == [("ADDED", "two")]
    fields = list(
        stream(port, f"/api/v1/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dthree&timeoutSeconds=1")
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in fields] == [("ADDED", "three")]


def test_the_controllers_change_feed_keeps_nothing(tmp_path: Path) -> None:
    """The controller manager is woken by the store's changes; it must not queue them unread
    (a predicate answering True kept every change, up to the store's watch bound)."""
    from mikro.controllers.manager import Controllers

    registry = Registry(Store(tmp_path / "db"), "10.152.128.0/17", "mikro")
    controllers = Controllers(registry, controllers=[], extra=[])
    controllers.start()
    try:
        controllers.wake.clear()
        make(registry.store, "one")
        assert all(not w.queue for w in registry.store.watches)
    finally:
        controllers.stop.set()
        controllers.wake.set()
