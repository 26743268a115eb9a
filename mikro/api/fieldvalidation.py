"""Field validation as kube-apiserver decodes a built-in kind: fields the schema does not know
are dropped, and reported as `fieldValidation` asks (Strict: refused, Warn: a `Warning` header,
Ignore: silently). Pure, apart from the per-request warning list the HTTP layer reads.

The schemas are upstream's (mikro.api.openapi). A path reads as upstream writes it:
`spec.ports[0].targetport`.
"""

from __future__ import annotations

import contextvars
import json
from typing import Any

from mikro.api import openapi, resources
from mikro.errors import ApiError

DIRECTIVES = ("Strict", "Warn", "Ignore")
DEFAULT = "Warn"  # kube-apiserver's default when the parameter is absent

_warnings: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("mikro_warnings", default=None)


def directive(query: dict[str, str]) -> str:
    value = query.get("fieldValidation") or DEFAULT
    if value not in DIRECTIVES:
        raise ApiError(
            400, f'fieldValidation: Unsupported value: "{value}": supported values: "Ignore", "Strict", "Warn"'
        )
    return value


def start_request() -> contextvars.Token[list[str] | None]:
    return _warnings.set([])


def warn(message: str) -> None:
    collected = _warnings.get()
    if collected is not None and message not in collected:
        collected.append(message)


def warnings() -> list[str]:
    return list(_warnings.get() or [])


def end_request(token: contextvars.Token[list[str] | None]) -> None:
    _warnings.reset(token)


def _free_form(schema: dict[str, Any]) -> bool:
    return "properties" not in schema and "additionalProperties" not in schema and "items" not in schema


def prune(value: Any, schema: dict[str, Any], path: str, unknown: list[str]) -> Any:
    """`value` without the fields `schema` does not declare; their paths appended to `unknown`."""
    schema = openapi.resolve(schema)
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is None and not isinstance(extra, dict):
            return value  # free-form (RawExtension, FieldsV1, JSON)
        out: dict[str, Any] = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if props is not None and key in props:
                out[key] = prune(item, props[key], child, unknown)
            elif isinstance(extra, dict):
                out[key] = prune(item, extra, child, unknown)
            else:
                unknown.append(child)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [prune(item, schema["items"], f"{path}[{i}]", unknown) for i, item in enumerate(value)]
    return value


def unknown_fields(obj: dict[str, Any], kind: str) -> tuple[dict[str, Any], list[str]]:
    """The object as upstream would decode it, and the unknown fields it dropped."""
    schema = openapi.schema_of(kind)
    if schema is None:
        api_version = obj.get("apiVersion")
        custom = resources.kind_of(kind)
        if isinstance(api_version, str):  # the version's own schema when the object names it
            custom = resources.for_api_version(api_version, kind) or custom
        if custom is not None and custom.custom is not None and custom.custom.schema:
            from mikro.api import crds

            return crds.unknown_fields(obj, custom)
        return obj, []
    unknown: list[str] = []
    pruned = prune(obj, schema, "", unknown)
    return pruned, unknown


def decoding_error(unknown: list[str], duplicates: list[str] | None = None) -> str:
    parts = [f'unknown field "{f}"' for f in unknown] + [f'duplicate field "{f}"' for f in duplicates or []]
    return "strict decoding error: " + ", ".join(parts)


def decode(
    obj: dict[str, Any], kind: str, api_version: str, mode: str, duplicates: list[str] | None = None
) -> dict[str, Any]:
    """Create and update (POST, PUT): the body decoded as `mode` asks."""
    pruned, unknown = unknown_fields(obj, kind)
    found = unknown + [f for f in duplicates or []]
    if not found:
        return pruned
    if mode == "Strict":
        version = api_version.rsplit("/", 1)[-1]
        raise ApiError(
            400,
            f'{kind} in version "{version}" cannot be handled as a {kind}: '
            + decoding_error(unknown, duplicates or []),
        )
    if mode == "Warn":
        for f in unknown:
            warn(f'unknown field "{f}"')
        for f in duplicates or []:
            warn(f'duplicate field "{f}"')
    return pruned


def decode_patched(obj: dict[str, Any], kind: str, mode: str, patch_body: Any) -> dict[str, Any]:
    """PATCH: the patched object decoded as `mode` asks; a strict refusal is upstream's 422."""
    pruned, unknown = unknown_fields(obj, kind)
    if not unknown:
        return pruned
    if mode == "Strict":
        shown = json.dumps(patch_body, separators=(",", ":"))
        raise ApiError(
            422,
            f' "" is invalid: patch: Invalid value: "{shown}": ' + decoding_error(unknown),
            "Invalid",
            details={"causes": [{"reason": "FieldValueInvalid", "message": decoding_error(unknown), "field": "patch"}]},
        )
    if mode == "Warn":
        for f in unknown:
            warn(f'unknown field "{f}"')
    return pruned


def _has_duplicates(raw: bytes) -> bool:
    """Whether any object of a JSON body gives a key twice (True for a body that is not JSON:
    find_duplicates then answers as it always did). One pass of the C decoder, no paths."""
    found = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        out = dict(pairs)
        if len(out) != len(pairs):
            found = True
        return out

    try:
        json.loads(raw, object_pairs_hook=hook)
    except ValueError:
        return True
    return found


class _Pairs(dict[str, Any]):
    duplicates: list[str]


def find_duplicates(raw: bytes) -> list[str]:
    """Paths of keys given twice in a JSON body (`metadata.name`), as upstream's strict decoder
    reports them."""
    if not _has_duplicates(raw):
        return []

    def hook(pairs: list[tuple[str, Any]]) -> _Pairs:
        out = _Pairs(pairs)
        seen: set[str] = set()
        out.duplicates = []
        for key, _ in pairs:
            if key in seen:
                out.duplicates.append(key)
            seen.add(key)
        return out

    try:
        doc = json.loads(raw, object_pairs_hook=hook)
    except ValueError:
        return []
    found: list[str] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, _Pairs):
            found.extend(f"{path}.{k}" if path else k for k in value.duplicates)
            for key, item in value.items():
                walk(item, f"{path}.{key}" if path else key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]")

    walk(doc, "")
    return found
