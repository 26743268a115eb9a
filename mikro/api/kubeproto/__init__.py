"""Kubernetes' protobuf encoding (`application/vnd.kubernetes.protobuf`) for the built-in kinds.

Go clients (kubectl's typed paths, Helm, every client-go program) send and ask for built-in kinds
in protobuf. mikro keeps its objects as JSON-shaped dicts; this package converts between those
dicts and the wire, and nothing else:

- an object on the wire is the magic `k8s\\x00` followed by a `runtime.Unknown` message whose
  `typeMeta` names apiVersion and kind and whose `raw` holds the object's own message (codec);
- a watch stream is a series of frames, each a 4-byte big-endian length and a bare
  `metav1.WatchEvent` message whose `object.raw` holds the enveloped object (here);
- the schema is the one Kubernetes' Go code registers, with the facts of its mapping to JSON
  (descriptors); the `protobuf` library does the wire format.

The API server uses only what is below: is_protobuf/read_body for requests, prefers_protobuf,
render and watch_frame for answers.
"""

from __future__ import annotations

import json
import logging
import struct
from typing import Any

from mikro.api.kubeproto.codec import decode, encode, from_dict, to_dict
from mikro.api.kubeproto.descriptors import (
    GO_ZERO_TIME,
    INLINE,
    MAGIC,
    RENAMED,
    STRING_LISTS,
    UNKNOWN,
    WATCH_EVENT,
    NoSchema,
    ProtobufError,
    has_schema,
    schema,
)

__all__ = [
    "GO_ZERO_TIME",
    "INLINE",
    "MAGIC",
    "MEDIA_TYPE",
    "RENAMED",
    "STRING_LISTS",
    "UNKNOWN",
    "WATCH_MEDIA_TYPE",
    "NoSchema",
    "ProtobufError",
    "decode",
    "decode_watch_stream",
    "encode",
    "encode_watch_event",
    "from_dict",
    "has_schema",
    "is_protobuf",
    "prefers_protobuf",
    "read_body",
    "render",
    "schema",
    "to_dict",
    "watch_frame",
]

log = logging.getLogger("mikro.apiserver")

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
WATCH_MEDIA_TYPE = MEDIA_TYPE + ";stream=watch"


# -- media types ---------------------------------------------------------------------------


def is_protobuf(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() == MEDIA_TYPE


def prefers_protobuf(accept: str | None) -> bool:
    """Whether the client's Accept header ranks protobuf first (kubectl's typed clients send
    `application/vnd.kubernetes.protobuf, */*`); a Table request (`as=Table`) never does."""
    best: tuple[float, int, str] | None = None
    for index, part in enumerate((accept or "").split(",")):
        fields = [p.strip() for p in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        params = dict(p.split("=", 1) for p in fields[1:] if "=" in p)
        if "as" in params:
            continue
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            q = 0.0
        if q <= 0:
            continue
        key = (-q, index, media)
        if best is None or key < best:
            best = key
    return best is not None and best[2] == MEDIA_TYPE


def encode_watch_event(type_: str, obj: dict[str, Any]) -> bytes:
    """One frame of a protobuf watch stream: length (4 bytes, big-endian) + metav1.WatchEvent."""
    event = schema().message(WATCH_EVENT)()
    event.type = type_
    event.object.raw = encode(obj, strict=False)
    body = event.SerializeToString()
    return struct.pack(">I", len(body)) + body


def decode_watch_stream(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """The frames of a protobuf watch stream -> (type, object) pairs (what client-go reads)."""
    events = []
    at = 0
    while at < len(data):
        if at + 4 > len(data):
            raise ProtobufError("truncated watch frame length")
        (length,) = struct.unpack(">I", data[at : at + 4])
        frame = data[at + 4 : at + 4 + length]
        if len(frame) != length:
            raise ProtobufError("truncated watch frame")
        event = schema().message(WATCH_EVENT).FromString(frame)
        events.append((event.type, decode(event.object.raw)))
        at += 4 + length
    return events


# -- the API server's side ----------------------------------------------------------------


def read_body(raw: bytes) -> dict[str, Any]:
    """A protobuf request body -> dict, or the ApiError Kubernetes answers: 415 for a kind with
    no protobuf form (custom resources), 400 for bytes that do not decode."""
    from mikro.errors import ApiError

    try:
        return decode(raw)
    except NoSchema as exc:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml ({exc})",
        ) from None
    except (ProtobufError, ValueError) as exc:
        raise ApiError(400, f"the request body is not a valid Kubernetes protobuf object: {exc}") from None


def render(body: Any, accept: str | None) -> tuple[str, bytes]:
    """The answer in the client's preferred encoding: protobuf when the Accept header ranks it
    first and the object's kind has a protobuf message, JSON otherwise (as Kubernetes falls back
    for custom resources when the client also accepts `*/*` or JSON)."""
    if isinstance(body, dict) and prefers_protobuf(accept):
        if has_schema(str(body.get("apiVersion") or ""), str(body.get("kind") or "")):
            try:
                return MEDIA_TYPE, encode(body)
            except ProtobufError as exc:  # a stored value protobuf cannot carry: answer JSON
                log.warning("answering JSON: %s", exc)
    return "application/json", json.dumps(body, separators=(",", ":")).encode()


def watch_frame(type_: str, obj: dict[str, Any], protobuf: bool) -> bytes:
    """One watch event as the stream's media type frames it (JSON: one object a line)."""
    if protobuf:
        return encode_watch_event(type_, obj)
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"
