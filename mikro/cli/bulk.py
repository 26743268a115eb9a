"""Many objects at once: kubectl's client-side apply and delete of a file of hundreds or thousands
of documents, over a few kept-alive connections in parallel.

`apply_documents` keeps the guarantees of the one-at-a-time path it replaced: every document is
tried first (a server-side dry run, one request per object, in parallel), and nothing is written
unless all of them pass; the lines are kubectl's (`configmap/x created|configured|unchanged`) in
the file's order; an error names the file and document in Kubernetes' words. What changed is how
the live objects are read (one list per kind and namespace when a file holds many of them, which
makes an unchanged file cost one request per kind rather than one per object) and that the
requests of independent objects run at the same time.

The order of the writes is kept where it matters: Namespaces, CustomResourceDefinitions and the
kinds whose admission looks at others (ServiceAccounts, LimitRanges, ResourceQuotas,
PriorityClasses, StorageClasses, ...) are written alone, after everything before them in the file
and before everything after them; the objects between two of those are written in parallel.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from mikro.api import resources
from mikro.api.resources import Resource
from mikro.cli import applyplan
from mikro.cli.client import MAX_IDLE, Client
from mikro.errors import ApiError

if TYPE_CHECKING:
    from mikro.cli import manifest

# Requests in flight at once: the client keeps as many connections alive.
WORKERS = MAX_IDLE
# A kind and namespace with at least this many objects in the files is read with one list
# rather than one GET each (a list of a namespace that holds far more objects than the file
# would cost more than the GETs it saves).
LIST_MIN = 16
# Kinds written one at a time, in the file's order: others' admission depends on them.
ORDERED_KINDS = frozenset(
    {
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "LimitRange",
        "ResourceQuota",
        "PriorityClass",
        "StorageClass",
        "RuntimeClass",
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }
)
FIELD_MANAGER = "kubectl-client-side-apply"

T = TypeVar("T")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


@dataclass
class Item:
    """One document on its way: where it goes, what is sent, what is live, what is done."""

    doc: manifest.Document
    res: Resource
    ns: str | None  # None for a cluster-scoped kind
    name: str | None  # None with generateName
    sent: dict[str, Any]  # the manifest with its last-applied annotation, without status
    current: dict[str, Any] | None = None
    patch: Any = None
    extra: dict[str, str] = field(default_factory=dict)  # query parameters of the create
    dry_run: bool = True

    @property
    def key(self) -> tuple[str, str | None, str | None]:
        return (self.res.kind, self.ns, self.name)


def prepare(doc: manifest.Document, namespace: str) -> Item:
    res = resources.kind_of(doc.obj["kind"])
    assert res is not None  # manifest.load checked every kind
    config = {**doc.obj, "metadata": dict(doc.obj["metadata"])}  # shares the rest: not changed
    ns = (config["metadata"].get("namespace") or namespace) if res.namespaced else None
    if res.namespaced:
        config["metadata"]["namespace"] = ns
    sent = applyplan.annotated(config)
    sent.pop("status", None)
    return Item(doc, res, ns, config["metadata"].get("name"), sent)


def list_groups(items: list[Item], listing: bool | None) -> tuple[list[list[Item]], list[Item]]:
    """Which live objects to read by one list per kind and namespace, and which by a GET each.
    `listing` forces one way (True: every group listed, False: every object got); None picks
    by size (LIST_MIN)."""
    groups: dict[tuple[str, str | None], list[Item]] = {}
    for item in items:
        if item.name:
            groups.setdefault((item.res.kind, item.ns), []).append(item)
    listed, got = [], []
    for group in groups.values():
        if listing is True or (listing is None and len(group) >= LIST_MIN):
            listed.append(group)
        else:
            got.extend(group)
    return listed, got


def plan(items: list[Item]) -> None:
    """Pure, in the files' order: what each item needs (create or patch, and the create's
    parameters), given what was read. An object of a Namespace this apply creates is tried as
    if the Namespace existed (and is new whatever a read found), and one of a
    CustomResourceDefinition this apply creates is not tried by the server at all (its schema
    was checked when the manifest was read: the server cannot try it before the CRD exists)."""
    new_namespaces: set[str | None] = set()
    new_crds: set[str | None] = set()
    for item in items:
        if item.res.namespaced and item.ns in new_namespaces:
            item.current = None
            item.extra = {"mikroAssumeNamespace": "true"}
        if item.current is None:
            item.patch = None
            item.dry_run = item.res.custom is None or item.res.custom.crd_name not in new_crds
            if item.res.kind == "Namespace":
                new_namespaces.add(item.name)
            if item.res.kind == "CustomResourceDefinition":
                new_crds.add(item.name)
        else:
            annotation = (item.current["metadata"].get("annotations") or {}).get(applyplan.LAST_APPLIED)
            last = json.loads(annotation or "{}")
            item.patch = applyplan.three_way(last, item.sent, item.current)
            item.dry_run = bool(item.patch)


class Runner:
    """A small pool of threads, each request on a kept-alive connection of the one client."""

    def __init__(self, client: Client, workers: int = WORKERS) -> None:
        self.client = client
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mikro-bulk")

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        # Ctrl-C or an error: what has not started does not start.
        self.pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.pool.submit(fn, *args)


def _read(item_or_group: Any, client: Client) -> None:
    if isinstance(item_or_group, Item):
        item = item_or_group
        try:
            item.current = client.get(item.res, item.ns, item.name or "")
        except ApiError as e:
            if e.code != 404:
                raise
            item.current = None
        return
    group: list[Item] = item_or_group
    res, ns = group[0].res, group[0].ns
    try:
        listing = client.list(res, ns)
    except ApiError as e:
        if e.code != 404:
            raise
        listing = {"items": []}
    kind = str(listing.get("kind") or "").removesuffix("List") or res.kind
    api_version = listing.get("apiVersion") or res.api_version
    live = {}
    for obj in listing.get("items") or []:
        # Kubernetes leaves an item's apiVersion and kind to its list; a GET has them.
        obj.setdefault("apiVersion", api_version)
        obj.setdefault("kind", kind)
        live[obj["metadata"]["name"]] = obj
    for item in group:
        item.current = live.get(item.name or "")


def look_up(runner: Runner, items: list[Item], listing: bool | None = None) -> None:
    listed, got = list_groups(items, listing)
    futures = [runner.submit(_read, group, runner.client) for group in listed]
    futures += [runner.submit(_read, item, runner.client) for item in got]
    for f in futures:
        f.result()


def _try(item: Item, client: Client, params: dict[str, str]) -> None:
    scratch: list[str] = []  # a dry run's warnings are not shown: the write's are
    if item.current is None:
        client.request(
            "POST", item.res.base_path(item.ns), item.sent, query={"dryRun": "All", **params, **item.extra},
            warnings=scratch,
        )
    else:
        client.request(
            "PATCH", f"{item.res.base_path(item.ns)}/{item.name}", item.patch,
            content_type="application/merge-patch+json", query={"dryRun": "All", **params}, warnings=scratch,
        )


def dry_run(runner: Runner, items: list[Item], params: dict[str, str]) -> None:
    """Every change tried by the server; the first refusal in the files' order is raised,
    worded as kubectl's (`error when creating "file": ...`)."""
    tried = [(item, runner.submit(_try, item, runner.client, params)) for item in items if item.dry_run]
    for item, future in tried:
        try:
            future.result()
        except ApiError as e:
            verb = "creating" if item.current is None else "patching"
            raise ApiError(e.code, f'error when {verb} "{item.doc.source}": {e.message}', e.reason, e.details) from None


