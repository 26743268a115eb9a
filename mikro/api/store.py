"""The etcd part: Kubernetes objects in one SQLite database.

WAL journal; a write is on disk before the call returns and survives `kill -9`: concurrent
writes are staged in one transaction, committed together and made durable by one fsync of the
WAL (group commit, `groupcommit.py`); watchers see a change once it is durable. One resourceVersion counter for every object, as etcd's revision.
The counter is stored in the rows it versions, and in `meta` by the transactions that delete.
Changes are also published in memory to watchers (the API server's `watch=true` and the
controllers), with a history bounded by count and by bytes (kept as JSON text) so that a
watch may start from a recent version. The database and its WAL are readable by their owner
only: they hold every Secret.
"""

from __future__ import annotations

import collections
import copy
import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mikro.api.bodies import MAX_OBJECT_BYTES, object_too_large
from mikro.api.groupcommit import Fsync, GroupSync
from mikro.api.resources import Resource
from mikro.errors import ApiError, already_exists, conflict, not_found

HISTORY = 5000
# The API server's watches are served from watchcache.py's history (bounded by bytes, shared by
# every watcher); this one only serves Store.watch(since=...) and seeds that cache at start.
HISTORY_BYTES = 4 * 1024 * 1024
# A watcher that leaves this much unread is dropped (it relists), rather than holding the
# changes in memory for as long as it does not read.
WATCH_PENDING_BYTES = 32 * 1024 * 1024
WATCH_PENDING_CHANGES = 50_000
# Kinds that admission reads on every write of other kinds (the namespace's existence, its
# quotas and limit ranges): their rows are also kept in memory, as JSON text, in step with
# every statement the store runs, so that a create reads no row for them. Few and small.
KEPT = frozenset({"/namespaces", "/resourcequotas", "/limitranges"})


_stamp: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """The time now, to the second, as Kubernetes writes timestamps (formatted once a second:
    every create writes two)."""
    global _stamp
    now = time.time()
    second, text = _stamp
    if int(now) != second:
        text = datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        _stamp = (int(now), text)
    return text


class Change:
    """One committed change as watchers get it. `obj` is decoded from the stored JSON `text`
    on first use, once for every watcher: most watchers look only at the kind and at `meta`
    (namespace, name, labels), and a create's decode was ~4% of the API server's CPU under a
    flood of creates."""

    __slots__ = ("type", "resource", "rv", "size", "text", "_obj", "_meta")

    def __init__(
        self,
        type: str,  # noqa: A002 - ADDED, MODIFIED, DELETED
        resource: Resource,
        obj: dict[str, Any] | None,
        rv: int,
        size: int = 0,  # bytes of the object's JSON
        text: str | None = None,
        meta: tuple[str, str, dict[str, str]] | None = None,
    ) -> None:
        self.type, self.resource, self.rv, self.size, self.text = type, resource, rv, size, text
        self._obj, self._meta = obj, meta

    @property
    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = json.loads(self.text or "{}")
        return self._obj

    @property
    def meta(self) -> tuple[str, str, dict[str, str]]:
        """(namespace, name, labels) of the object; the namespace "" for a cluster-scoped one."""
        if self._meta is None:
            self._meta = _meta_of(self.resource, self.obj)
        return self._meta


