"""A label index of the stored objects, kept in memory and in step with every commit, so that
a label-selected list reads only the objects it answers (kube-apiserver's watch cache plays
this part with its indexers).

An index of one resource is built the first time a selector asks for it (one scan of its
rows), then kept by the store's change feed. It is used only when it has seen every change
the store has committed (`applied` is the store's resourceVersion); otherwise the caller scans.
The index narrows by the selector's positive terms (`=`, `==`, `in`, `exists`); every term,
negative ones and field selectors included, is then checked on the decoded object, so the
answer is the same as a full scan's.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from mikro.api.resources import Resource
from mikro.api.selectors import Requirement
from mikro.api.store import Change, Store

Key = tuple[str, str]  # (namespace, name)
POSITIVE = ("=", "in", "exists")


class _Labels:
    """The labels of every object of one resource, and the objects by label key and value."""

    def __init__(self) -> None:
        self.of: dict[Key, dict[str, str]] = {}
        self.by: dict[str, dict[str, set[Key]]] = {}

    def put(self, key: Key, labels: dict[str, Any] | None) -> None:
        self.drop(key)
        labels = {k: v for k, v in (labels or {}).items() if isinstance(v, str)}
        self.of[key] = labels
        for k, v in labels.items():
            self.by.setdefault(k, {}).setdefault(v, set()).add(key)

    def drop(self, key: Key) -> None:
        old = self.of.pop(key, None)
        for k, v in (old or {}).items():
            values = self.by[k]
            keys = values[v]
            keys.discard(key)
            if not keys:
                del values[v]
                if not values:
                    del self.by[k]

    def matching(self, req: Requirement) -> set[Key]:
        values = self.by.get(req.key) or {}
        chosen = values.values() if req.op == "exists" else [values.get(v) or set() for v in req.values]
        out: set[Key] = set()
        for keys in chosen:
            out |= keys
        return out

    def estimate(self, req: Requirement) -> int:
        values = self.by.get(req.key) or {}
        chosen = values.values() if req.op == "exists" else [values.get(v) or set() for v in req.values]
        return sum(len(keys) for keys in chosen)


class LabelIndex:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.Lock()
        self.tables: dict[str, _Labels] = {}
        with store.lock:
            self.applied = store.rv  # the store's resourceVersion this index has seen up to
            store.watch(self._observe)

    def _observe(self, change: Change) -> bool:
        """The store's change feed (called for every commit, in order); never queues."""
        with self.lock:
            self.applied = max(self.applied, change.rv)
            table = self.tables.get(Store.key(change.resource))
            if table is not None:
                ns, name, labels = change.meta
                if change.type == "DELETED":
                    table.drop((ns, name))
                else:
                    table.put((ns, name), labels)
        return False

    def _table(self, res: Resource) -> _Labels | None:
        """The resource's index, built now when it is not kept yet; None while the index lags
        the store (a commit whose change has not reached it)."""
        with self.store.lock:
            with self.lock:
                if self.applied < self.store.rv:
                    return None
                table = self.tables.get(Store.key(res))
            if table is None:
                # Under the store's lock: marked as a call from inside the store, so that the
                # scan does not wait for a group commit whose leader needs that lock to publish
                # (a deadlock: `apply --wait`'s first label-selected list of pods while the
                # controllers were creating them hung every request).
                local = self.store._calls
                depth = getattr(local, "depth", 0)
                local.depth = depth + 1
                try:
                    rows, _ = self.store.scan(res)
                finally:
                    local.depth = depth
                table = _Labels()
                for ns, name, data, _ in rows:
                    table.put((ns, name), (json.loads(data).get("metadata") or {}).get("labels"))
                with self.lock:
                    self.tables[Store.key(res)] = table
            return table

    def candidates(self, res: Resource, namespace: str | None, requirements: list[Requirement]) -> list[Key] | None:
        """The keys, in key order, of the objects whose labels match every requirement; None
        when the selector has no positive term to narrow by, or the index cannot answer."""
        positive = [r for r in requirements if r.op in POSITIVE]
        if not positive:
            return None
        table = self._table(res)
        if table is None:
            return None
        with self.lock:
            first = min(positive, key=table.estimate)
            keys = table.matching(first)
            out = [
                k
                for k in keys
                if (not namespace or not res.namespaced or k[0] == namespace)
                and all(r.matches(table.of.get(k) or {}) for r in requirements)
            ]
        out.sort()
        return out


_INDEXES_LOCK = threading.Lock()


def index_of(store: Store) -> LabelIndex:
    """The store's label index (one per store, made on first use)."""
    with _INDEXES_LOCK:
        index = getattr(store, "_label_index", None)
        if index is None:
            index = LabelIndex(store)
            store._label_index = index  # type: ignore[attr-defined]
        return index