def _write(item: Item, client: Client, params: dict[str, str]) -> tuple[dict[str, Any], str, list[str]]:
    warnings: list[str] = []
    if item.current is None:
        obj = client.request("POST", item.res.base_path(item.ns), item.sent, query=params, warnings=warnings)
        return obj, "created", warnings
    if not item.patch:
        return item.current, "unchanged", warnings
    obj = client.request(
        "PATCH", f"{item.res.base_path(item.ns)}/{item.name}", item.patch,
        content_type="application/merge-patch+json", query=params, warnings=warnings,
    )
    same = obj["metadata"]["resourceVersion"] == item.current["metadata"]["resourceVersion"]
    return obj, "unchanged" if same else "configured", warnings


def segments(items: list[Item]) -> list[list[Item]]:
    """Runs of items written in parallel: an item of ORDERED_KINDS is a run of its own."""
    runs: list[list[Item]] = []
    current: list[Item] = []
    for item in items:
        if item.res.kind in ORDERED_KINDS:
            if current:
                runs.append(current)
            runs.append([item])
            current = []
        else:
            current.append(item)
    if current:
        runs.append(current)
    return runs


def write(runner: Runner, items: list[Item], params: dict[str, str]) -> list[dict[str, Any]]:
    """Create or patch every item, printing kubectl's line for each in the files' order. On a
    failure nothing more is started; what was written is still printed, then the error raised."""
    results: list[dict[str, Any]] = []
    failure: BaseException | None = None
    for run in segments(items):
        futures = [(item, runner.submit(_write, item, runner.client, params)) for item in run]
        for item, future in futures:
            if future.cancelled():
                continue
            try:
                obj, verb, warnings = future.result()
            except ApiError as e:
                failure = failure or e
                for _, later in futures:
                    later.cancel()
                continue
            for warning in warnings:
                _err(f"Warning: {warning}")
            _out(f"{item.res.qualified}/{obj['metadata']['name']} {verb}")
            results.append(obj)
        if failure is not None:
            raise failure
    return results