def _meta_of(res: Resource, obj: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    meta = obj.get("metadata") or {}
    labels = meta.get("labels")
    return (
        (meta.get("namespace") or "") if res.namespaced else "",
        meta.get("name") or "",
        dict(labels) if isinstance(labels, dict) else {},
    )


@dataclass(frozen=True)
class _Past:
    """A change as the history keeps it: JSON text, decoded again for each replay."""

    type: str
    resource: Resource
    data: str
    rv: int

    def change(self) -> Change:
        return Change(self.type, self.resource, None, self.rv, len(self.data), self.data)


def _spec_part(obj: dict[str, Any]) -> Any:
    """What counts as a spec change for `generation` (everything but metadata and status)."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Watch:
    def __init__(self, store: Store, predicate: Callable[[Change], bool]) -> None:
        self.store = store
        self.predicate = predicate
        self.queue: collections.deque[Change] = collections.deque()
        self.cond = threading.Condition()
        self.closed = False
        self.expired = False  # fell too far behind: dropped, the watcher must list again
        self.pending_bytes = 0

    def push(self, change: Change) -> None:
        if self.predicate(change):
            with self.cond:
                if self.expired:
                    return
                self.queue.append(change)
                self.pending_bytes += change.size
                if self.pending_bytes > WATCH_PENDING_BYTES or len(self.queue) > WATCH_PENDING_CHANGES:
                    self.expired = True
                    self.queue.clear()
                    self.pending_bytes = 0
                self.cond.notify()

    def next(self, timeout: float) -> Change | None:
        with self.cond:
            if not self.queue and not self.closed and not self.expired:
                self.cond.wait(timeout)
            if not self.queue:
                return None
            change = self.queue.popleft()
            self.pending_bytes -= change.size
            return change

    def close(self) -> None:
        self.store.unwatch(self)
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _newest(result: Any) -> int:
    """The newest resourceVersion in what a read returns: an object, a (list, version) pair of
    objects, or rows (namespace, name, JSON text, resourceVersion) alone or in such a pair."""
    if isinstance(result, dict):
        return int(result["metadata"].get("resourceVersion") or 0)
    items = result[0] if isinstance(result, tuple) else result if isinstance(result, list) else []
    return max(
        (int(o["metadata"]["resourceVersion"]) if isinstance(o, dict) else int(o[3]) for o in items), default=0
    )


def _durable(method: Callable[..., Any]) -> Callable[..., Any]:
    """Answer only once what the method returns is durable: the object's resourceVersion for a
    write or a get, the newest item's for a list. Not while the store's lock is held (a call
    from inside another store method): the outer call waits."""

    @functools.wraps(method)
    def durable(self: Store, *args: Any, **kwargs: Any) -> Any:
        local = self._calls
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            result = method(self, *args, **kwargs)
        finally:
            local.depth = depth
        if depth == 0:
            rv = _newest(result)
            if rv > self.sync.durable:
                self.sync.wait(rv, self._commit_group, self._publish)
            if self._lost and any(first <= rv <= last for first, last in self._lost):
                raise ApiError(500, "the write could not be committed (storage error); it was not stored")
        return result

    return durable


class Store:
    def __init__(self, path: Path, fsync: Fsync = os.fdatasync) -> None:
        self.path = path
        _private_files(path)
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # the WAL's fsync per commit: GroupSync
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
            "name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL, "
            "PRIMARY KEY (resource, namespace, name))"
        )
        # Every key with its version, apart from the texts: a list of Table rows kept ready reads
        # only this (Store.scan's `kept`): 10 000 ConfigMaps in ~12 ms, not ~50 ms row by row.
        self.db.execute("CREATE INDEX IF NOT EXISTS objects_versions ON objects (resource, namespace, name, rv)")
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        _private_files(path)  # SQLite made the -wal and -shm files just now
        row = self.db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        # The counter is the newest version a row holds, or the one kept in `meta` by the last
        # transaction that deleted something (a deleted row takes its version away).
        newest = self.db.execute("SELECT MAX(rv) FROM objects").fetchone()[0]
        self.rv = max(int(row[0]) if row else 0, int(newest or 0))
        self._deleting = False  # the open transaction deletes a row: it writes the counter too
        self.lock = threading.RLock()
        self.watches: list[Watch] = []
        self.history: collections.deque[_Past] = collections.deque()
        self.history_bytes = 0
        self.sync = GroupSync(path, self.rv, fsync)
        self._committed = self.rv  # the last resourceVersion whose transaction committed
        self._lost: list[tuple[int, int]] = []  # staged writes whose transaction failed
        self._unpublished: collections.deque[Change] = collections.deque()  # committed, not yet durable
        self._calls = threading.local()
        # KEPT kinds' rows by (namespace, name), each loaded at its first read (_rows_of)
        self._kept: dict[str, dict[tuple[str, str], str]] = {}

    @staticmethod
    def key(res: Resource) -> str:
        return f"{res.group}/{res.plural}"

    # -- reads -----------------------------------------------------------------------------

    @_durable
    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        found = self._read(res, namespace, name)
        if found is None:
            raise not_found(res.plural, name, res.group)
        return json.loads(found)

    @_durable
    def find(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        # (its own query: a create's existence check must not build a NotFound error each time)
        found = self._read(res, namespace, name)
        return None if found is None else json.loads(found)

    def _read(self, res: Resource, namespace: str, name: str) -> str | None:
        """The JSON text of one object, or None."""
        key, ns = self.key(res), namespace if res.namespaced else ""
        if key in KEPT:
            rows = self._kept.get(key)
            if rows is not None:
                # Without the lock (a dict read is atomic): a create's namespace check does not
                # wait behind a group's commit. It reads what a read under the lock would read
                # just before or just after the write being staged.
                return rows.get((ns, name))
        with self.lock:
            if key in KEPT:
                return self._rows_of(key).get((ns, name))
            row = self.db.execute(
                "SELECT data FROM objects WHERE resource=? AND namespace=? AND name=?", (key, ns, name)
            ).fetchone()
        return None if row is None else str(row[0])

    def _rows_of(self, key: str) -> dict[tuple[str, str], str]:
        """A KEPT kind's rows (under the store's lock), read from the database the first time."""
        rows = self._kept.get(key)
        if rows is None:
            found = self.db.execute("SELECT namespace, name, data FROM objects WHERE resource=?", (key,))
            rows = self._kept[key] = {(ns, name): data for ns, name, data in found.fetchall()}
        return rows

    @_durable
    def list(self, res: Resource, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
            key = self.key(res)
            if key in KEPT:
                rows = self._rows_of(key)
                wanted = namespace if namespace and res.namespaced else None
                texts = [rows[k] for k in sorted(rows) if wanted is None or k[0] == wanted]
                return [json.loads(t) for t in texts], self.rv
            if namespace and res.namespaced:
                rows = self.db.execute(
                    "SELECT data FROM objects WHERE resource=? AND namespace=? ORDER BY namespace, name",
                    (self.key(res), namespace),
                ).fetchall()
            else:
                rows = self.db.execute(
                    "SELECT data FROM objects WHERE resource=? ORDER BY namespace, name", (self.key(res),)
                ).fetchall()
            return [json.loads(r[0]) for r in rows], self.rv

    @_durable
    def in_namespace(self, res: Resource, namespace: str) -> list[dict[str, Any]]:
        """The objects of one namespace, for a write's admission (its quotas, limit ranges,
        what a quota counts). A KEPT kind's are read as `_read` reads them, without waiting for
        the store's lock, so that a create does not queue behind a group's commit. No
        resourceVersion: not for a list that a watch goes on from (`list` reads the rows and
        the version together, under the lock)."""
        key = self.key(res)
        if key not in KEPT:
            return self.list(res, namespace)[0]
        rows = self._kept.get(key)
        if rows is None:
            with self.lock:
                rows = self._rows_of(key)
        # (`list(...items())` copies in one step, under the GIL: a write may add or drop a row
        # meanwhile)
        return [json.loads(text) for (ns, _), text in sorted(list(rows.items())) if ns == namespace]

    @_durable
    def scan(
        self,
        res: Resource,
        namespace: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int | None = None,
        kept: Callable[[list[tuple[str, str, int]]], set[tuple[str, str]]] | None = None,
    ) -> tuple[list[tuple[str, str, str | None, int]], int]:
        """(namespace, name, JSON text, resourceVersion) of the objects after the key `after`, in
        key order, at most `limit` of them, and the resourceVersion they were read at. Nothing
        is decoded. With `kept` (given every (namespace, name, resourceVersion), it answers the
        keys whose text the caller has not kept at that version), only those texts are read:
        the others' are None. Both reads are one view of the store (under its lock)."""
        where, args = self._key_range(res, namespace, after)
        order = " ORDER BY namespace, name" + (f" LIMIT {int(limit)}" if limit is not None else "")
        whole = f"SELECT namespace, name, data, rv FROM objects WHERE {where}{order}"
        with self.lock:
            if kept is None:
                return self.db.execute(whole, args).fetchall(), self.rv
            keys = self.db.execute(f"SELECT namespace, name, rv FROM objects WHERE {where}{order}", args).fetchall()
            missing = kept(keys)
            if len(missing) > len(keys) // 8:  # (many: one read of them all beats one per object)
                return self.db.execute(whole, args).fetchall(), self.rv
            texts = {
                key: self.db.execute(
                    "SELECT data FROM objects WHERE resource=? AND namespace=? AND name=?", (self.key(res), *key)
                ).fetchone()[0]
                for key in missing
            }
            return [(ns, name, texts.get((ns, name)), rv) for ns, name, rv in keys], self.rv

    def count(self, res: Resource, namespace: str | None = None, after: tuple[str, str] | None = None) -> int:
        """How many objects `scan` would answer without a limit."""
        where, args = self._key_range(res, namespace, after)
        with self.lock:
            return int(self.db.execute(f"SELECT COUNT(*) FROM objects WHERE {where}", args).fetchone()[0])

    def _key_range(
        self, res: Resource, namespace: str | None, after: tuple[str, str] | None
    ) -> tuple[str, list[str]]:
        """The WHERE clause (and its arguments) of a kind's objects after a key, in a namespace."""
        where, args = ["resource=?"], [self.key(res)]
        if namespace and res.namespaced:
            where.append("namespace=?")
            args.append(namespace)
        if after is not None:
            where.append("(namespace>? OR (namespace=? AND name>?))")
            args += [after[0], after[0], after[1]]
        return " AND ".join(where), args

    @_durable
    def fetch(self, res: Resource, keys: list[tuple[str, str]]) -> list[tuple[str, str, str, int]]:
        """(namespace, name, JSON text, resourceVersion) of the objects at these keys that exist,
        in the keys' order."""
        out = []
        with self.lock:
            for ns, name in keys:
                row = self.db.execute(
                    "SELECT data, rv FROM objects WHERE resource=? AND namespace=? AND name=?", (self.key(res), ns, name)
                ).fetchone()
                if row is not None:
                    out.append((ns, name, row[0], row[1]))
        return out

    # -- writes ----------------------------------------------------------------------------

    def _commit(self, res: Resource, obj: dict[str, Any], kind: str, delete: bool = False) -> dict[str, Any]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if res.namespaced else ""
        previous_rv = meta.get("resourceVersion")
        meta["resourceVersion"] = str(self.rv + 1)
        data = json.dumps(obj, separators=(",", ":"))
        if len(data) > MAX_OBJECT_BYTES and not delete:
            if previous_rv is None:
                meta.pop("resourceVersion", None)
            else:
                meta["resourceVersion"] = previous_rv
            raise object_too_large()
        # Staged in the group's open transaction (one statement: atomic alone, so a failing
        # write leaves the others staged); the group's leader commits it (_commit_group).
        self.rv += 1
        key = self.key(res)
        try:
            if not self.db.in_transaction:
                self.db.execute("BEGIN IMMEDIATE")
            if delete:
                self._deleting = True
                self.db.execute(
                    "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", (key, ns, meta["name"])
                )
            else:
                # A create's INSERT finds a taken name itself (the primary key): no read before it.
                self.db.execute(
                    ("INSERT" if kind == "ADDED" else "INSERT OR REPLACE")
                    + " INTO objects (resource, namespace, name, rv, data) VALUES (?,?,?,?,?)",
                    (key, ns, meta["name"], self.rv, data),
                )
        except sqlite3.IntegrityError:
            self.rv -= 1
            meta.pop("resourceVersion", None)
            if not self.db.in_transaction:
                self._lose_staged()
            raise already_exists(res.plural, meta["name"], res.group) from None
        except BaseException:
            self.rv -= 1
            if not self.db.in_transaction:
                self._lose_staged()  # SQLite rolled the whole transaction back (I/O error, full disk)
            raise
        kept = self._kept.get(key)
        if kept is not None:
            if delete:
                kept.pop((ns, meta["name"]), None)
            else:
                kept[(ns, meta["name"])] = data
        # (the metadata snapshot now: the caller keeps the object and may change it)
        self._unpublished.append(Change(kind, res, None, self.rv, len(data), data, _meta_of(res, obj)))
        self._calls.committed = (obj, data)
        return obj

    def committed_json(self, obj: dict[str, Any]) -> str | None:
        """The JSON text this thread's last write stored, when `obj` is the very object it
        wrote: the API server answers a write with it rather than encoding the object again
        (that encoding was ~7% of a create's CPU). None otherwise."""
        last = getattr(self._calls, "committed", None)
        self._calls.committed = None
        if last is None or last[0] is not obj:
            return None
        return last[1]

    def _commit_group(self) -> int:
        """Commit the open transaction (every write staged since the last group) with the
        resourceVersion counter; return the last resourceVersion committed. Without fsync:
        GroupSync's leader syncs the WAL next, outside the lock."""
        with self.lock:
            if self.db.in_transaction:
                try:
                    # (a transaction without a delete leaves its last version in its last row)
                    if self._deleting:
                        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(self.rv),))
                    self.db.execute("COMMIT")
                    self._deleting = False
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    self._lose_staged()
                    raise
            self._committed = self.rv
            return self.rv

    def _lose_staged(self) -> None:
        """The open transaction is gone: its writes were never answered; they must not be
        published, and their writers learn it (_durable) instead of waiting for them."""
        self._kept.clear()  # (read again from what the database now holds)
        lost = [p.rv for p in self._unpublished if p.rv > self._committed]
        if lost:
            self._lost.append((min(lost), max(lost)))
        self._unpublished = collections.deque(p for p in self._unpublished if p.rv <= self._committed)
        self.rv = max(self.rv, self._committed)

    def _publish(self, upto: int) -> None:
        """Hand the changes made durable up to `upto` to the history and the watchers, in order.
        (A watcher's predicate that reads the store here does not wait for the fsync it is in.)"""
        local = self._calls
        depth = getattr(local, "depth", 0)
        local.depth = depth + 1
        try:
            with self.lock:
                while self._unpublished and self._unpublished[0].rv <= upto:
                    change = self._unpublished.popleft()
                    self._remember(_Past(change.type, change.resource, change.text or "", change.rv))
                    for w in list(self.watches):
                        w.push(change)
        finally:
            local.depth = depth

    def _remember(self, past: _Past) -> None:
        self.history.append(past)
        self.history_bytes += len(past.data)
        while len(self.history) > HISTORY or (self.history_bytes > HISTORY_BYTES and len(self.history) > 1):
            self.history_bytes -= len(self.history.popleft().data)

    @_durable
    def create(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # the registry sets it before defaulting
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            return self._commit(res, obj, "ADDED")

    @_durable
    def update(self, res: Resource, obj: dict[str, Any], status_only: bool = False) -> dict[str, Any]:
        """Replace an object. A resourceVersion in `obj` must be the current one (409 otherwise).
        `status_only` keeps the stored spec and metadata and takes only `status`."""
        with self.lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if res.namespaced else ""
            current = self.get(res, ns, meta["name"])
            cmeta = current["metadata"]
            sent_rv = meta.get("resourceVersion")
            if sent_rv and str(sent_rv) != cmeta["resourceVersion"]:
                raise conflict(res.plural, meta["name"], res.group)
            if status_only:
                new = copy.deepcopy(current)
                new["status"] = obj.get("status", {})
                if new == current:
                    return current
                return self._commit(res, new, "MODIFIED")
            for field in ("uid", "creationTimestamp", "generation", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if field in cmeta:
                    meta[field] = cmeta[field]
                else:
                    meta.pop(field, None)
            # (a custom resource without the status subresource writes its status here)
            has_status_subresource = res.custom is None or res.custom.status
            if "status" in current and res.kind != "Namespace" and has_status_subresource:
                obj["status"] = current["status"]  # status changes go through /status
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            if _spec_part(obj) != _spec_part(current):
                meta["generation"] = int(cmeta.get("generation", 1)) + 1
            meta["resourceVersion"] = cmeta["resourceVersion"]
            if obj == current:
                return current
            if cmeta.get("deletionTimestamp") and not meta.get("finalizers") and res.kind != "Pod":
                return self._commit(res, obj, "DELETED", delete=True)
            return self._commit(res, obj, "MODIFIED")

    @_durable
    def delete(
        self, res: Resource, namespace: str, name: str, graceful: bool = False, grace_seconds: int | None = None
    ) -> dict[str, Any]:
        """Delete an object, or mark it for deletion (deletionTimestamp) when it has finalizers
        or `graceful` asks for a two-step delete (Pods: the runtime stops containers first)."""
        with self.lock:
            current = self.get(res, namespace, name)
            meta = current["metadata"]
            if meta.get("finalizers") or graceful:
                if not meta.get("deletionTimestamp"):
                    meta["deletionTimestamp"] = now_rfc3339()
                    if grace_seconds is not None:
                        meta["deletionGracePeriodSeconds"] = grace_seconds
                    return self._commit(res, current, "MODIFIED")
                return current
            return self._commit(res, current, "DELETED", delete=True)

    # -- watching --------------------------------------------------------------------------

    def watch(self, predicate: Callable[[Change], bool], since: int | None = None) -> Watch:
        """Subscribe to changes; with `since`, replay the history newer than it first
        (410 Gone when that history is no longer kept)."""
        w = Watch(self, predicate)
        with self.lock:
            published = self._unpublished[0].rv - 1 if self._unpublished else self.rv
            if since is not None and since > published:
                # a list's version may be ahead of what is published: its changes come later
                w.predicate = lambda change, since=since: change.rv > since and predicate(change)
            if since is not None and since < published:
                oldest = self.history[0].rv if self.history else published + 1
                if since + 1 < oldest:
                    raise ApiError(410, f"too old resource version: {since} ({oldest - 1})", "Expired")
                for past in self.history:
                    if past.rv > since:
                        w.push(past.change())
            self.watches.append(w)
        return w

    def unwatch(self, w: Watch) -> None:
        with self.lock:
            if w in self.watches:
                self.watches.remove(w)

    def close(self) -> None:
        self.db.close()
        self.sync.close()


def _private_files(path: Path) -> None:
    """The database and SQLite's companion files, owner-only (SQLite gives the -wal and -shm
    files the mode of the database, so the database is made first, 0600)."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if p.stat().st_mode & 0o077:
                os.chmod(p, 0o600)
        except FileNotFoundError:
            pass


def snapshot(path: Path) -> list[dict[str, Any]]:
    """Every stored object, read through a read-only connection (for `mikro inspect`, which must
    work beside a running control plane, or without one, and never write)."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [json.loads(row[0]) for row in db.execute("SELECT data FROM objects ORDER BY resource, namespace, name")]
    finally:
        db.close()
