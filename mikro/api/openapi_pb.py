"""The OpenAPI v2 document as protobuf, the form client-go's `OpenAPISchema()` asks for
(`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`; kubectl's v2 paths: validation
against older servers, `explain --output plaintext-openapiv2`).

The message is gnostic's `openapi.v2.Document` (github.com/google/gnostic-models,
openapiv2/OpenAPIv2.proto); field numbers below are from that file. Vendor extensions are
`NamedAny` whose `Any.yaml` holds the value as YAML text (JSON is YAML). Pure.
"""

from __future__ import annotations

import json
import struct
from typing import Any

# The request names the deprecated "...spec.v2@v1.0+protobuf"; "@" is not valid in a response
# media type, so kube-apiserver answers with this one.
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _bytes(field: int, data: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _str(field: int, value: str | None) -> bytes:
    return _bytes(field, value.encode()) if value else b""


def _bool(field: int, value: bool | None) -> bytes:
    return _varint(field << 3) + b"\x01" if value else b""


def _int(field: int, value: int | None) -> bytes:
    return _varint(field << 3) + _varint(int(value)) if value is not None else b""


def _double(field: int, value: float | None) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", float(value)) if value is not None else b""


def _any(value: Any) -> bytes:
    # Any { google.protobuf.Any value = 1; string yaml = 2; }
    return _str(2, json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def _named_any(field: int, name: str, value: Any) -> bytes:
    return _bytes(field, _str(1, name) + _bytes(2, _any(value)))


def _extensions(field: int, obj: dict[str, Any]) -> bytes:
    return b"".join(_named_any(field, k, v) for k, v in obj.items() if k.startswith("x-"))


def schema(s: dict[str, Any]) -> bytes:
    out = _str(1, s.get("$ref")) + _str(2, s.get("format")) + _str(3, s.get("title")) + _str(4, s.get("description"))
    if "default" in s:
        out += _bytes(5, _any(s["default"]))
    out += _double(7, s.get("maximum")) + _double(9, s.get("minimum"))
    out += _int(11, s.get("maxLength")) + _int(12, s.get("minLength")) + _str(13, s.get("pattern"))
    out += _int(14, s.get("maxItems")) + _int(15, s.get("minItems")) + _bool(16, s.get("uniqueItems"))
    out += b"".join(_str(19, r) for r in s.get("required") or [])
    out += b"".join(_bytes(20, _any(e)) for e in s.get("enum") or [])
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        out += _bytes(21, _bytes(1, schema(extra)))
    elif isinstance(extra, bool):
        out += _bytes(21, _varint(2 << 3) + (b"\x01" if extra else b"\x00"))
    kind = s.get("type")
    if kind:
        out += _bytes(22, b"".join(_str(1, t) for t in ([kind] if isinstance(kind, str) else kind)))
    items = s.get("items")
    if isinstance(items, dict):
        out += _bytes(23, _bytes(1, schema(items)))
    out += b"".join(_bytes(24, schema(a)) for a in s.get("allOf") or [])
    props = s.get("properties")
    if isinstance(props, dict):
        out += _bytes(25, b"".join(_bytes(1, _str(1, k) + _bytes(2, schema(v))) for k, v in props.items()))
    out += _bool(27, s.get("readOnly"))
    return out + _extensions(31, s)


def _parameter(p: dict[str, Any]) -> bytes:
    if p.get("in") == "body":
        body = _str(1, p.get("description")) + _str(2, p.get("name")) + _str(3, "body")
        body += _bool(4, p.get("required")) + (_bytes(5, schema(p["schema"])) if "schema" in p else b"")
        parameter = _bytes(1, body)
    else:
        common = _bool(1, p.get("required")) + _str(2, p.get("in")) + _str(3, p.get("description"))
        common += _str(4, p.get("name"))
        if p.get("in") == "path":  # PathParameterSubSchema: type 5, unique_items 19
            sub = _bytes(4, common + _str(5, p.get("type")) + _bool(19, p.get("uniqueItems")))
        else:  # QueryParameterSubSchema: type 6, unique_items 20
            sub = _bytes(3, common + _str(6, p.get("type")) + _bool(20, p.get("uniqueItems")))
        parameter = _bytes(2, sub)
    return _bytes(1, parameter)  # ParametersItem.parameter


def _operation(op: dict[str, Any]) -> bytes:
    out = b"".join(_str(1, t) for t in op.get("tags") or [])
    out += _str(3, op.get("description")) + _str(5, op.get("operationId"))
    out += b"".join(_str(6, t) for t in op.get("produces") or [])
    out += b"".join(_str(7, t) for t in op.get("consumes") or [])
    out += b"".join(_bytes(8, _parameter(p)) for p in op.get("parameters") or [])
    responses = b""
    for code, response in (op.get("responses") or {}).items():
        body = _str(1, response.get("description"))
        if "schema" in response:
            body += _bytes(2, _bytes(1, schema(response["schema"])))
        responses += _bytes(1, _str(1, code) + _bytes(2, _bytes(1, body)))
    out += _bytes(9, responses)
    return out + _extensions(13, op)


PATH_OPERATIONS = {"get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8}


def document(doc: dict[str, Any]) -> bytes:
    out = _str(1, doc.get("swagger"))
    info = doc.get("info") or {}
    out += _bytes(2, _str(1, info.get("title")) + _str(2, info.get("version")))
    paths = b""
    for path, item in (doc.get("paths") or {}).items():
        body = b""
        for verb, number in PATH_OPERATIONS.items():
            if verb in item:
                body += _bytes(number, _operation(item[verb]))
        body += b"".join(_bytes(9, _parameter(p)) for p in item.get("parameters") or [])
        paths += _bytes(2, _str(1, path) + _bytes(2, body))
    out += _bytes(8, paths)
    definitions = b"".join(
        _bytes(1, _str(1, name) + _bytes(2, schema(s))) for name, s in (doc.get("definitions") or {}).items()
    )
    out += _bytes(9, definitions)
    for requirement in doc.get("security") or []:
        named = b"".join(
            _bytes(1, _str(1, k) + _bytes(2, b"".join(_str(1, v) for v in values))) for k, values in requirement.items()
        )
        out += _bytes(12, named)
    security = b""
    for name, item in (doc.get("securityDefinitions") or {}).items():
        api_key = _str(1, item.get("type")) + _str(2, item.get("name")) + _str(3, item.get("in"))
        security += _bytes(1, _str(1, name) + _bytes(2, _bytes(2, api_key)))
    if security:
        out += _bytes(13, security)
    return out
