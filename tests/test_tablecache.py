"""Table rows kept ready answer what printers.table answers, at any time, for every kind the
cache takes; a changed object gets a new row; the cache is bounded by bytes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mikro.api import listing, tablecache
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.api.tablecache import RowCache
from mikro.cli import printers

NOW = 1_800_000_000.0


def sample(kind: str, i: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {
            "name": f"o{i}",
            "namespace": "ns",
            "uid": f"u{i}",
            "labels": {"a": str(i)},
            "creationTimestamp": "2026-11-27T10:00:00Z" if i % 3 else None,
            "resourceVersion": str(i),
        },
        "spec": {"replicas": i, "type": "ClusterIP", "clusterIP": "10.0.0.1", "ports": [{"port": 80}]},
        "status": {
            "phase": "Active",
            "replicas": i,
            "startTime": "2026-11-27T09:00:00Z",
            "completionTime": "2026-11-27T09:30:00Z",
            "lastScheduleTime": "2026-11-27T09:00:00Z",
        },
        "data": {"k": "v", "l": "w"} if i % 2 else {},
    }


def rows(kind: str, objs: list[dict[str, Any]], cache: RowCache) -> list[Any]:
    found = [("ns", o["metadata"]["name"], json.dumps(o), int(o["metadata"]["resourceVersion"])) for o in objs]
    return json.loads("[" + cache.rows(kind, "/" + kind, found, now=NOW) + "]")


def expected(kind: str, objs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, now: float = NOW) -> list[Any]:
    monkeypatch.setattr(printers.time, "time", lambda: now)
    table = printers.table(kind, objs, "1")
    return listing.include_object(table, objs, None)["rows"]


CACHED = sorted(k for k in [*printers.COLUMNS, "ServiceAccount", "Role"] if tablecache.cacheable(k))


@pytest.mark.parametrize("kind", CACHED)
def test_kept_rows_are_the_printers_rows(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = [sample(kind, i) for i in range(6)]
    cache = RowCache()
    want = expected(kind, objs, monkeypatch)
    assert rows(kind, objs, cache) == want
    assert rows(kind, objs, cache) == want  # from the cache this time
    assert len(cache.kept) == 6


@pytest.mark.parametrize("kind", CACHED)
def test_only_the_age_of_a_cached_kind_moves_with_the_clock(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objs = [sample(kind, i) for i in range(3)]
    ages = [i for i, (_, _, value) in enumerate(printers.COLUMNS.get(kind, printers.DEFAULT_COLUMNS)) if value is printers._age]
    early = expected(kind, objs, monkeypatch, NOW)
    late = expected(kind, objs, monkeypatch, NOW + 400 * 86400)
    for a, b in zip(early, late, strict=True):
        assert [c for i, c in enumerate(a["cells"]) if i not in ages] == [c for i, c in enumerate(b["cells"]) if i not in ages]


def test_a_changed_object_gets_a_new_row_and_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = RowCache(max_bytes=3000)
    objs = [sample("ConfigMap", i) for i in range(20)]
    rows("ConfigMap", objs, cache)
    assert cache.bytes <= 3000 and 0 < len(cache.kept) < 20
    changed = sample("ConfigMap", 19)
    changed["data"] = {"only": "one"}
    changed["metadata"]["resourceVersion"] = "99"
    assert rows("ConfigMap", [changed], cache)[0]["cells"][1] == 1
    assert rows("ConfigMap", [changed], cache) == expected("ConfigMap", [changed], monkeypatch)


def test_a_whole_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(printers.time, "time", lambda: NOW)
    objs = [sample("Secret", i) for i in range(4)]
    found = [("ns", o["metadata"]["name"], json.dumps(o), i) for i, o in enumerate(objs)]
    meta = {"resourceVersion": "7", "continue": "x"}
    table = json.loads(tablecache.table_json(RowCache(), "Secret", "/secrets", found, meta))
    want = listing.include_object(printers.table("Secret", objs, "7"), objs, None)
    want["metadata"] = meta
    assert table == want


def test_a_table_of_kept_rows_reads_only_the_changed_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tablecache.time, "time", lambda: NOW)
    store = Store(tmp_path / "db")
    res = BY_KIND["ConfigMap"]
    for i in range(20):
        store.create(res, {"kind": "ConfigMap", "metadata": {"name": f"c{i:02d}", "namespace": f"n{i % 3}",
                                                            "creationTimestamp": "2026-11-27T10:00:00Z"},
                           "data": {"k": "v" * i}})
    cache = RowCache()

    def table(pins: tablecache.Pins | None) -> tuple[list[Any], bytes]:
        found, rv = store.scan(res, kept=pins)
        return found, tablecache.table_json(cache, "ConfigMap", Store.key(res), found, {"resourceVersion": str(rv)}, pins)

    first, whole = table(tablecache.Pins(cache, Store.key(res)))  # nothing kept yet: every text read
    assert all(text is not None for _, _, text, _ in first)
    assert table(None)[1] == whole
    kept, again = table(tablecache.Pins(cache, Store.key(res)))
    assert [text for _, _, text, _ in kept] == [None] * 20 and again == whole
    changed = store.get(res, "n1", "c04")
    changed["data"] = {"k": "changed"}
    store.update(res, changed)
    one, after = table(tablecache.Pins(cache, Store.key(res)))
    assert [name for _, name, text, _ in one if text is not None] == ["c04"]
    assert after == tablecache.table_json(RowCache(), "ConfigMap", Store.key(res), store.scan(res)[0],
                                          {"resourceVersion": str(store.rv)})
    assert after != whole
