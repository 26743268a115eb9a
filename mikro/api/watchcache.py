"""The API server's watch history, shared by every watcher (kube-apiserver's watch cache).

One history of the store's changes, bounded by the bytes of their JSON text (not by their
count: a history of small objects reaches further back than one of large ones), each change
kept once however many watchers there are. A watcher is only a cursor (the resourceVersion
it has passed on): it holds no queue, so one that stops reading costs nothing but its cursor.
Once the history has dropped changes the cursor still needs, the watcher is gone: its next
read raises 410 Expired ("too old resource version"), as a watch started from a compacted
resourceVersion does, and the client lists again.

Changes arrive from the store's change feed, in commit order, under the store's lock; their
JSON text is the store's own (shared with its history) when the store offers it, so answering
a JSON watcher needs no encoding at all.
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass
from typing import Any

from mikro.api.store import Change, Store
from mikro.errors import ApiError

HISTORY_BYTES = 8 * 1024 * 1024  # ~5000 changes of 1.5 KB objects; a watcher further behind relists


@dataclass(frozen=True)
class Event:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    key: str  # the resource's store key (group/plural)
    namespace: str
    name: str
    labels: dict[str, Any]
    text: str  # the object's JSON

    def obj(self) -> dict[str, Any]:
        return json.loads(self.text)

    def frame(self) -> bytes:
        """The event as one line of a JSON watch stream."""
        return b'{"type":"%s","object":%s}\n' % (self.type.encode(), self.text.encode())


def gone(since: int, compacted: int) -> ApiError:
    return ApiError(410, f"too old resource version: {since} ({compacted})", "Expired")


class WatchCache:
    def __init__(self, store: Store, history_bytes: int = HISTORY_BYTES) -> None:
        self.store = store
        self.history_bytes = history_bytes
        self.cond = threading.Condition()
        self.events: collections.deque[Event] = collections.deque()
        self.bytes = 0
        self.cursors: set[Cursor] = set()  # the watchers being served
        with store.lock:
            self.rv = store.rv  # the newest change seen
            self.compacted = store.rv  # changes up to this one are no longer kept
            if store.history:  # what the store still remembers is served too
                self.compacted = store.history[0].rv - 1
                for past in store.history:
                    self._observe(past.change())
            store.watch(self._observe)

    def _observe(self, change: Change) -> bool:
        """The store's change feed; never queues (returns False). Takes the store's text and
        metadata as they are: no object is decoded here."""
        ns, name, labels = change.meta
        text = change.text if change.text is not None else json.dumps(change.obj, separators=(",", ":"))
        self._add(Event(change.rv, change.type, Store.key(change.resource), ns, name, labels, text))
        return False

    def _add(self, event: Event) -> None:
        with self.cond:
            self.events.append(event)
            self.bytes += len(event.text)
            while self.bytes > self.history_bytes and len(self.events) > 1:
                dropped = self.events.popleft()
                self.bytes -= len(dropped.text)
                self.compacted = dropped.rv
            self.rv = max(self.rv, event.rv)
            self.cond.notify_all()

    def subscribe(self, since: int) -> Cursor:
        """A cursor after `since` (410 when the changes after it are no longer kept)."""
        with self.cond:
            if since < self.compacted:
                raise gone(since, self.compacted)
            cursor = Cursor(self, min(since, self.rv))
            self.cursors.add(cursor)
            return cursor

    def after(self, rv: int) -> list[Event]:
        """The kept changes newer than `rv`, oldest first (the caller holds `cond`)."""
        out = []
        for event in reversed(self.events):
            if event.rv <= rv:
                break
            out.append(event)
        out.reverse()
        return out


class Cursor:
    """One watcher's place in the history."""

    def __init__(self, cache: WatchCache, rv: int) -> None:
        self.cache = cache
        self.rv = rv

    def next(self, timeout: float) -> list[Event]:
        """The changes after the cursor, waiting up to `timeout` for one; 410 Expired once the
        history no longer holds them (the watcher fell too far behind)."""
        cache = self.cache
        with cache.cond:
            if cache.rv <= self.rv and self.rv >= cache.compacted:
                cache.cond.wait(timeout)
            if self.rv < cache.compacted:
                raise gone(self.rv, cache.compacted)
            events = cache.after(self.rv)
        if events:
            self.rv = events[-1].rv
        return events

    def close(self) -> None:
        with self.cache.cond:
            self.cache.cursors.discard(self)

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCK = threading.Lock()


def cache_of(store: Store) -> WatchCache:
    """The store's watch cache (one per store, made on first use)."""
    with _LOCK:
        cache = getattr(store, "_watch_cache", None)
        if cache is None:
            cache = WatchCache(store)
            store._watch_cache = cache  # type: ignore[attr-defined]
        return cache
