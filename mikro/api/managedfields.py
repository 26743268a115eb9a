"""Field ownership (`metadata.managedFields`), as kube-apiserver keeps it. Pure.

A field set is a set of paths; a path is a tuple of Kubernetes' fieldsV1 tokens: `f:<name>` for
a struct field or map key, `k:{"name":"web"}` for an item of a list keyed by its merge keys,
`v:<json>` for a member of a set-like list. A list item's own path is in the set when the item
is (the `.` of fieldsV1). Which lists are keyed and which maps are atomic comes from upstream's
schema (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from mikro.api import openapi

Path = tuple[str, ...]
FieldSet = set[Path]

# Key fields upstream defaults before keying a list item.
KEY_DEFAULTS = {"protocol": "TCP"}


def go_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _schema(schema: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the schema as written at the field, its resolved definition)."""
    schema = schema or {}
    return schema, openapi.resolve(schema)


def _atomic(at: dict[str, Any], resolved: dict[str, Any]) -> bool:
    return "atomic" in (at.get("x-kubernetes-map-type"), resolved.get("x-kubernetes-map-type"))


def _child(resolved: dict[str, Any], key: str) -> dict[str, Any] | None:
    props = resolved.get("properties")
    if props is not None:
        return props.get(key)
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _is_mapping(resolved: dict[str, Any]) -> bool:
    return "properties" in resolved or isinstance(resolved.get("additionalProperties"), dict)


def item_key(item: Any, keys: list[str]) -> str:
    values = {}
    for key in keys:
        if isinstance(item, dict) and key in item:
            values[key] = item[key]
        elif key in KEY_DEFAULTS:
            values[key] = KEY_DEFAULTS[key]
    return "k:" + go_json(values)


def fieldset(value: Any, schema: dict[str, Any] | None, prefix: Path = ()) -> FieldSet:
    """The leaves of `value` (and its keyed list items) as paths."""
    at, resolved = _schema(schema)
    if isinstance(value, dict) and _is_mapping(resolved) and not _atomic(at, resolved):
        if not value:
            return {prefix} if prefix else set()
        out: FieldSet = set()
        for key, item in value.items():
            child = _child(resolved, key)
            if child is not None:
                out |= fieldset(item, child, (*prefix, f"f:{key}"))
        return out
    if isinstance(value, list):
        list_type = at.get("x-kubernetes-list-type")
        keys = at.get("x-kubernetes-list-map-keys")
        if list_type == "map" and keys:
            out = set()
            for item in value:
                node = (*prefix, item_key(item, keys))
                out.add(node)
                out |= fieldset(item, at.get("items"), node)
            return out
        if list_type == "set":
            return {(*prefix, "v:" + go_json(item)) for item in value}
    return {prefix} if prefix else set()


def kind_fieldset(obj: dict[str, Any], kind: str) -> FieldSet:
    """An object's field set, without what the server owns (status, identity, managedFields)."""
    body = {k: v for k, v in obj.items() if k not in ("status", "apiVersion", "kind")}
    meta = {
        k: v
        for k, v in (body.get("metadata") or {}).items()
        if k
        not in (
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
            "namespace",
            "selfLink",
            "deletionGracePeriodSeconds",
        )
    }
    if "metadata" in body:
        body["metadata"] = meta
    paths = fieldset(body, openapi.schema_of(kind))
    return {p for p in paths if p not in (("f:metadata", "f:name"), ("f:metadata",))}


# -- fieldsV1 ----------------------------------------------------------------------------------


def encode(paths: FieldSet) -> dict[str, Any]:
    trie: dict[str, Any] = {}
    for path in sorted(paths, key=len):
        node = trie
        for token in path:
            node = node.setdefault(token, {})
    for path in paths:
        node = trie
        for token in path:
            node = node[token]
        if node and "." not in node:
            node["."] = {}
    return _sorted(trie)


def _sorted(node: dict[str, Any]) -> dict[str, Any]:
    return {k: _sorted(node[k]) for k in sorted(node)}


def decode(fields: Any, prefix: Path = ()) -> FieldSet:
    out: FieldSet = set()
    if not isinstance(fields, dict):
        return out
    if not fields and prefix:
        return {prefix}
    for token, sub in fields.items():
        if token == ".":
            out.add(prefix)
        else:
            out |= decode(sub, (*prefix, token))
    return out


