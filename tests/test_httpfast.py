"""The API server's header reading (api/httpfast.py) answers what http.client's does."""

from __future__ import annotations

import http.client
import io
import random

import pytest

from mikro.api import httpfast

BLOCKS = [
    b"Host: 127.0.0.1:6443\r\nContent-Type: application/json\r\nAuthorization: Bearer abc\r\n"
    b"Content-Length: 12\r\n\r\n",
    b"\r\n",
    b"",
    b"Host: x\n\n",
    b"A:b\r\nA: c\r\nempty:\r\nspaces:   x  \t \r\n\r\n",
    b"X-Folded: one\r\n  two\r\nNext: 3\r\n\r\n",
    b" leading: continuation\r\nA: b\r\n\r\n",
    b"Bad Name: x\r\nA: b\r\n\r\n",
    b"From someone\r\nA: b\r\n\r\n",
    b"A: b\rc\r\n\r\n",
    b"A: b\x85c\r\nB: \x0bd\r\n\r\n",
    b"A: caf\xe9\r\n\r\n",
    b":novalue\r\nA: b\r\n\r\n",
    b"A: b\r\nno colon here\r\nC: d\r\n\r\n",
    b"A: b",
    b"A: b\r\r\n\r\n",
]


def _stdlib(block: bytes) -> http.client.HTTPMessage:
    return http.client.parse_headers(io.BytesIO(block))


def _fast(block: bytes) -> http.client.HTTPMessage:
    return httpfast.parse_headers(http.client._read_headers(io.BytesIO(block)))  # type: ignore[attr-defined]


def _same(block: bytes) -> None:
    want, got = _stdlib(block), _fast(block)
    assert got.items() == want.items(), block
    assert got.get_payload() == want.get_payload(), block
    assert [type(d) for d in got.defects] == [type(d) for d in want.defects], block
    for name in {k for k, _ in want.items()} | {"host", "missing", "CONTENT-TYPE"}:
        assert got.get(name) == want.get(name), (block, name)
        assert got.get(name, "dflt") == want.get(name, "dflt"), (block, name)
        assert got.get_all(name) == want.get_all(name), (block, name)
    assert got.get_content_type() == want.get_content_type()


@pytest.mark.parametrize("block", BLOCKS)
def test_header_blocks_read_as_the_standard_library_reads_them(block: bytes) -> None:
    _same(block)


def test_random_header_blocks_read_as_the_standard_library_reads_them() -> None:
    rng = random.Random(12)
    alphabet = b"Aa:-_ \t\r\n\x0b\x85\xe9/;=,x1"
    for _ in range(3000):
        lines = []
        for _ in range(rng.randint(0, 5)):
            if rng.random() < 0.7:
                lines.append(
                    b"N%d: %s\r\n" % (rng.randint(0, 3), bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 8))))
                )
            else:
                lines.append(bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) + b"\r\n")
        _same(b"".join(lines) + b"\r\n")


def test_too_many_headers_and_long_lines_are_refused_as_before() -> None:
    with pytest.raises(http.client.HTTPException):
        _fast(b"".join(b"H%d: x\r\n" % i for i in range(101)) + b"\r\n")
    with pytest.raises(http.client.LineTooLong):
        _fast(b"A: " + b"x" * 70000 + b"\r\n\r\n")