def apply_documents(
    client: Client,
    documents: list[manifest.Document],
    namespace: str,
    validate: str = "strict",
    listing: bool | None = None,
) -> list[dict[str, Any]]:
    """kubectl's client-side apply of every document: read what is live, try every change,
    then write; return the objects as written (or as live, when unchanged). `listing` as in
    `list_groups`."""
    # kubectl's manager name: mikro apply is kubectl's client-side apply, and the two share
    # ownership of what they apply (server-side apply conflicts name this manager).
    params = {"fieldValidation": applyplan.field_validation(validate), "fieldManager": FIELD_MANAGER}
    # CRDs first, so that the objects of a kind the same apply defines can be created.
    ordered = sorted(documents, key=lambda d: d.obj["kind"] != "CustomResourceDefinition")
    items = [prepare(doc, namespace) for doc in ordered]
    with Runner(client) as runner:
        look_up(runner, items, listing)
        plan(items)
        dry_run(runner, items, params)
        return write(runner, items, params)


# -- delete --------------------------------------------------------------------------------

Target = tuple[Resource, str | None, str]  # kind, namespace (None: cluster-scoped), name


def _deleted_line(res: Resource, name: str) -> str:
    return f'{res.singular} "{name}" deleted' if res.group == "" else f'{res.qualified} "{name}" deleted'


def delete(
    client: Client,
    targets: Iterable[Target],
    cascade: str,
    ignore_missing: bool,
    grace: int | None,
) -> tuple[int, list[Target]]:
    """Delete by name, in parallel, printing kubectl's lines in the order given; returns the exit
    code (1 when any failed) and what was deleted."""
    propagation = {"orphan": "Orphan", "foreground": "Foreground", "background": "Background"}.get(cascade)
    code = 0
    deleted: list[Target] = []
    with Runner(client) as runner:
        futures = []
        for res, ns, name in targets:
            scope = ns if res.namespaced else None
            futures.append(((res, scope, name), runner.submit(client.delete, res, scope, name, propagation, grace)))
        for (res, scope, name), future in futures:
            try:
                future.result()
            except ApiError as e:
                if e.code == 404 and ignore_missing:
                    continue
                _err(f"Error from server (NotFound): {e.message}" if e.code == 404 else f"error: {e.message}")
                code = 1
                continue
            _out(_deleted_line(res, name))
            deleted.append((res, scope, name))
    return code, deleted


def wait_gone(client: Client, targets: list[Target], timeout: float, interval: float = 0.1) -> None:
    """Return once none of `targets` exists any more, or after `timeout` seconds: a kind and
    namespace holding LIST_MIN of them or more is polled by one list, the others by GETs."""
    deadline = time.monotonic() + timeout
    groups: dict[tuple[str, str | None], list[Target]] = {}
    for target in targets:
        groups.setdefault((target[0].kind, target[1]), []).append(target)

    def still_there(group: list[Target]) -> list[Target]:
        res, ns = group[0][0], group[0][1]
        if len(group) >= LIST_MIN:
            try:
                names = {o["metadata"]["name"] for o in client.list(res, ns).get("items") or []}
            except ApiError:
                return []
            return [t for t in group if t[2] in names]
        left = []
        for target in group:
            try:
                client.get(res, ns, target[2])
            except ApiError:
                continue
            left.append(target)
        return left

    pending = list(groups.values())
    while pending and time.monotonic() < deadline:
        pending = [left for left in map(still_there, pending) if left]
        if pending:
            time.sleep(interval)
