"""Table rows kept ready, so that `kubectl get` of thousands of objects decodes none of them.

A Table row of a built-in kind (printers.py's columns, `includeObject=Metadata`, what kubectl
asks for) is a function of the object and, through the AGE column, of the time. The cache
keeps, per object and resourceVersion, the row's JSON with its AGE cells left open and the
creation time they are computed from; a list fills in the ages and joins the rows. A row whose
resourceVersion moved on is made again. Kinds with other cells that move with the clock (a
Pod's "(5m ago)", a Job's duration, a CronJob's last schedule, an Event's age) are never cached.
The cache is bounded by bytes; the oldest rows go first.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from typing import Any

from mikro.cli import printers

Row = tuple[str, str, str | None, int]  # namespace, name, JSON text (None: pinned), resourceVersion

MAX_BYTES = 16 * 1024 * 1024
# Kinds whose cells, AGE aside, move with the clock.
TIME_DEPENDENT = frozenset({"Pod", "Event", "Job", "CronJob"})
_AGE = "\x00"
_OBJECT = ',"object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":'


def cacheable(kind: str) -> bool:
    return kind not in TIME_DEPENDENT


class _Row:
    __slots__ = ("rv", "parts", "created", "size")

    def __init__(self, rv: int, parts: list[str], created: float | None) -> None:
        self.rv, self.parts, self.created = rv, parts, created  # the row's JSON, split at its ages
        self.size = sum(len(p) for p in parts) + 100


class RowCache:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.kept: collections.OrderedDict[tuple[str, str, str], _Row] = collections.OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()

    @staticmethod
    def _make(kind: str, obj: dict[str, Any], rv: int) -> _Row:
        cols = printers.COLUMNS.get(kind, printers.DEFAULT_COLUMNS)
        meta = obj.get("metadata") or {}
        # An AGE cell is a raw NUL here, which JSON text never holds (json.dumps escapes it).
        cells = [_AGE if value is printers._age else json.dumps(value(obj), separators=(",", ":")) for _, _, value in cols]
        row = '{"cells":[' + ",".join(cells) + "]" + _OBJECT + json.dumps(meta, separators=(",", ":")) + "}}"
        return _Row(rv, row.split(_AGE), printers.parse_time(meta.get("creationTimestamp")))

    def rows(
        self, kind: str, store_key: str, found: list[Row], now: float | None = None, pins: Pins | None = None
    ) -> str:
        """The JSON of the Table rows of these stored objects ((namespace, name, JSON text,
        resourceVersion) each, in order), joined by commas. A row read without its text (None)
        is one `pins` holds."""
        now = time.time() if now is None else now
        if pins is not None and len(pins.found) == len(found):
            kept = pins.found  # (looked up already, in the same order)
        else:
            with self.lock:  # (once for all the rows, not once per row)
                kept = [self.kept.get((store_key, ns, name)) for ns, name, _, _ in found]
        ages: dict[float | None, str] = {}  # an AGE cell per creation second: the rows share them
        out = []
        for (ns, name, text, rv), row in zip(found, kept, strict=True):
            if row is None or row.rv != rv:
                assert text is not None  # (a row read without its text is a pinned one)
                row = self._make(kind, json.loads(text), rv)
                self._keep((store_key, ns, name), row)
            parts = row.parts
            if len(parts) == 1:
                out.append(parts[0])
                continue
            age = ages.get(row.created)
            if age is None:
                created = row.created
                age = '"<unknown>"' if created is None else '"' + printers.human_duration(now - created) + '"'
                ages[created] = age
            out.append(age.join(parts))
        return ",".join(out)

    def _keep(self, key: tuple[str, str, str], row: _Row) -> None:
        with self.lock:
            old = self.kept.pop(key, None)
            if old is not None:
                self.bytes -= old.size
            self.kept[key] = row
            self.bytes += row.size
            while self.bytes > self.max_bytes and self.kept:
                _, dropped = self.kept.popitem(last=False)
                self.bytes -= dropped.size


class Pins:
    """For one list: Store.scan's `kept`. It answers which rows the cache does not hold at their
    resourceVersion (their text must be read), and holds the others for the answer, so that
    none is evicted in between: `found`, in the keys' order (None where not held)."""

    def __init__(self, cache: RowCache, store_key: str) -> None:
        self.cache, self.store_key = cache, store_key
        self.found: list[_Row | None] = []

    def __call__(self, keys: list[tuple[str, str, int]]) -> set[tuple[str, str]]:
        store_key = self.store_key
        with self.cache.lock:
            get = self.cache.kept.get
            found = [get((store_key, ns, name)) for ns, name, _ in keys]
        for i, ((_, _, rv), row) in enumerate(zip(keys, found, strict=True)):
            if row is not None and row.rv != rv:
                found[i] = None
        self.found = found
        return {(ns, name) for (ns, name, _), row in zip(keys, found, strict=True) if row is None}


def table_json(
    cache: RowCache,
    kind: str,
    store_key: str,
    found: list[Row],
    metadata: dict[str, Any],
    pins: Pins | None = None,
) -> bytes:
    """A whole meta.k8s.io/v1 Table (includeObject=Metadata) of these stored objects (read
    with `pins` as Store.scan's `kept`, when given)."""
    head = printers.table(kind, [], "")
    head["metadata"] = metadata
    del head["rows"]
    text = json.dumps(head, separators=(",", ":"))
    return "".join((text[:-1], ',"rows":[', cache.rows(kind, store_key, found, pins=pins), "]}")).encode()


_LOCK = threading.Lock()


def of(store: Any) -> RowCache:
    """The rows kept for this store's objects (one cache per store, made on first use)."""
    with _LOCK:
        cache = getattr(store, "_table_rows", None)
        if cache is None:
            cache = store._table_rows = RowCache()
        return cache
