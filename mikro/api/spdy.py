"""SPDY/3.1 framing, the part kubectl's port-forward needs (kubectl 1.31+ tunnels it through a
WebSocket with the subprotocol `SPDY/3.1+portforward.k8s.io`; older kubectl speaks it bare).

Pure: frames in, frames out. Only what a port-forward server uses is decoded (SYN_STREAM with
its header block, DATA, RST_STREAM, PING, GOAWAY); SETTINGS and WINDOW_UPDATE are read and
ignored, as client-go's spdystream ignores flow control. No Python SPDY library is kept up
(the few on PyPI are abandoned since 2012-2021), so this small framer is mikro's own.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
VERSION = 3
MAX_FRAME = 1 << 24  # the length field's size; kubectl never comes near it

# The SPDY/3 header compression dictionary (a constant of the protocol: draft 3, section 2.6.10.1).
DICTIONARY = (
    b"\x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04p"
    b"ost\x00\x00\x00\x03put\x00\x00\x00\x06delete\x00\x00\x00\x05trac"
    b"e\x00\x00\x00\x06accept\x00\x00\x00\x0eaccept-charset\x00\x00\x00"
    b"\x0faccept-encoding\x00\x00\x00\x0faccept-language\x00\x00\x00\ra"
    b"ccept-ranges\x00\x00\x00\x03age\x00\x00\x00\x05allow\x00\x00\x00\r"
    b"authorization\x00\x00\x00\rcache-control\x00\x00\x00\nconnection"
    b"\x00\x00\x00\x0ccontent-base\x00\x00\x00\x10content-encoding"
    b"\x00\x00\x00\x10content-language\x00\x00\x00\x0econtent-leng"
    b"th\x00\x00\x00\x10content-location\x00\x00\x00\x0bcontent-md"
    b"5\x00\x00\x00\rcontent-range\x00\x00\x00\x0ccontent-type\x00\x00"
    b"\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect"
    b"\x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04h"
    b"ost\x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since"
    b"\x00\x00\x00\rif-none-match\x00\x00\x00\x08if-range\x00\x00\x00"
    b"\x13if-unmodified-since\x00\x00\x00\rlast-modified\x00\x00\x00"
    b"\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\x00"
    b"\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization"
    b"\x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretr"
    b"y-after\x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07t"
    b"railer\x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgra"
    b"de\x00\x00\x00\nuser-agent\x00\x00\x00\x04vary\x00\x00\x00\x03"
    b"via\x00\x00\x00\x07warning\x00\x00\x00\x10www-authenticate\x00\x00"
    b"\x00\x06method\x00\x00\x00\x03get\x00\x00\x00\x06statu"
    b"s\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\x00\x00\x00\x08HT"
    b"TP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\x00\x00\x00\nset-c"
    b"ookie\x00\x00\x00\nkeep-alive\x00\x00\x00\x06origin100101201202205"
    b"2063003023033043053063074024054064074084094104114124134144154164"
    b"17502504505203 Non-Authoritative Information204 No Content301 Mo"
    b"ved Permanently400 Bad Request401 Unauthorized403 Forbidden404 N"
    b"ot Found500 Internal Server Error501 Not Implemented503 Service "
    b"UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:0"
    b"0:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,ima"
    b"ge/png,image/jpg,image/gif,application/xml,application/xhtml+xml"
    b",text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sd"
    b"chcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)


class ProtocolError(Exception):
    pass


@dataclass
class Frame:
    """A decoded frame: `control` frames carry a `kind`, DATA frames carry `data`."""

    control: bool
    kind: int
    flags: int
    stream_id: int
    data: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0

    @property
    def fin(self) -> bool:
        return bool(self.flags & FLAG_FIN)


def decode_header_block(block: bytes) -> dict[str, str]:
    """A decompressed header block: 32-bit count, then 32-bit length-prefixed names and values."""
    headers: dict[str, str] = {}
    try:
        (count,) = struct.unpack_from(">I", block, 0)
        pos = 4
        for _ in range(count):
            (n,) = struct.unpack_from(">I", block, pos)
            name = block[pos + 4 : pos + 4 + n].decode("latin-1")
            pos += 4 + n
            (v,) = struct.unpack_from(">I", block, pos)
            value = block[pos + 4 : pos + 4 + v].decode("latin-1")
            pos += 4 + v
            headers[name.lower()] = value.split("\x00")[0]
    except struct.error:
        raise ProtocolError("truncated header block") from None
    return headers


def encode_header_block(headers: dict[str, str]) -> bytes:
    out = struct.pack(">I", len(headers))
    for name, value in headers.items():
        n, v = name.lower().encode("latin-1"), value.encode("latin-1")
        out += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
    return out


class Framer:
    """One side of a SPDY connection: parses what arrives, encodes what goes out. The header
    (de)compressors run across the whole connection, as the protocol requires."""

    def __init__(self) -> None:
        self.buffer = b""
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(9, zlib.DEFLATED, 15, zdict=DICTIONARY)

    def feed(self, data: bytes) -> list[Frame]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 8:
            first, second = struct.unpack_from(">II", self.buffer, 0)
            length = second & 0xFFFFFF
            if len(self.buffer) < 8 + length:
                break
            payload = self.buffer[8 : 8 + length]
            self.buffer = self.buffer[8 + length :]
            flags = second >> 24
            if first & 0x80000000:
                version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
                if version != VERSION:
                    raise ProtocolError(f"SPDY version {version} is not supported")
                frames.append(self._control(kind, flags, payload))
            else:
                frames.append(Frame(False, 0, flags, first & 0x7FFFFFFF, data=payload))
        return frames

    def _control(self, kind: int, flags: int, payload: bytes) -> Frame:
        try:
            if kind == SYN_STREAM:
                (sid,) = struct.unpack_from(">I", payload, 0)
                block = self._inflate.decompress(payload[10:])
                return Frame(True, kind, flags, sid & 0x7FFFFFFF, headers=decode_header_block(block))
            if kind in (SYN_REPLY, HEADERS):
                (sid,) = struct.unpack_from(">I", payload, 0)
                block = self._inflate.decompress(payload[4:])
                return Frame(True, kind, flags, sid & 0x7FFFFFFF, headers=decode_header_block(block))
            if kind in (RST_STREAM, WINDOW_UPDATE):
                sid, value = struct.unpack_from(">II", payload, 0)
                return Frame(True, kind, flags, sid & 0x7FFFFFFF, status=value)
            if kind == GOAWAY:
                sid, status = struct.unpack_from(">II", payload, 0)
                return Frame(True, kind, flags, sid & 0x7FFFFFFF, status=status)
            if kind == PING:
                (ping_id,) = struct.unpack_from(">I", payload, 0)
                return Frame(True, kind, flags, 0, status=ping_id)
        except (struct.error, zlib.error) as exc:
            raise ProtocolError(f"malformed control frame {kind}: {exc}") from None
        return Frame(True, kind, flags, 0, data=payload)  # SETTINGS and the rest: read, ignored

    @staticmethod
    def _control_frame(kind: int, flags: int, payload: bytes) -> bytes:
        return struct.pack(">HHI", 0x8000 | VERSION, kind, (flags << 24) | len(payload)) + payload

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        block = self._deflate.compress(encode_header_block(headers or {})) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
        return self._control_frame(SYN_REPLY, FLAG_FIN if fin else 0, struct.pack(">I", stream_id) + block)

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control_frame(PING, 0, struct.pack(">I", ping_id))

    def goaway(self, last_stream_id: int, status: int = 0) -> bytes:
        return self._control_frame(GOAWAY, 0, struct.pack(">II", last_stream_id, status))

    @staticmethod
    def data(stream_id: int, data: bytes, fin: bool = False) -> bytes:
        return struct.pack(">II", stream_id & 0x7FFFFFFF, ((FLAG_FIN if fin else 0) << 24) | len(data)) + data


def syn_stream(framer_deflate: zlib._Compress, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
    """A client's SYN_STREAM (for tests: what kubectl sends)."""
    block = framer_deflate.compress(encode_header_block(headers)) + framer_deflate.flush(zlib.Z_SYNC_FLUSH)
    payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + block
    return Framer._control_frame(SYN_STREAM, FLAG_FIN if fin else 0, payload)


def client_compressor() -> zlib._Compress:
    return zlib.compressobj(9, zlib.DEFLATED, 15, zdict=DICTIONARY)
