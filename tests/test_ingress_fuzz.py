"""Property: whatever string reaches the ingress template, it stays one NGINX token (or is
refused): the configuration's structure never changes (issue 11, item 2)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mikro.net.ingress import Unsafe, build, render_ingress, render_service_proxy

from .test_ingress import CERT, ep, ing, path, svc


def tokens(text: str) -> list[tuple[str, bool]]:
    """NGINX's tokenizer (ngx_conf_read_token), enough of it: blanks separate; `;`, `{`, `}`
    end a directive; "..." and '...' quote with backslash escapes; `#` starts a comment."""
    out: list[tuple[str, bool]] = []  # (token, quoted): a quoted ";" is a word, not an end
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in ";{}":
            out.append((ch, False))
            i += 1
        elif ch in "\"'":
            quote, i, word = ch, i + 1, []
            while i < n and text[i] != quote:
                if text[i] == "\\" and i + 1 < n and text[i + 1] in (quote, "\\"):
                    i += 1
                word.append(text[i])
                i += 1
            out.append(("".join(word), True))
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}\"'":
                i += 1
            out.append((text[start:i], False))
    return out


def structure(text: str) -> list[str]:
    return [t for t, quoted in tokens(text) if not quoted and t in (";", "{", "}")]


def model() -> dict[str, Any]:
    m, _ = build(
        [ing("a", [{"host": "a.local", "http": {"paths": [path("/a", "web", 80)]}}])],
        [svc("web", [{"port": 80}])],
        [ep("web", ["10.0.0.2"], 80)],
        {},
        CERT,
    )
    return m


BASELINE = structure(render_ingress(model()))


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_any_path_or_host_stays_one_token(value: str) -> None:
    m = model()
    server = next(s for s in m["servers"] if s["host"] == "a.local")
    server["host"] = value
    server["locations"][0]["path"] = value
    m["upstreams"][0]["endpoints"] = [value]
    try:
        text = render_ingress(m)
    except Unsafe:
        assert any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
        return
    assert structure(text) == BASELINE
    assert value in [t for t, _ in tokens(text)]


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_any_endpoint_in_a_service_proxy_stays_one_token(value: str) -> None:
    baseline = structure(render_service_proxy("default", "web", [{"port": 80, "protocol": "TCP", "endpoints": ["x"]}]))
    try:
        text = render_service_proxy("default", "web", [{"port": 80, "protocol": "TCP", "endpoints": [value]}])
    except Unsafe:
        return
    assert structure(text) == baseline and value in [t for t, _ in tokens(text)]
