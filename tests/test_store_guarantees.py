"""The store's promises checked directly: every answered write covered by an fsync of the WAL
(group commit: one fsync for many writers), the same results as one write at a time, watch
events in commit order, acknowledged writes kept across kill -9, and 410 Gone for a watch that
asks for history no longer kept (a kill -9 test cannot see a missing fsync: the OS still holds
the write, hence the recording fsync)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]
ROOT = Path(__file__).resolve().parent.parent


def cm(name: str, payload: str = "x") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"payload": payload}}


class RecordingFsync:
    """os.fsync that also notes what the WAL held when it was called."""

    def __init__(self, wal: Path) -> None:
        self.wal = wal
        self.synced: list[bytes] = []

    def __call__(self, fd: int) -> None:
        os.fsync(fd)
        if os.fstat(fd).st_ino == os.stat(self.wal).st_ino:
            self.synced.append(self.wal.read_bytes())


def test_every_answered_write_is_in_an_fsynced_wal(tmp_path: Path) -> None:
    db = tmp_path / "db"
    fsync = RecordingFsync(db.with_name("db-wal"))
    s = Store(db, fsync=fsync)
    assert s.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: the WAL's fsync is GroupSync's
    writes = [
        lambda: s.create(CM, cm("a")),
        lambda: s.update(CM, cm("a", "changed")),
        lambda: s.create(CM, cm("b")),
        lambda: s.delete(CM, "default", "a"),
    ]
    for write in writes:
        write()
        # nothing of the WAL that the answer depends on is newer than the last fsync
        assert fsync.synced and fsync.synced[-1] == fsync.wal.read_bytes()
    assert len(fsync.synced) == len(writes)


def test_a_read_answers_nothing_that_is_not_durable(tmp_path: Path) -> None:
    db = tmp_path / "db"
    fsync = RecordingFsync(db.with_name("db-wal"))
    s = Store(db, fsync=fsync)
    s.create(CM, cm("a"))
    synced = len(fsync.synced)
    assert s.get(CM, "default", "a")["data"] == {"payload": "x"}
    assert s.list(CM)[0][0]["metadata"]["name"] == "a"
    assert len(fsync.synced) == synced  # already durable: no fsync for a read


class HeldFsync:
    """An fsync that waits until `release` (its `held`th call only), so that other writers commit
    while it is held and must share the next fsync."""

    def __init__(self, held: int = 1) -> None:
        self.held = held
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.calls == self.held:
            self.entered.set()
            assert self.release.wait(60)
        os.fsync(fd)


def wait_until(check: Any) -> None:
    """Wait (bounded, not timed) for another thread to reach a state."""
    done = threading.Event()
    for _ in range(6000):
        if check():
            return
        done.wait(0.01)
    raise AssertionError("the other threads never got there")


def concurrent_ops() -> list[tuple[str, dict[str, Any]]]:
    """Creates that succeed, creates of a name that exists, an object too large, an update with
    a stale resourceVersion: the failing ones must not fail or lose the others."""
    ops: list[tuple[str, dict[str, Any]]] = [("create", cm(f"ok-{i}", f"v{i}")) for i in range(12)]
    ops += [("create", cm("taken", "other"))] * 3
    ops += [("create", cm("huge", "x" * (4 * 1024 * 1024)))]
    stale = cm("taken", "stale")
    stale["metadata"]["resourceVersion"] = "1"
    ops += [("update", stale)]
    return ops


def run(s: Store, op: str, obj: dict[str, Any]) -> Any:
    try:
        return (s.create if op == "create" else s.update)(CM, obj)
    except ApiError as err:
        return err.code


def stored(s: Store) -> dict[str, dict[str, str]]:
    return {o["metadata"]["name"]: o.get("data", {}) for o in s.list(CM)[0]}


def test_concurrent_writes_share_an_fsync_and_store_what_one_at_a_time_stores(tmp_path: Path) -> None:
    one = Store(tmp_path / "one")
    one.create(CM, cm("taken"))
    one.update(CM, cm("taken", "second"))  # so that resourceVersion 1 is stale
    one.create(CM, cm("lead"))
    alone = [run(one, op, obj) for op, obj in concurrent_ops()]

    held = HeldFsync(held=3)
    s = Store(tmp_path / "group", fsync=held)
    commits = []
    s.db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    s.create(CM, cm("taken"))
    s.update(CM, cm("taken", "second"))
    first = threading.Thread(target=lambda: s.create(CM, cm("lead")))
    first.start()
    assert held.entered.wait(60)  # the first writer leads, its fsync held
    watch = s.watch(lambda change: True)
    results: dict[int, Any] = {}
    ops = concurrent_ops()
    threads = [threading.Thread(target=lambda i=i, op=op, obj=obj: results.__setitem__(i, run(s, op, obj)))
               for i, (op, obj) in enumerate(ops)]
    for t in threads:
        t.start()
    # every writer that can has staged its write (the failing ones answered already)
    wait_until(lambda: s.rv == 3 + 12 and len(results) == 5)
    assert not any(isinstance(r, dict) for r in results.values())  # no success answered before its fsync
    held.release.set()
    for t in [first, *threads]:
        t.join(60)
    assert held.calls <= 5  # 3 + 12 writes: the 12 concurrent creates shared one or two fsyncs
    assert len(commits) <= 5  # and one or two transactions
    assert stored(s) == stored(one)
    outcome = [results[i] if not isinstance(results[i], dict) else "ok" for i in range(len(ops))]
    assert outcome == [r if not isinstance(r, dict) else "ok" for r in alone]
    events = []
    while (change := watch.next(0)) is not None:
        events.append((change.rv, change.obj["metadata"]["name"]))
    assert [rv for rv, _ in events] == sorted({rv for rv, _ in events})  # strictly increasing
    assert sorted(name for _, name in events) == sorted(["lead"] + [f"ok-{i}" for i in range(12)])
    rvs = [int(o["metadata"]["resourceVersion"]) for o in s.list(CM)[0]]
    assert len(set(rvs)) == len(rvs) and max(rvs) == s.rv


def test_a_watch_from_a_version_not_yet_published_gets_each_change_once(tmp_path: Path) -> None:
    held = HeldFsync()
    s = Store(tmp_path / "db", fsync=held)
    writer = threading.Thread(target=lambda: s.create(CM, cm("a")))
    writer.start()
    assert held.entered.wait(60)
    committed = s.rv  # committed, its fsync not done: a list may already show it
    after = s.watch(lambda change: True, since=committed)
    before = s.watch(lambda change: True, since=committed - 1)  # not 410: the change is on its way
    held.release.set()
    writer.join(60)
    s.create(CM, cm("b"))

    def names(w: Any) -> list[str]:
        out = []
        while (change := w.next(0)) is not None:
            out.append(change.obj["metadata"]["name"])
        return out

    assert names(after) == ["b"]
    assert names(before) == ["a", "b"]


WRITER = """
import sys, threading
from pathlib import Path
from mikro.api.resources import BY_KIND
from mikro.api.store import Store

