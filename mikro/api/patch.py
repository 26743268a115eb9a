"""PATCH bodies: JSON merge patch (RFC 7386), Kubernetes strategic merge patch, JSON patch
(RFC 6902). Pure."""

from __future__ import annotations

import copy
from typing import Any

# Lists that strategic merge patch merges element-wise, by this key, as kubectl expects.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "tolerations": "key",
}
# Lists of scalars whose patch strategy is merge (a union), not replace.
MERGED_PRIMITIVE_LISTS = {"finalizers"}


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _port_key(items: list[Any]) -> str:
    """`ports` merges by containerPort in a container, by port in a Service."""
    for item in items:
        if isinstance(item, dict) and "containerPort" in item:
            return "containerPort"
    return "port"


def _merge_list(key: str, target: list[Any], patch: list[Any]) -> list[Any]:
    merge_key = MERGE_KEYS.get(key) or (_port_key(patch + target) if key == "ports" else None)
    if merge_key is None or not all(isinstance(p, dict) for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if p.get("$patch") != "replace"]
    result = [copy.deepcopy(t) for t in target]
    for item in patch:
        index = next(
            (i for i, t in enumerate(result) if isinstance(t, dict) and t.get(merge_key) == item.get(merge_key)), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
            continue
        if index is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[index] = strategic_merge_patch(result[index], item)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Kubernetes' strategic merge, with the directives kubectl sends: `$patch` (merge,
    replace, delete), `$retainKeys`, `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    if isinstance(patch.get("$retainKeys"), list):
        # The fields not listed are cleared first (a union type such as a Deployment's strategy).
        keep = set(patch["$retainKeys"])
        result = {k: v for k, v in result.items() if k in keep}
    order: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            order[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [item for item in result[name] if item not in value]
            continue
        if key.startswith("$"):
            continue
        if value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            result.pop(key, None)
        elif key in MERGED_PRIMITIVE_LISTS and isinstance(value, list):
            current = result.get(key) if isinstance(result.get(key), list) else []
            result[key] = current + [v for v in value if v not in current]
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, [], value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    for key, wanted in order.items():
        merge_key = MERGE_KEYS.get(key) or ("containerPort" if key == "ports" else None)
        items = result.get(key)
        if not merge_key or not isinstance(items, list):
            continue
        rank = {w.get(merge_key): i for i, w in enumerate(wanted) if isinstance(w, dict)}
        items.sort(key=lambda it: rank.get(it.get(merge_key) if isinstance(it, dict) else None, len(rank)))
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _resolve(doc: Any, path: str) -> tuple[Any, str]:
    """The container holding a JSON pointer's last element, and that element's key."""
    parts = _pointer(path)
    if not parts:
        raise ValueError("JSON patch on the whole document is not supported")
    parent: Any = doc
    try:
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    except (KeyError, IndexError, ValueError, TypeError):
        raise ValueError(f"path {path} does not exist") from None
    if not isinstance(parent, dict | list):
        raise ValueError(f"path {path} does not exist")
    return parent, parts[-1]


def _value_at(doc: Any, path: str) -> Any:
    parent, last = _resolve(doc, path)
    try:
        return copy.deepcopy(parent[int(last)] if isinstance(parent, list) else parent[last])
    except (KeyError, IndexError, ValueError):
        raise ValueError(f"path {path} does not exist") from None


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, remove, replace, move, copy and test (a failed test fails the patch)."""
    doc = copy.deepcopy(target)
    for op in operations:
        kind = op.get("op")
        if kind in ("move", "copy"):
            value = _value_at(doc, op.get("from", ""))
            if kind == "move":
                _apply(doc, {"op": "remove", "path": op.get("from", "")})
            _apply(doc, {"op": "add", "path": op.get("path", ""), "value": value})
        else:
            _apply(doc, op)
    return doc


def _apply(doc: Any, op: dict[str, Any]) -> None:
    parent, last = _resolve(doc, op.get("path", ""))
    kind = op.get("op")
    try:
        if kind in ("add", "replace"):
            if "value" not in op:
                raise ValueError(f"{kind} operation at {op.get('path')} has no value")
            if isinstance(parent, list):
                if last == "-" and kind == "add":
                    parent.append(op["value"])
                elif kind == "add":
                    if not 0 <= int(last) <= len(parent):
                        raise IndexError(last)
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise ValueError(f"path {op['path']} does not exist")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                del parent[last]
        elif kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent[last]
            if current != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        else:
            raise ValueError(f"unsupported JSON patch operation {kind!r}")
    except (KeyError, IndexError):
        raise ValueError(f"path {op.get('path')} does not exist") from None
    except TypeError as exc:
        raise ValueError(f"invalid JSON patch operation at {op.get('path')}: {exc}") from None
