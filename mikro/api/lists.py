"""A list request answered from the store: selectors, paging and the list's metadata, reading
and decoding only what the answer holds.

- No selector: the page is read in key order straight from SQLite (`LIMIT`, the continue key
  as the lower bound) and its JSON text is answered as stored, never decoded.
- A label selector with a positive term: the label index (`index.py`) names the matching
  objects; only those are read.
- A field selector naming one object (`metadata.name=`, in a namespace or of a cluster-scoped
  kind), as kubectl wait and rollout status send it: that row only.
- Anything else (only negative terms, other field selectors): the rows are read in key order
  and checked one by one, stopping once the page is full.

Paging is Kubernetes': objects in key order (namespace, name), `continue` carries the last key,
`remainingItemCount` only when no selector filters (kube-apiserver cannot count those either).
Events keep their order by time, as before (all of them read, then paged).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mikro.api import listing, selectors
from mikro.api.index import index_of
from mikro.api.resources import Resource
from mikro.api.store import Store
from mikro.errors import ApiError

BATCH = 500  # rows read at a time when checking each one
LARGE = 1000  # a list of this many objects hands its freed memory back to the system after
Row = tuple[str, str, str | None, int]  # namespace, name, JSON text (None: kept, see select), resourceVersion


@dataclass
class Page:
    texts: list[str] | None  # the objects' JSON text, in order (None when only decoded)
    objs: list[dict[str, Any]] | None  # the decoded objects, when decoding was needed
    rv: int
    more: dict[str, Any] = field(default_factory=dict)  # continue, remainingItemCount
    rows: list[Row] | None = None  # the stored rows, when read as rows

    def objects(self) -> list[dict[str, Any]]:
        if self.objs is None:
            self.objs = [json.loads(t) for t in self.texts or []]
        return self.objs

    def json_texts(self) -> list[str]:
        if self.texts is None:
            self.texts = [json.dumps(o, separators=(",", ":")) for o in self.objs or []]
        return self.texts


def _start(query: dict[str, str]) -> tuple[str, str] | None:
    token = query.get("continue")
    if not token:
        return None
    ns, _, name = listing.decode_continue(token).partition("/")
    return ns, name


def _limit(query: dict[str, str]) -> int:
    raw = query.get("limit")
    try:
        limit = int(raw) if raw else 0
    except ValueError:
        raise ApiError(400, f'invalid value for limit: "{raw}": must be an integer') from None
    return max(limit, 0)


def select(
    store: Store,
    res: Resource,
    ns: str | None,
    query: dict[str, str],
    kept: Callable[[list[tuple[str, str, int]]], set[tuple[str, str]]] | None = None,
) -> Page:
    """The page a list request answers. `kept` (tablecache.Pins, for a Table of cached rows):
    the rows of an unfiltered list are read without the texts it keeps (Store.scan); the page
    is then for its rows only, its texts None where kept."""
    try:
        requirements = selectors.parse_requirements(query.get("labelSelector"))
        fields = selectors.parse_field_selector(query.get("fieldSelector"))
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    filtered = bool(requirements) or bool(query.get("fieldSelector"))

    def wanted(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in requirements) and fields(obj)

    limit, start = _limit(query), _start(query)
    if res.kind == "Event":
        items, rv = store.list(res, ns)
        items = [o for o in items if wanted(o)]
        items.sort(key=lambda e: (e.get("lastTimestamp") or "", e.get("eventTime") or ""))
        items, more = listing.page(items, query, rv)
        return Page(None, items, rv, more)
    if not filtered:
        rows, rv = store.scan(res, ns, start, limit + 1 if limit else None, kept=kept)
        more = {}
        if limit and len(rows) > limit:
            rows = rows[:limit]
            last = (rows[-1][0], rows[-1][1])
            more = {
                "continue": listing.encode_continue(rv, f"{last[0]}/{last[1]}"),
                "remainingItemCount": store.count(res, ns, last),
            }
        return Page([r[2] for r in rows], None, rv, more, rows)
    equal = selectors.field_equalities(query.get("fieldSelector"))
    if res.namespaced and not ns and "metadata.namespace" in equal:
        ns = equal["metadata.namespace"] or None
    if "metadata.name" in equal and (ns or not res.namespaced):
        keys: list[tuple[str, str]] | None = [((ns or "") if res.namespaced else "", equal["metadata.name"])]
    else:
        keys = index_of(store).candidates(res, ns, requirements)
    kept: list[Row] = []
    objs: list[dict[str, Any]] = []
    rv = store.rv
    if keys is not None:
        if start is not None:
            keys = [k for k in keys if k > start]
        for i in range(0, len(keys), BATCH):
            rows = store.fetch(res, keys[i : i + BATCH])
            if _take(rows, wanted, kept, objs, limit):
                break
    else:
        after = start
        while True:
            rows, rv = store.scan(res, ns, after, BATCH)
            if _take(rows, wanted, kept, objs, limit) or len(rows) < BATCH:
                break
            after = (rows[-1][0], rows[-1][1])
    more = {}
    if limit and len(objs) > limit:
        kept, objs = kept[:limit], objs[:limit]
        meta = objs[-1]["metadata"]
        last = f"{meta.get('namespace') or '' if res.namespaced else ''}/{meta.get('name') or ''}"
        more = {"continue": listing.encode_continue(rv, last)}
    return Page([r[2] for r in kept], objs, rv, more, kept)


def _take(rows: list[Row], wanted: Any, kept: list[Row], objs: list[dict[str, Any]], limit: int) -> bool:
    """Keep the rows whose object is wanted; True once one more than `limit` are kept."""
    for row in rows:
        obj = json.loads(row[2])
        if wanted(obj):
            kept.append(row)
            objs.append(obj)
            if limit and len(objs) > limit:
                return True
    return False


_libc: Any = None


def release_memory() -> None:
    """Hand the heap's free pages back to the system (glibc's malloc_trim). A large list leaves
    thousands of freed row strings between live objects, where the heap cannot shrink by
    itself: ~15 MB of resident memory after a list of 10 000 ConfigMaps."""
    global _libc
    try:
        if _libc is None:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
        _libc.malloc_trim(0)
    except (OSError, AttributeError):
        _libc = False  # not glibc: nothing to do
