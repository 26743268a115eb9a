"""Protobuf watch streams: frames of a 4-byte big-endian length and a bare metav1.WatchEvent,
whose `object.raw` holds the enveloped object (what client-go's watch decoder reads)."""

from __future__ import annotations

import struct
from typing import Any

from mikro.api.kubeproto.codec import decode, encode
from mikro.api.kubeproto.descriptors import WATCH_EVENT, ProtobufError, schema


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
