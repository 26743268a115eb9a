"""Client-side apply as kubectl does it: the last-applied annotation byte for byte as kubectl
writes it, and the three-way patch (last applied, manifest, live object). Pure.
"""

from __future__ import annotations

import copy
import json
from typing import Any

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
VALIDATE_CHOICES = ("strict", "warn", "ignore", "true", "false")


def field_validation(validate: str) -> str:
    """kubectl's --validate values to the server's fieldValidation directive."""
    return {"strict": "Strict", "true": "Strict", "warn": "Warn", "ignore": "Ignore", "false": "Ignore"}[validate]


def go_json(obj: Any) -> str:
    """JSON as Go's encoding/json writes a map: keys sorted, compact, HTML characters and the
    two JavaScript line separators escaped, other non-ASCII text as UTF-8."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028")):
        text = text.replace(char, escaped)
    return text.replace("\u2029", "\\u2029")


def _with_annotations(obj: dict[str, Any], annotations: dict[str, Any]) -> dict[str, Any]:
    """`obj` with other annotations: new top and metadata maps, the rest shared (no deep copy:
    a file of 1000 objects spent 0.6 s copying them)."""
    out = dict(obj)
    out["metadata"] = {**(obj.get("metadata") or {}), "annotations": annotations}
    return out


def last_applied(obj: dict[str, Any]) -> str:
    """The annotation kubectl stores: the object as read from the file (namespace filled in),
    without the annotation itself, which leaves `annotations: {}` when it was the only one."""
    annotations = dict((obj.get("metadata") or {}).get("annotations") or {})
    annotations.pop(LAST_APPLIED, None)
    return go_json(_with_annotations(obj, annotations)) + "\n"


def annotated(obj: dict[str, Any]) -> dict[str, Any]:
    """The object to send: the manifest with its last-applied annotation. It shares its
    values with `obj` below metadata: neither may be changed in place afterwards."""
    annotations = dict((obj.get("metadata") or {}).get("annotations") or {})
    annotations[LAST_APPLIED] = last_applied(obj)
    return _with_annotations(obj, annotations)


def _covers(current: Any, desired: Any) -> bool:
    """Whether the live value already holds everything `desired` says (fields the server
    added, defaults, are not a difference)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(k in current and _covers(current[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (
            isinstance(current, list)
            and len(current) == len(desired)
            and all(_covers(c, d) for c, d in zip(current, desired, strict=True))
        )
    return current == desired


def three_way(last: Any, desired: Any, current: Any) -> dict[str, Any]:
    """The JSON merge patch that makes `current` hold `desired`, deleting what `last` (the
    previous apply) set and `desired` no longer does, and nothing else."""
    patch: dict[str, Any] = {}
    last = last if isinstance(last, dict) else {}
    current = current if isinstance(current, dict) else {}
    for key in last:
        if key not in desired and key in current:
            patch[key] = None
    for key, value in desired.items():
        if key not in current:
            patch[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(current[key], dict):
            sub = three_way(last.get(key), value, current[key])
            if sub:
                patch[key] = sub
        elif not _covers(current[key], value):
            patch[key] = copy.deepcopy(value)
    return patch
