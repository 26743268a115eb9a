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

import importlib
import json
import logging
from typing import Any

# google.protobuf takes ~0.1 s to import: the codec loads on the first protobuf request, so a
# control plane that only ever speaks JSON never pays for it.
_LAZY = {
    "codec": ("decode", "encode", "from_dict", "to_dict"),
    "descriptors": (
        "GO_ZERO_TIME",
        "INLINE",
        "MAGIC",
        "RENAMED",
        "STRING_LISTS",
        "UNKNOWN",
        "NoSchema",
        "ProtobufError",
        "schema",
    ),
    "stream": ("decode_watch_stream", "encode_watch_event"),
}


def __getattr__(name: str) -> Any:
    for module, names in _LAZY.items():
        if name in names:
            return getattr(importlib.import_module(f"mikro.api.kubeproto.{module}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


# -- the API server's side ----------------------------------------------------------------


def has_schema(api_version: str, kind: str) -> bool:
    from mikro.api.kubeproto.descriptors import has_schema as known

    return known(api_version, kind)


def read_body(raw: bytes) -> dict[str, Any]:
    """A protobuf request body -> dict, or the ApiError Kubernetes answers: 415 for a kind with
    no protobuf form (custom resources), 400 for bytes that do not decode."""
    from mikro.api.kubeproto.codec import decode
    from mikro.api.kubeproto.descriptors import NoSchema, ProtobufError
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


def render(body: Any, accept: str | None, text: str | None = None) -> tuple[str, bytes]:
    """The answer in the client's preferred encoding: protobuf when the Accept header ranks it
    first and the object's kind has a protobuf message, JSON otherwise (as Kubernetes falls back
    for custom resources when the client also accepts `*/*` or JSON). `text`: the body's JSON,
    when the caller has it already."""
    if isinstance(body, dict) and prefers_protobuf(accept):
        from mikro.api.kubeproto.codec import encode
        from mikro.api.kubeproto.descriptors import ProtobufError

        if has_schema(str(body.get("apiVersion") or ""), str(body.get("kind") or "")):
            try:
                return MEDIA_TYPE, encode(body)
            except ProtobufError as exc:  # a stored value protobuf cannot carry: answer JSON
                log.warning("answering JSON: %s", exc)
    return "application/json", (text if text is not None else json.dumps(body, separators=(",", ":"))).encode()


def watch_frame(type_: str, obj: dict[str, Any], protobuf: bool) -> bytes:
    """One watch event as the stream's media type frames it (JSON: one object a line)."""
    if protobuf:
        from mikro.api.kubeproto.stream import encode_watch_event

        return encode_watch_event(type_, obj)
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"