s = Store(Path(sys.argv[1]))
out = threading.Lock()

def write(t):
    for i in range(100000):
        name = f"w{t}-{i}"
        s.create(BY_KIND["ConfigMap"], {"metadata": {"name": name, "namespace": "default"}, "data": {"i": str(i)}})
        with out:
            sys.stdout.write(name + "\\n")
            sys.stdout.flush()

for t in range(8):
    threading.Thread(target=write, args=(t,)).start()
"""


def test_every_acknowledged_write_of_many_concurrent_writers_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    acknowledged = []
    for line in proc.stdout:
        acknowledged.append(line.strip())
        if len(acknowledged) == 400:
            proc.send_signal(signal.SIGKILL)  # mid-load: the 8 writers are still writing
            break
    acknowledged += [line.strip() for line in proc.stdout]  # answered before the kill
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    s = Store(db)
    objs = s.list(CM)[0]
    names = {o["metadata"]["name"] for o in objs}
    assert set(acknowledged) <= names
    rvs = sorted(int(o["metadata"]["resourceVersion"]) for o in objs)
    assert len(set(rvs)) == len(rvs) and rvs[-1] == s.rv  # the counter came back with the data
    after = s.create(CM, cm("after"))
    assert int(after["metadata"]["resourceVersion"]) == s.rv > rvs[-1]


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


def test_a_watcher_that_reads_the_store_while_a_change_is_published_does_not_hang(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    seen = []
    s.watch(lambda change: bool(seen.append(s.get(CM, "default", change.obj["metadata"]["name"]))))
    s.create(CM, cm("a"))
    assert [o["metadata"]["name"] for o in seen] == ["a"]


def test_a_list_then_a_watch_from_its_version_mid_load_sees_each_later_write_once_in_order(tmp_path: Path) -> None:
    s = Store(tmp_path / "db")
    written = threading.Event()

    def writer(t: int) -> None:
        for i in range(40):
            s.create(CM, cm(f"w{t}-{i}"))
            if i == 10:
                written.set()

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    assert written.wait(60)
    items, rv = s.list(CM)  # while the writers write
    watch = s.watch(lambda change: True, since=rv)
    for t in threads:
        t.join(60)
    events = []
    while (change := watch.next(0)) is not None:
        events.append(change)
    listed = {o["metadata"]["name"] for o in items}
    seen = [c.obj["metadata"]["name"] for c in events]
    assert len(seen) == len(set(seen))  # none twice
    assert set(seen) == {f"w{t}-{i}" for t in range(6) for i in range(40)} - listed  # none missed
    assert all(c.rv > rv for c in events) and [c.rv for c in events] == sorted(c.rv for c in events)
    assert all(int(o["metadata"]["resourceVersion"]) <= rv for o in items)


class FailingDb:
    """The store's connection, but the INSERT of `doomed` fails the way SQLite fails on a full
    disk or an I/O error: the whole open transaction is rolled back."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql.startswith("INSERT") and "INTO objects" in sql and params[2] == "doomed":
            self._db.execute("ROLLBACK")
            raise sqlite3.OperationalError("disk I/O error")
        return self._db.execute(sql, params)


