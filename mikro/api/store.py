"""The etcd part: Kubernetes objects in one SQLite database.

WAL journal with synchronous=FULL, so a committed write is on disk before the call returns
and survives `kill -9`. One resourceVersion counter for every object, as etcd's revision.
Changes are also published in memory to watchers (the API server's `watch=true` and the
controllers), with a bounded history so that a watch may start from a recent version.
"""

from __future__ import annotations

import collections
import copy
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mikro.api.resources import Resource
from mikro.errors import ApiError, already_exists, conflict, not_found

HISTORY = 5000


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Change:
    type: str  # ADDED, MODIFIED, DELETED
    resource: Resource
    obj: dict[str, Any]
    rv: int


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

    def push(self, change: Change) -> None:
        if self.predicate(change):
            with self.cond:
                self.queue.append(change)
                self.cond.notify()

    def next(self, timeout: float) -> Change | None:
        with self.cond:
            if not self.queue and not self.closed:
                self.cond.wait(timeout)
            return self.queue.popleft() if self.queue else None

    def close(self) -> None:
        self.store.unwatch(self)
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, "
            "name TEXT NOT NULL, rv INTEGER NOT NULL, data TEXT NOT NULL, "
            "PRIMARY KEY (resource, namespace, name))"
        )
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        row = self.db.execute("SELECT value FROM meta WHERE key='rv'").fetchone()
        self.rv = int(row[0]) if row else 0
        self.lock = threading.RLock()
        self.watches: list[Watch] = []
        self.history: collections.deque[Change] = collections.deque(maxlen=HISTORY)

    @staticmethod
    def key(res: Resource) -> str:
        return f"{res.group}/{res.plural}"

    # -- reads -----------------------------------------------------------------------------

    def get(self, res: Resource, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            row = self.db.execute(
                "SELECT data FROM objects WHERE resource=? AND namespace=? AND name=?",
                (self.key(res), namespace if res.namespaced else "", name),
            ).fetchone()
        if row is None:
            raise not_found(res.plural, name, res.group)
        return json.loads(row[0])

    def find(self, res: Resource, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(res, namespace, name)
        except ApiError:
            return None

    def list(self, res: Resource, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        with self.lock:
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

    # -- writes ----------------------------------------------------------------------------

    def _commit(self, res: Resource, obj: dict[str, Any], kind: str, delete: bool = False) -> dict[str, Any]:
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if res.namespaced else ""
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if delete:
                self.db.execute(
                    "DELETE FROM objects WHERE resource=? AND namespace=? AND name=?",
                    (self.key(res), ns, meta["name"]),
                )
            else:
                self.db.execute(
                    "INSERT OR REPLACE INTO objects (resource, namespace, name, rv, data) VALUES (?,?,?,?,?)",
                    (self.key(res), ns, meta["name"], self.rv, json.dumps(obj, separators=(",", ":"))),
                )
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('rv', ?)", (str(self.rv),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self.rv -= 1
            raise
        change = Change(kind, res, copy.deepcopy(obj), self.rv)
        self.history.append(change)
        for w in list(self.watches):
            w.push(change)
        return obj

    def create(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            meta = obj.setdefault("metadata", {})
            ns = meta.get("namespace", "") if res.namespaced else ""
            if self.find(res, ns, meta["name"]) is not None:
                raise already_exists(res.plural, meta["name"], res.group)
            meta["uid"] = meta.get("uid") or str(uuid.uuid4())  # the registry sets it before defaulting
            meta["creationTimestamp"] = now_rfc3339()
            meta["generation"] = 1
            meta.pop("deletionTimestamp", None)
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
            return self._commit(res, obj, "ADDED")

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
            if "status" in current and res.kind != "Namespace":
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
            if since is not None and since < self.rv:
                oldest = self.history[0].rv if self.history else self.rv + 1
                if since + 1 < oldest:
                    raise ApiError(410, f"too old resource version: {since} ({oldest - 1})", "Expired")
                for change in self.history:
                    if change.rv > since:
                        w.push(change)
            self.watches.append(w)
        return w

    def unwatch(self, w: Watch) -> None:
        with self.lock:
            if w in self.watches:
                self.watches.remove(w)

    def close(self) -> None:
        self.db.close()
