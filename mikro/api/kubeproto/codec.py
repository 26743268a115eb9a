"""JSON-shaped dicts <-> protobuf messages, the Kubernetes way, and the `k8s\\x00` envelope.

- proto field names are the JSON names, except embedded Go structs that JSON inlines
  (`Probe.handler`, `Volume.volumeSource`, ...: INLINE) and two renamed fields (RENAMED);
- Go pointers vs values: gogo writes every non-pointer field, zero or not, so a zero in a field
  marked `(gogoproto.nullable) = false` means "unset" and is left out of the dict, while a zero in
  a pointer field (`replicas: 0`, `storageClassName: ""`) is kept;
- special types: Time/MicroTime (RFC 3339), Duration (Go's "1m30s"), IntOrString, Quantity
  (a string), RawExtension and FieldsV1 (raw JSON), bytes (base64 in JSON), string-list
  wrappers (`ExtraValue`, `Verbs`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from mikro.api.kubeproto.descriptors import (
    DURATION,
    FIELDS_V1,
    GO_ZERO_TIME,
    INLINE,
    INT_OR_STRING,
    MAGIC,
    MICRO_TIME,
    QUANTITY,
    RAW_EXTENSION,
    RENAMED,
    STRING_LISTS,
    TIME,
    UNKNOWN,
    NoSchema,
    ProtobufError,
    schema,
)

log = logging.getLogger("mikro.apiserver")

_INT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOAT_TYPES = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}


# -- envelope ------------------------------------------------------------------------------


def decode(data: bytes) -> dict[str, Any]:
    """An enveloped object (`k8s\\x00` + runtime.Unknown) -> the JSON-shaped dict."""
    if not data.startswith(MAGIC):
        raise ProtobufError("the protobuf body does not start with the Kubernetes magic number")
    s = schema()
    try:
        unknown = s.message(UNKNOWN).FromString(data[len(MAGIC) :])
    except DecodeError as exc:
        raise ProtobufError(f"the protobuf body cannot be decoded: {exc}") from None
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    if unknown.contentEncoding:
        raise ProtobufError(f"unsupported protobuf content encoding {unknown.contentEncoding!r}")
    name = s.find(api_version, kind)
    if name is None:
        raise NoSchema(f"no protobuf serialization is known for {kind} ({api_version or 'no apiVersion'})")
    try:
        msg = s.message(name).FromString(unknown.raw)
    except DecodeError as exc:
        raise ProtobufError(f"the {kind} in the protobuf body cannot be decoded: {exc}") from None
    head = {"apiVersion": api_version, "kind": kind}
    return {**{k: v for k, v in head.items() if v}, **to_dict(msg)}


def encode(obj: dict[str, Any], strict: bool = True) -> bytes:
    """A JSON-shaped dict with apiVersion and kind -> `k8s\\x00` + runtime.Unknown."""
    api_version, kind = str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")
    s = schema()
    name = s.find(api_version, kind)
    if name is None:
        raise NoSchema(f"no protobuf serialization is known for {kind} ({api_version})")
    msg = s.message(name)()
    from_dict(msg, obj, strict)
    unknown = s.message(UNKNOWN)()
    unknown.typeMeta.apiVersion = api_version
    unknown.typeMeta.kind = kind
    unknown.raw = msg.SerializeToString()
    return MAGIC + unknown.SerializeToString()


# -- messages <-> dicts --------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    """What to_dict needs to know of one field, computed once."""

    name: str  # the JSON name
    inline: bool
    map_value: FieldDescriptor | None  # the value field of a map entry
    repeated: bool
    value_type: bool  # a Go non-pointer: its zero means unset
    kind: str  # the message's full name, "bytes", or "" for other scalars


@functools.cache
def _field(field: FieldDescriptor) -> _Field:
    key = (field.containing_type.full_name, field.name)
    is_map = _is_map(field)
    if field.message_type is not None:
        kind = field.message_type.full_name
    else:
        kind = "bytes" if field.type == FieldDescriptor.TYPE_BYTES else ""
    return _Field(
        name=RENAMED.get(key, field.name),
        inline=key in INLINE,
        map_value=field.message_type.fields_by_name["value"] if is_map else None,
        repeated=_repeated(field) and not is_map,
        value_type=key in schema().values,
        kind=kind,
    )


def to_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        info = _field(field)
        if info.inline:
            out.update(to_dict(value))
        elif info.map_value is not None:
            if value:
                value_info = _field(info.map_value)
                out[info.name] = {k: _value_to_json(value_info.kind, v) for k, v in value.items()}
        elif info.repeated:
            if value:
                out[info.name] = [_value_to_json(info.kind, v) for v in value]
        else:
            converted = _value_to_json(info.kind, value)
            if converted is None:
                continue
            if info.value_type and not converted and (info.kind in ("", "bytes", INT_OR_STRING)):
                continue  # a Go value field at its zero: unset
            out[info.name] = converted
    return out


def _value_to_json(kind: str, value: Any) -> Any:
    if not kind:
        return value
    if kind == "bytes":
        return base64.b64encode(value).decode()
    if kind in (TIME, MICRO_TIME):
        if value.seconds in (0, GO_ZERO_TIME) and value.nanos == 0:
            return None
        when = dt.datetime.fromtimestamp(value.seconds, dt.UTC)
        if kind == MICRO_TIME:
            return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{value.nanos // 1000:06d}Z"
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == DURATION:
        return _format_duration(value.duration)
    if kind == INT_OR_STRING:
        return value.strVal if value.type == 1 else value.intVal
    if kind == QUANTITY:
        return value.string
    if kind in (RAW_EXTENSION, FIELDS_V1):
        raw = value.raw if kind == RAW_EXTENSION else value.Raw
        if not raw:
            return None
        if raw.startswith(MAGIC):
            return decode(raw)
        return json.loads(raw)
    if kind in STRING_LISTS:
        return list(value.items)
    return to_dict(value)


def from_dict(msg: Message, obj: dict[str, Any], strict: bool = True) -> None:
    """Fill `msg` from a JSON-shaped dict. A value that does not fit its field raises
    ProtobufError, or with strict=False is left out (logged): a watch stream cannot fall back
    to JSON half-way, a single answer can."""
    desc: Descriptor = msg.DESCRIPTOR
    fields = _json_fields(desc)
    for key, value in obj.items():
        entry = fields.get(key)
        if entry is None or value is None:
            continue  # apiVersion/kind (the envelope's), or a field protobuf does not have
        chain, field = entry
        target = msg
        for inline in chain:
            target = getattr(target, inline.name)
            target.SetInParent()
        try:
            _set_field(target, field, value, strict)
        except (ProtobufError, ValueError, TypeError, OverflowError) as exc:
            target.ClearField(field.name)
            if strict and isinstance(exc, ProtobufError):
                raise
            if strict:
                raise ProtobufError(f"{desc.name}.{key}: {exc}") from None
            log.warning("left %s.%s out of a protobuf answer: %s", desc.name, key, exc)


@functools.cache
def _json_fields(desc: Descriptor) -> dict[str, tuple[tuple[FieldDescriptor, ...], FieldDescriptor]]:
    """JSON name -> (the inlined fields on the way, the field), for one message."""
    out: dict[str, tuple[tuple[FieldDescriptor, ...], FieldDescriptor]] = {}
    for field in desc.fields:
        if (desc.full_name, field.name) in INLINE:
            for key, (chain, inner) in _json_fields(field.message_type).items():
                out.setdefault(key, ((field, *chain), inner))
        else:
            out[RENAMED.get((desc.full_name, field.name), field.name)] = ((), field)
    return out


def _set_field(msg: Message, field: FieldDescriptor, value: Any, strict: bool) -> None:
    if _is_map(field):
        if not isinstance(value, dict):
            raise ProtobufError(f"{field.name}: expected an object")
        value_field = field.message_type.fields_by_name["value"]
        target = getattr(msg, field.name)
        for k, v in value.items():
            if v is None:
                continue
            if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                _set_message(target[str(k)], value_field, v, strict)
            else:
                target[str(k)] = _scalar(value_field, v)
    elif _repeated(field):
        if not isinstance(value, list):
            raise ProtobufError(f"{field.name}: expected a list")
        target = getattr(msg, field.name)
        for item in value:
            if item is None:
                continue
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                _set_message(target.add(), field, item, strict)
            else:
                target.append(_scalar(field, item))
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        sub = getattr(msg, field.name)
        _set_message(sub, field, value, strict)
        sub.SetInParent()
    else:
        setattr(msg, field.name, _scalar(field, value))


def _set_message(sub: Message, field: FieldDescriptor, value: Any, strict: bool = True) -> None:
    name = _field(field).kind
    if name in (TIME, MICRO_TIME):
        seconds, nanos = _parse_time(str(value))
        sub.seconds, sub.nanos = seconds, nanos
    elif name == DURATION:
        sub.duration = _parse_duration(str(value))
    elif name == INT_OR_STRING:
        if isinstance(value, str):
            sub.type, sub.strVal = 1, value
        else:
            sub.type, sub.intVal = 0, int(value)
    elif name == QUANTITY:
        sub.string = _quantity(value)
    elif name == RAW_EXTENSION:
        sub.raw = json.dumps(value, separators=(",", ":")).encode()
    elif name == FIELDS_V1:
        sub.Raw = json.dumps(value, separators=(",", ":")).encode()
    elif name in STRING_LISTS:
        sub.items.extend(str(v) for v in value)
    elif isinstance(value, dict):
        from_dict(sub, value, strict)
    else:
        raise ProtobufError(f"{field.name}: expected an object")
    sub.SetInParent()


def _scalar(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_BYTES:
        if isinstance(value, bytes):
            return value
        try:
            return base64.b64decode(str(value), validate=True)
        except binascii.Error:
            raise ProtobufError(f"illegal base64 data in field {field.name}") from None
    if field.type == FieldDescriptor.TYPE_STRING:
        return (
            value
            if isinstance(value, str)
            else json.dumps(value)
            if isinstance(value, (bool, list, dict))
            else str(value)
        )
    if field.type == FieldDescriptor.TYPE_BOOL:
        return bool(value)
    if field.type in _INT_TYPES:
        return int(value)
    if field.type in _FLOAT_TYPES:
        return float(value)
    return value


@functools.cache
def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 6.31 added `is_repeated`; 7 dropped `label`.
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


@functools.cache
def _is_map(field: FieldDescriptor) -> bool:
    return _repeated(field) and field.message_type is not None and field.message_type.GetOptions().map_entry


def _quantity(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_TIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _parse_time(text: str) -> tuple[int, int]:
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ProtobufError(f'parsing time "{text}" as RFC 3339 failed')
    zone = "+00:00" if m.group(4) in ("Z", "z") else m.group(4)
    when = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}{zone}")
    fraction = (m.group(3) or ".0")[1:10].ljust(9, "0")
    return int(when.timestamp()), int(fraction)


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def _parse_duration(text: str) -> int:
    """Go's time.ParseDuration: "1h30m", "2.5s", "-1m"."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if body == "0":
        return 0
    total, at = 0.0, 0
    for m in _DURATION_RE.finditer(body):
        if m.start() != at:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        at = m.end()
    if at != len(body) or not body:
        raise ProtobufError(f'time: invalid duration "{text}"')
    return sign * round(total)


def _format_duration(ns: int) -> str:
    """Go's time.Duration.String() for whole seconds and above, as metav1.Duration marshals."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns < 10**9:
        for unit, size in (("ms", 10**6), ("µs", 10**3)):
            if ns >= size:
                return sign + _trim(ns / size) + unit
        return f"{sign}{ns}ns"
    hours, rest = divmod(ns, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds = _trim(rest / 10**9)
    out = f"{hours}h{minutes}m{seconds}s" if hours else f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
    return sign + out


def _trim(value: float) -> str:
    return f"{value:.9f}".rstrip("0").rstrip(".")
