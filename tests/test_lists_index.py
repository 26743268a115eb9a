"""Lists read through SQL paging and the label index answer what a full scan answers: every
selector form, paging, and across creates, label changes, deletes and a restart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mikro.api import lists, selectors
from mikro.api.index import index_of
from mikro.api.listing import decode_continue
from mikro.api.resources import BY_KIND
from mikro.api.store import Store
from mikro.errors import ApiError

CM = BY_KIND["ConfigMap"]
NS = BY_KIND["Namespace"]

SELECTORS = [
    "tier=front",
    "tier==front",
    "tier!=front",
    "tier in (front,back)",
    "tier notin (front)",
    "tier",
    "!tier",
    "tier=front,zone",
    "tier=front,zone!=b",
    "tier in (front,back),!zone",
    "zone in (a),tier notin (back)",
    "app.kubernetes.io/name=web",
    "tier=nothing",
    "tier in ()",
    "missing",
]
FIELDS = [
    "",
    "metadata.name=cm-3",
    "metadata.name=cm-4",
    "metadata.namespace=ns-1",
    "metadata.namespace=ns-2,metadata.name==cm-5",
    "metadata.name!=cm-4",
    "data.k=v2",
]


def fill(store: Store) -> None:
    tiers = ["front", "back", "db", None]
    zones = ["a", "b", None]
    for i in range(36):
        labels: dict[str, str] = {}
        if tiers[i % 4]:
            labels["tier"] = tiers[i % 4]
        if zones[i % 3]:
            labels["zone"] = zones[i % 3]
        if i % 5 == 0:
            labels["app.kubernetes.io/name"] = "web"
        meta = {"name": f"cm-{i}", "namespace": f"ns-{i % 3}", "labels": labels}
        store.create(CM, {"metadata": meta, "data": {"k": f"v{i % 4}"}})
    for i in range(4):  # a cluster-scoped kind too
        store.create(NS, {"metadata": {"name": f"space-{i}", "labels": {"tier": ["front", "back"][i % 2]}}})


def reference(store: Store, res: Any, ns: str | None, label: str, field: str) -> list[tuple[str, str]]:
    """The answer of a full scan, checked object by object."""
    labels = selectors.parse_label_selector(label)
    fields = selectors.parse_field_selector(field)
    items, _ = store.list(res, ns)
    return [key(o) for o in items if labels(o["metadata"].get("labels") or {}) and fields(o)]


def key(obj: dict[str, Any]) -> tuple[str, str]:
    return obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def answer(store: Store, res: Any, ns: str | None, query: dict[str, str]) -> list[tuple[str, str]]:
    page = lists.select(store, res, ns, query)
    texts = [json.loads(t) for t in page.json_texts()]
    assert [key(o) for o in texts] == [key(o) for o in page.objects()]
    return [key(o) for o in page.objects()]


def all_pages(store: Store, res: Any, ns: str | None, query: dict[str, str], limit: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    token = None
    for _ in range(100):
        q = {**query, "limit": str(limit), **({"continue": token} if token else {})}
        page = lists.select(store, res, ns, q)
        got = [key(o) for o in page.objects()]
        assert len(got) <= limit
        out += got
        token = page.more.get("continue")
        if not token:
            return out
        assert decode_continue(token)
    raise AssertionError("paging did not end")


@pytest.fixture()
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "db")
    fill(s)
    return s


@pytest.mark.parametrize("label", SELECTORS)
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("ns", [None, "ns-1"])
def test_a_selected_list_is_the_full_scans_answer(store: Store, label: str, field: str, ns: str | None) -> None:
    query = {"labelSelector": label, **({"fieldSelector": field} if field else {})}
    want = reference(store, CM, ns, label, field)
    assert answer(store, CM, ns, query) == want
    assert all_pages(store, CM, ns, query, 4) == want


@pytest.mark.parametrize("label", ["tier=front", "tier!=front", "!tier", "tier", ""])
@pytest.mark.parametrize("field", ["", "metadata.name=space-1", "metadata.name=nothing"])
def test_cluster_scoped_kinds_too(store: Store, label: str, field: str) -> None:
    query = {"labelSelector": label, "fieldSelector": field}
    want = reference(store, NS, None, label, field)
    assert answer(store, NS, None, query) == want
    assert all_pages(store, NS, None, query, 1) == want


def test_positive_terms_go_through_the_index(store: Store) -> None:
    index = index_of(store)
    reqs = selectors.parse_requirements("tier=front,zone!=b")
    keys = index.candidates(CM, None, reqs)
    assert keys == reference(store, CM, None, "tier=front,zone!=b", "")
    assert index.candidates(CM, None, selectors.parse_requirements("tier!=front")) is None  # scanned instead


def test_unselected_paging_counts_what_remains(store: Store) -> None:
    page = lists.select(store, CM, None, {"limit": "10"})
    assert len(page.json_texts()) == 10 and page.more["remainingItemCount"] == 26
    assert all_pages(store, CM, None, {}, 7) == reference(store, CM, None, "", "")
    assert lists.select(store, CM, None, {"labelSelector": "tier", "limit": "2"}).more.keys() == {"continue"}


def test_the_index_follows_creates_label_changes_and_deletes(store: Store, tmp_path: Path) -> None:
    def check() -> None:
        for label in SELECTORS:
            assert answer(store, CM, None, {"labelSelector": label}) == reference(store, CM, None, label, "")

    check()  # builds the index
    obj = store.get(CM, "ns-0", "cm-0")
    obj["metadata"]["labels"] = {"tier": "db", "zone": "b"}
    store.update(CM, obj)
    obj = store.get(CM, "ns-1", "cm-1")
    obj["metadata"].pop("labels")
    store.update(CM, obj)
    store.delete(CM, "ns-2", "cm-2")
    store.create(CM, {"metadata": {"name": "late", "namespace": "ns-0", "labels": {"tier": "front"}}})
    store.create(CM, {"metadata": {"name": "doomed", "namespace": "ns-0", "labels": {"tier": "front"}}})
    store.delete(CM, "ns-0", "doomed")
    check()
    assert ("ns-0", "late") in answer(store, CM, None, {"labelSelector": "tier=front"})
    assert ("ns-0", "cm-0") not in answer(store, CM, None, {"labelSelector": "tier=front"})
    store.close()
    again = Store(tmp_path / "db")  # a restart: the index is built again from the rows
    for label in SELECTORS:
        assert answer(again, CM, None, {"labelSelector": label}) == reference(again, CM, None, label, "")


def test_a_lagging_index_is_not_trusted(store: Store) -> None:
    index = index_of(store)
    assert index.candidates(CM, None, selectors.parse_requirements("tier=front")) is not None
    index.applied -= 1  # as if a commit's change had not reached the index yet
    assert index.candidates(CM, None, selectors.parse_requirements("tier=front")) is None
    assert answer(store, CM, None, {"labelSelector": "tier=front"}) == reference(store, CM, None, "tier=front", "")


def test_events_keep_their_order_by_time(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    ev = BY_KIND["Event"]
    for i, stamp in enumerate(["2024-01-03T00:00:00Z", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"]):
        store.create(ev, {"metadata": {"name": f"e{i}", "namespace": "default"}, "lastTimestamp": stamp})
    assert [k[1] for k in answer(store, ev, None, {})] == ["e1", "e2", "e0"]


def test_bad_selectors_are_a_400(store: Store) -> None:
    for query in ({"labelSelector": "a b c"}, {"fieldSelector": "nonsense"}, {"limit": "x"}, {"continue": "%%"}):
        with pytest.raises(ApiError) as err:
            lists.select(store, CM, None, query)
        assert err.value.code == 400


def test_building_an_index_does_not_wait_for_a_commit_under_the_stores_lock(store: Store) -> None:
    """A group commit's leader takes the store's lock to publish: a wait for it with that lock
    held never ends (`apply --wait`'s first label-selected list of pods hung so)."""
    waits_under_lock: list[int] = []
    real_wait = store.sync.wait

    def wait(rv: int, commit: Any, publish: Any) -> None:
        if store.lock._is_owned():  # type: ignore[attr-defined]
            waits_under_lock.append(rv)
            return
        real_wait(rv, commit, publish)

    store.sync.wait = wait  # type: ignore[method-assign]
    store.sync.durable = 0  # as between a leader's publish and its note of what is durable
    try:
        keys = index_of(store).candidates(CM, None, selectors.parse_requirements("tier=front"))
    finally:
        store.sync.durable = store.rv
    assert waits_under_lock == []
    assert keys == reference(store, CM, None, "tier=front", "")
