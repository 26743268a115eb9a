"""What a list answers beyond its items: paging (`limit`, `continue`) and which object each
Table row carries (`includeObject`). Pure.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from mikro.errors import ApiError

INCLUDE_OBJECT = ("None", "Metadata", "Object")


def _key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"


def encode_continue(resource_version: int | str, last_key: str) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": int(resource_version), "start": last_key + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()


def decode_continue(token: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)))
        start = data["start"]
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(start, str):
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ApiError(
            400, "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
    return start.removesuffix("\x00")


def page(
    items: list[dict[str, Any]], query: dict[str, str], resource_version: int | str
) -> tuple[list[Any], dict[str, Any]]:
    """The page `limit` and `continue` ask for, in key order, and the list metadata to add
    (`continue`, `remainingItemCount`) when more remain."""
    raw_limit = query.get("limit")
    token = query.get("continue")
    if not raw_limit and not token:
        return items, {}
    ordered = sorted(items, key=_key)
    if token:
        start = decode_continue(token)
        ordered = [o for o in ordered if _key(o) > start]
    try:
        limit = int(raw_limit) if raw_limit else 0
    except ValueError:
        raise ApiError(400, f'invalid value for limit: "{raw_limit}": must be an integer') from None
    if limit <= 0 or len(ordered) <= limit:
        return ordered, {}
    shown = ordered[:limit]
    return shown, {
        "continue": encode_continue(resource_version, _key(shown[-1])),
        "remainingItemCount": len(ordered) - limit,
    }


def include_object(table: dict[str, Any], items: list[dict[str, Any]], mode: str | None) -> dict[str, Any]:
    """Each row's object as `includeObject` asks: Metadata (the default), the full Object
    (what `kubectl get --sort-by` needs), or None."""
    mode = mode or "Metadata"
    if mode not in INCLUDE_OBJECT:
        raise ApiError(
            400, f'includeObject: Unsupported value: "{mode}": supported values: "None", "Metadata", "Object"'
        )
    for row, obj in zip(table.get("rows") or [], items, strict=False):
        if mode == "Object":
            row["object"] = obj
        elif mode == "None":
            row.pop("object", None)
    return table