def path_string(path: Path) -> str:
    """A path as upstream prints it in a conflict: `.spec.containers[name="web"].image`."""
    out = ""
    for token in path:
        kind, _, rest = token.partition(":")
        if kind == "f":
            out += "." + rest
        elif kind == "k":
            values = json.loads(rest)
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in values.items()) + "]"
        elif kind == "v":
            out += f"[={rest}]"
        else:
            out += f"[{rest}]"
    return out


# -- reading and removing by path ----------------------------------------------------------------

_MISSING = object()


def _step(value: Any, token: str) -> Any:
    kind, _, rest = token.partition(":")
    if kind == "f":
        return value.get(rest, _MISSING) if isinstance(value, dict) else _MISSING
    if kind == "k" and isinstance(value, list):
        wanted = json.loads(rest)
        for item in value:
            if isinstance(item, dict) and all(item.get(k, KEY_DEFAULTS.get(k)) == v for k, v in wanted.items()):
                return item
        return _MISSING
    if kind == "v" and isinstance(value, list):
        member = json.loads(rest)
        return member if member in value else _MISSING
    return _MISSING


def get(obj: Any, path: Path) -> Any:
    value = obj
    for token in path:
        value = _step(value, token)
        if value is _MISSING:
            return _MISSING
    return value


def remove(obj: Any, path: Path) -> None:
    parent = get(obj, path[:-1]) if len(path) > 1 else obj
    if parent is _MISSING or not path:
        return
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        target = _step(parent, path[-1])
        if target is not _MISSING:
            parent.remove(target)


# -- entries ---------------------------------------------------------------------------------


def now() -> str:
    from mikro.api.store import now_rfc3339  # (the store imports nothing of this module's)

    return now_rfc3339()


def entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in (obj.get("metadata") or {}).get("managedFields") or [] if isinstance(e, dict)]


def owned(obj: dict[str, Any]) -> list[tuple[dict[str, Any], FieldSet]]:
    return [(e, decode(e.get("fieldsV1"))) for e in entries(obj)]


def entry(manager: str, operation: str, api_version: str, paths: FieldSet) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": encode(paths),
    }


def record(
    obj: dict[str, Any],
    manager: str,
    operation: str,
    api_version: str,
    mine: FieldSet,
    taken: FieldSet,
    live: FieldSet | None = None,
) -> None:
    """Write `mine` as the entry of (manager, operation); take `taken` away from every other
    manager; drop what no longer exists in the object and empty entries. `live`: the object's
    field set when the caller has it already."""
    if live is None:
        live = kind_fieldset(obj, obj.get("kind", ""))
    kept = []
    for e, paths in owned(obj):
        if e.get("manager") == manager and e.get("operation") == operation:
            continue
        paths = {p for p in paths - taken if p in live or _prefix_of_live(p, live)}
        if paths:
            kept.append({**e, "fieldsV1": encode(paths)})
    mine = {p for p in mine if p in live or _prefix_of_live(p, live)}
    if mine:
        new = entry(manager, operation, api_version, mine)
        for e in entries(obj):
            same = (e.get("manager"), e.get("operation"), e.get("apiVersion")) == (manager, operation, api_version)
            if same and e.get("fieldsV1") == new["fieldsV1"]:
                new["time"] = e.get("time", new["time"])  # nothing changed: no new time, no write
        kept.append(new)
    obj.setdefault("metadata", {})["managedFields"] = kept


def _prefix_of_live(path: Path, live: FieldSet) -> bool:
    n = len(path)
    return any(p[:n] == path for p in live)


def track_update(old: dict[str, Any] | None, new: dict[str, Any], manager: str, kind: str) -> None:
    """An Update (create, replace, patch) by `manager`: it owns the fields it set or changed."""
    meta = new.setdefault("metadata", {})
    if "managedFields" not in meta and old is not None:
        meta["managedFields"] = copy.deepcopy((old.get("metadata") or {}).get("managedFields") or [])
    after = kind_fieldset(new, kind)
    before = kind_fieldset(old, kind) if old is not None else set()
    changed = {p for p in after if p not in before or get(new, p) != get(old, p)}
    previous: FieldSet = set()
    for e, paths in owned(new):
        if e.get("manager") == manager and e.get("operation") == "Update":
            previous = paths
    if not changed and old is not None:
        return
    live = after if kind == new.get("kind", "") else None  # (the field set record() would compute)
    record(new, manager, "Update", new.get("apiVersion", ""), previous | changed, changed, live)
