"""Server-side apply: PATCH with `application/apply-patch+yaml` (or +json).

The applied configuration is merged into the live object by upstream's schema (keyed lists by
their keys, sets by value, atomic values whole); the manager owns exactly what it applied;
fields it applied before and no longer applies are removed unless someone else owns them; a
field another manager owns with a different value is a conflict (409) unless `force`. The
object is created when absent. Pure apart from the registry calls at the end.
"""

from __future__ import annotations

import copy
import json
from typing import TYPE_CHECKING, Any

from mikro.api import fieldvalidation, managedfields, openapi
from mikro.api.managedfields import FieldSet, Path
from mikro.api.resources import Resource
from mikro.errors import ApiError

if TYPE_CHECKING:
    from mikro.api.registry import Registry

MAX_MANAGER = 128


def check_manager(manager: str | None) -> str:
    if not manager:
        raise ApiError(
            422,
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
            "Invalid",
        )
    if len(manager) > MAX_MANAGER:
        raise ApiError(
            422,
            f'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Too long: may not be more than {MAX_MANAGER} bytes',
            "Invalid",
        )
    return manager


def merge(live: Any, applied: Any, schema: dict[str, Any] | None) -> Any:
    """`applied` laid over `live` the way structured merge does."""
    at, resolved = managedfields._schema(schema)
    if isinstance(applied, dict) and isinstance(live, dict) and managedfields._is_mapping(resolved):
        if managedfields._atomic(at, resolved):
            return copy.deepcopy(applied)
        out = dict(live)
        for key, value in applied.items():
            out[key] = merge(live.get(key), value, managedfields._child(resolved, key))
        return out
    if isinstance(applied, list) and isinstance(live, list):
        list_type = at.get("x-kubernetes-list-type")
        keys = at.get("x-kubernetes-list-map-keys")
        if list_type == "map" and keys:
            out_list = [copy.deepcopy(i) for i in live]
            for item in applied:
                key = managedfields.item_key(item, keys)
                index = next((i for i, cur in enumerate(out_list) if managedfields.item_key(cur, keys) == key), None)
                if index is None:
                    out_list.append(copy.deepcopy(item))
                else:
                    out_list[index] = merge(out_list[index], item, at.get("items"))
            return out_list
        if list_type == "set":
            return [copy.deepcopy(i) for i in live] + [copy.deepcopy(i) for i in applied if i not in live]
    return copy.deepcopy(applied)


def conflict_error(conflicts: list[tuple[str, Path]]) -> ApiError:
    causes = [
        {"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": managedfields.path_string(p)}
        for who, p in conflicts
    ]
    if len(conflicts) == 1:
        who, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {who}: {managedfields.path_string(path)}"
    else:
        lines = []
        for who in sorted({w for w, _ in conflicts}):
            lines.append(f"conflicts with {who}:")
            lines.extend(f"- {managedfields.path_string(p)}" for w, p in conflicts if w == who)
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, message, "Conflict", details={"causes": causes})


def describe_manager(entry: dict[str, Any]) -> str:
    name = json.dumps(entry.get("manager", ""))
    if entry.get("operation") == "Update":
        return f"{name} using {entry.get('apiVersion', '')}"
    return name


def plan(live: dict[str, Any] | None, applied: dict[str, Any], kind: str, manager: str, force: bool) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: absent), managedFields set."""
    schema = openapi.schema_of(kind)
    mine = managedfields.kind_fieldset(applied, kind)
    if live is None:
        result = copy.deepcopy(applied)
        result.setdefault("metadata", {})["managedFields"] = [
            managedfields.entry(manager, "Apply", applied.get("apiVersion", ""), mine)
        ]
        return result
    previous: FieldSet = set()
    others: list[tuple[dict[str, Any], FieldSet]] = []
    for entry, paths in managedfields.owned(live):
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            previous = paths
        else:
            others.append((entry, paths))
    conflicts: list[tuple[str, Path]] = []
    for entry, paths in others:
        for path in sorted(paths & mine):
            if path and path[-1].startswith(("k:", "v:")):
                continue  # an item both keep; its fields decide
            if managedfields.get(live, path) != managedfields.get(applied, path):
                conflicts.append((describe_manager(entry), path))
    if conflicts and not force:
        raise conflict_error(conflicts)
    result = merge(live, applied, schema)
    owned_by_others: FieldSet = set().union(*(p for _, p in others)) if others else set()
    for path in sorted(previous - mine, key=len):
        if path not in owned_by_others:
            managedfields.remove(result, path)
            # a map or list emptied by the removal goes too, unless applied empty on purpose
            parent = path[:-1]
            while len(parent) > 1 and managedfields.get(result, parent) in ({}, []) and parent not in mine:
                managedfields.remove(result, parent)
                parent = parent[:-1]
    taken = {p for _, p in conflicts}
    result["metadata"]["managedFields"] = copy.deepcopy(managedfields.entries(live))
    managedfields.record(result, manager, "Apply", applied.get("apiVersion", ""), mine, taken)
    return result


def server_side_apply(
    registry: Registry,
    res: Resource,
    ns: str,
    name: str,
    body: Any,
    manager: str | None,
    force: bool,
    validation: str,
    dry_run: bool,
) -> tuple[int, dict[str, Any]]:
    """(HTTP code, object): 201 when the apply created it."""
    manager = check_manager(manager)
    if not isinstance(body, dict):
        raise ApiError(400, "the apply patch must be an object")
    if body.get("apiVersion") != res.api_version or body.get("kind") != res.kind:
        raise ApiError(
            400,
            f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version "
            f"({res.api_version})"
            if body.get("apiVersion") != res.api_version
            else f"the kind in the data ({body.get('kind')}) does not match the expected kind ({res.kind})",
        )
    applied, unknown = fieldvalidation.unknown_fields(copy.deepcopy(body), res.kind)
    if unknown and validation == "Strict":
        where = f"{ns}/{name}" if ns else name
        raise ApiError(
            400,
            f"failed to create typed patch object ({where}; {res.api_version}, Kind={res.kind}): "
            + ", ".join(f".{f}: field not declared in schema" for f in unknown),
        )
    for f in unknown if validation == "Warn" else []:
        fieldvalidation.warn(f'unknown field "{f}"')
    meta = applied.setdefault("metadata", {})
    if meta.get("name") not in (None, name):
        raise ApiError(400, "the name of the object does not match the name on the URL")
    meta["name"] = name
    if res.namespaced:
        meta["namespace"] = ns
    live = registry.store.find(res, ns, name)
    result = plan(copy.deepcopy(live) if live else None, applied, res.kind, manager, force)
    if live is None:
        return 201, registry.create(res, ns, result, dry_run=dry_run)
    result["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion")
    return 200, registry.update(res, ns, name, result, dry_run=dry_run)
