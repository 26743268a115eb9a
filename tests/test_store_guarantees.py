"""The store's promises checked directly: fsync on every commit, and 410 Gone for a watch that
asks for history no longer kept (a kill -9 test cannot see a missing fsync: the OS still holds
the write)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]


def test_every_commit_is_synchronous_full_in_wal_mode(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: fsync before the call returns


def test_a_watch_older_than_the_history_is_gone(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    s.history = type(s.history)(maxlen=3)  # a short history, as after many changes
    first = s.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "default"}})
    start = int(first["metadata"]["resourceVersion"])
    for i in range(5):
        s.create(CM, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"b{i}", "namespace": "default"}})
    with pytest.raises(ApiError) as gone:
        s.watch(lambda change: True, since=start)
    assert gone.value.code == 410 and gone.value.reason == "Expired"
    recent = s.watch(lambda change: True, since=s.rv - 2)  # still kept: replayed, not refused
    names = []
    while (change := recent.next(0.1)) is not None:
        names.append(change.obj["metadata"]["name"])
    assert names == ["b3", "b4"]
