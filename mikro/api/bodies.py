"""Request bodies and query parameters as the API server accepts them. Pure.

Bounds first, then decoding: a body is at most `MAX_REQUEST_BYTES` (kube-apiserver's 3 MiB),
JSON as Go decodes it (no NaN or Infinity), YAML through the same alias-expansion bound
`mikro apply` uses (CVE-2019-11253), nesting no deeper than `MAX_DEPTH`. Every refusal is an
`ApiError` with the status Kubernetes answers (400, 413, 422), never an exception of Python's.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
from typing import Any

from mikro.errors import ApiError

# kube-apiserver: `MaxRequestBodyBytes` is 3 MiB; etcd's default `--max-request-bytes` 1.5 MiB.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
MAX_OBJECT_BYTES = 1536 * 1024
# Deeper than any Kubernetes object goes; deep enough trees would exhaust Python's stack in
# the copies and merges that follow.
MAX_DEPTH = 100
# Nodes a YAML document may expand to through its aliases (`mikro apply` applies the same bound).
MAX_EXPANDED_NODES = 200_000
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")


def too_large() -> ApiError:
    return ApiError(413, f"Request entity too large: limit is {MAX_REQUEST_BYTES}", "RequestEntityTooLarge")


def object_too_large() -> ApiError:
    return ApiError(413, "etcdserver: request is too large", "RequestEntityTooLarge")


def parse_content_length(values: list[str]) -> int | None:
    """The one Content-Length of a request (None when absent); 400 for anything but one
    non-negative decimal number (Go's net/http refuses the same)."""
    if not values:
        return None
    distinct = {v.strip() for v in values}
    if len(distinct) != 1:
        raise ApiError(400, "invalid Content-Length: more than one value")
    value = distinct.pop()
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise ApiError(400, f"invalid Content-Length: {value!r}")
    return int(value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


def _check_tree(obj: Any) -> None:
    """Refuse what Go's JSON would never carry: non-finite numbers, alias-expanded or too deep
    trees. Counts nodes as if aliases were copied, stopping at the bound."""
    count = 0
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        item, depth = stack.pop()
        count += 1
        if count > MAX_EXPANDED_NODES:
            raise ApiError(400, f"the request body expands to more than {MAX_EXPANDED_NODES} nodes (YAML aliases?)")
        if depth > MAX_DEPTH:
            raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, float) and not math.isfinite(item):
            raise ApiError(400, f"the request body holds a number JSON cannot carry: {item}")
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise ApiError(400, f"the request body has a key that is not a string: {key!r}")
                stack.append((value, depth + 1))
        elif isinstance(item, list):
            stack.extend((value, depth + 1) for value in item)
        elif not (item is None or isinstance(item, (str, int, float, bool))):
            raise ApiError(400, f"the request body holds a value JSON cannot carry: {type(item).__name__}")


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON tree (dicts, lists, strings, numbers, booleans, null) at a
    fraction of `copy.deepcopy`'s cost; a value of any other type is deep-copied as usual.
    A subtree that appears twice (a YAML alias) is copied twice, not shared."""
    if isinstance(value, dict):
        return {k: json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return copy.deepcopy(value)


_found = threading.local()


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        _found.duplicate = True
    return obj


# One decoder for every body (json.loads with arguments builds a new one each call); objects
# come through _object, which notes a key given twice on the way (fieldValidation's check).
_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_reject_constant)


def decode(raw: bytes) -> Any:
    """A request body as JSON (or YAML, as kube-apiserver also accepts), checked; {} when empty."""
    return decode_noting_duplicates(raw)[0]


def decode_noting_duplicates(raw: bytes) -> tuple[Any, bool]:
    """decode(), and whether the body is JSON with an object that gives a key twice: the
    API server looks for their paths (fieldValidation) only then, not in a second parse of
    every body."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise too_large()
    if not raw.strip():
        return {}, False
    _found.duplicate = False
    try:
        # (as json.loads reads bytes: UTF-8, -16 or -32, a UTF-8 byte order mark skipped)
        obj = _DECODER.decode(raw.decode(json.detect_encoding(raw), "surrogatepass"))
        duplicate = _found.duplicate
    except RecursionError:
        raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as json_error:
        if raw.lstrip()[:1] in (b"{", b"["):
            raise ApiError(400, f"the request body is not valid JSON: {json_error}") from None
        import yaml  # with mikro.cli.manifest: 0.05 s of CPU, at the first YAML body, not at boot

        from mikro.cli.manifest import _Loader

        try:
            obj = yaml.load(raw, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except RecursionError:
            raise ApiError(400, f"the request body is nested deeper than {MAX_DEPTH} levels") from None
        except Exception:  # noqa: BLE001 - any parse failure is the client's
            raise ApiError(400, "the request body is neither JSON nor YAML") from None
        duplicate = False  # (fieldValidation looks for duplicates in JSON bodies only)
    _check_tree(obj)
    return obj, duplicate


def require_object(body: Any, kind: str) -> dict[str, Any]:
    """The body of a create or update: an object whose metadata has the shape every verb relies on
    (400 otherwise, as Go's decoder answers `cannot be handled as a Kind`)."""

    def refuse(why: str) -> ApiError:
        return ApiError(400, f"the request body cannot be handled as a {kind}: {why}")

    if not isinstance(body, dict):
        raise refuse(f"expected an object, got {_json_type(body)}")
    for field in ("apiVersion", "kind"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise refuse(f"{field}: expected a string, got {_json_type(body[field])}")
    for field in ("spec", "status"):
        value = body.get(field)
        if value is not None and not isinstance(value, dict):
            raise refuse(f"{field}: expected an object, got {_json_type(value)}")
    meta = body.get("metadata")
    if meta is None:
        return body
    if not isinstance(meta, dict):
        raise refuse(f"metadata: expected an object, got {_json_type(meta)}")
    for field in ("name", "namespace", "generateName", "resourceVersion", "uid"):
        if meta.get(field) is not None and not isinstance(meta[field], str):
            raise refuse(f"metadata.{field}: expected a string, got {_json_type(meta[field])}")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise refuse(f"metadata.{field}: expected an object, got {_json_type(value)}")
        for key, item in value.items():
            if item is not None and not isinstance(item, str):
                raise refuse(f"metadata.{field}.{key}: expected a string, got {_json_type(item)}")
    for field in ("finalizers", "ownerReferences"):
        value = meta.get(field)
        if value is not None and not isinstance(value, list):
            raise refuse(f"metadata.{field}: expected an array, got {_json_type(value)}")
    refs = meta.get("ownerReferences") or []
    if not all(isinstance(ref, dict) for ref in refs):
        raise refuse("metadata.ownerReferences: every item must be an object")
    return body


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


# -- query parameters ------------------------------------------------------------------------


def query_int(query: dict[str, str], name: str, minimum: int | None = None) -> int | None:
    """An integer query parameter (None when absent), as Go's strconv parses it; 400 otherwise."""
    value = query.get(name)
    if value is None or value == "":
        return None
    if not _INTEGER.fullmatch(value):
        raise ApiError(400, f'{name}: Invalid value: "{value}": strconv.ParseInt: parsing "{value}": invalid syntax')
    number = int(value)
    if minimum is not None and number < minimum:
        raise ApiError(400, f"{name}: Invalid value: {number}: must be greater than or equal to {minimum}")
    return number


def resource_version(query: dict[str, str]) -> int | None:
    """The resourceVersion of a list or watch ("" and "0" mean any): 400 when not a version."""
    value = query.get("resourceVersion")
    if value is None or value in ("", "0"):
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise ApiError(400, f'invalid resource version: resourceVersion: Invalid value: "{value}": must be a number')
    return int(value)