def test_a_transaction_lost_to_a_storage_error_fails_its_writers_and_publishes_nothing(tmp_path: Path) -> None:
    held = HeldFsync(held=2)
    s = Store(tmp_path / "db", fsync=held)
    s.create(CM, cm("before"))
    s.db = FailingDb(s.db)  # type: ignore[assignment]
    watch = s.watch(lambda change: True)
    lead = threading.Thread(target=lambda: s.create(CM, cm("lead")))
    lead.start()
    assert held.entered.wait(60)  # "lead" committed, its fsync held: the next writes stage together
    staged: dict[str, Any] = {}
    second = threading.Thread(target=lambda: staged.__setitem__("second", run(s, "create", cm("second"))))
    second.start()
    wait_until(lambda: s.rv == 3)  # "second" staged in the open transaction
    with pytest.raises(sqlite3.OperationalError):  # its own error (the API server answers 500)
        s.create(CM, cm("doomed"))
    held.release.set()
    lead.join(60)
    second.join(60)
    assert staged["second"] == 500  # never answered as stored
    assert sorted(stored(s)) == ["before", "lead"]
    s.create(CM, cm("after"))  # the store goes on
    names = []
    while (change := watch.next(0)) is not None:
        names.append(change.obj["metadata"]["name"])
    assert names == ["lead", "after"]
    reopened = Store(tmp_path / "db")
    assert sorted(stored(reopened)) == ["after", "before", "lead"]


def test_namespaces_kept_in_memory_follow_the_database_through_a_lost_transaction(tmp_path: Path) -> None:
    """Namespaces (read from memory by every create) staged in a transaction that is then lost
    are gone from what the store answers, as they are from the database."""
    ns = BY_KIND["Namespace"]
    held = HeldFsync(held=2)
    s = Store(tmp_path / "db", fsync=held)
    s.create(ns, {"metadata": {"name": "kept"}})
    assert s.find(ns, "", "kept") is not None  # loaded into memory now
    s.db = FailingDb(s.db)  # type: ignore[assignment]
    lead = threading.Thread(target=lambda: s.create(CM, cm("lead")))
    lead.start()
    assert held.entered.wait(60)
    staged: dict[str, Any] = {}

    def create_lost() -> None:
        try:
            staged["ns"] = s.create(ns, {"metadata": {"name": "lost"}})
        except ApiError as err:
            staged["ns"] = err.code

    second = threading.Thread(target=create_lost)
    second.start()
    wait_until(lambda: s.rv == 3)  # the namespace "lost" staged in the open transaction
    with pytest.raises(sqlite3.OperationalError):
        s.create(CM, cm("doomed"))
    held.release.set()
    lead.join(60)
    second.join(60)
    assert staged["ns"] == 500
    assert s.find(ns, "", "lost") is None
    assert [o["metadata"]["name"] for o in s.list(ns)[0]] == ["kept"]
    s.create(ns, {"metadata": {"name": "after"}})
    assert [o["metadata"]["name"] for o in s.list(ns)[0]] == ["after", "kept"]
    with pytest.raises(ApiError) as err:
        s.create(ns, {"metadata": {"name": "after"}})
    assert err.value.code == 409
    assert [o["metadata"]["name"] for o in Store(tmp_path / "db").list(ns)[0]] == ["after", "kept"]


def test_the_resource_version_counter_survives_a_reopen_after_creates_updates_and_deletes(tmp_path: Path) -> None:
    """The counter is kept in the rows, and in `meta` by transactions that delete: a reopened
    store goes on from the last version given, whatever the last write was."""
    s = Store(tmp_path / "db")
    for step in ("create a", "create b", "delete b", "update a", "create c", "delete a", "delete c"):
        verb, name = step.split()
        if verb == "create":
            s.create(CM, cm(name))
        elif verb == "update":
            s.update(CM, cm(name, "y"))
        else:
            s.delete(CM, "default", name)
        last = s.rv
        s.close()
        s = Store(tmp_path / "db")
        assert s.rv == last, step
    assert s.create(CM, cm("d"))["metadata"]["resourceVersion"] == str(last + 1)


def test_admission_reads_kept_kinds_without_the_store_lock_and_as_list_does(tmp_path: Path) -> None:
    """A create's admission reads the namespace's quotas and limit ranges (`in_namespace`) while a
    group's commit holds the store's lock: it does not wait for it, and it reads what `list`
    reads in that namespace."""
    quota = BY_KIND["ResourceQuota"]
    s = Store(tmp_path / "db")
    for ns, name in (("default", "b"), ("other", "x"), ("default", "a")):
        s.create(quota, {"metadata": {"name": name, "namespace": ns}, "spec": {"hard": {"pods": "3"}}})
    assert s.in_namespace(quota, "default") == s.list(quota, "default")[0]
    assert [o["metadata"]["name"] for o in s.in_namespace(quota, "default")] == ["a", "b"]
    assert s.in_namespace(quota, "none") == []
    s.create(CM, cm("not-kept"))  # a kind not kept in memory: as list reads it
    assert s.in_namespace(CM, "default") == s.list(CM, "default")[0] != []
    read: list[list[str]] = []
    with s.lock:
        reader = threading.Thread(target=lambda: read.append([o["metadata"]["name"] for o in s.in_namespace(quota, "other")]))
        reader.start()
        reader.join(10)
        assert read == [["x"]]  # answered while the lock was held
    reopened = Store(tmp_path / "db")  # first read of the kind: loaded from the database
    assert [o["metadata"]["name"] for o in reopened.in_namespace(quota, "default")] == ["a", "b"]
