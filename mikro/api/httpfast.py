"""Request headers read without the e-mail parser: the API server's share of `http.server`.

`BaseHTTPRequestHandler.parse_request` hands the header block to `email.parser`, a general
MIME parser: about 55 µs of a create's ~1 ms of CPU under `bench/run api`, more than the TLS
record's decryption. The headers clients send are plain `Name: value` lines; those are read
here into the same `http.client.HTTPMessage` the e-mail parser makes (same names, values,
order). Any other line (a folded continuation, a name with spaces, a line break the e-mail
parser would split on) sends the whole block to the e-mail parser, so the result is always
the standard library's. `date_time_string` is formatted once per second.
"""

from __future__ import annotations

import email.parser
import email.utils
import http.client
import re
import time
from http import HTTPStatus
from typing import Any

# One header line as the e-mail parser reads it without surprises: a name of the characters
# its header pattern allows (printable ASCII but ':' and space), the value with no character
# `str.splitlines` breaks on (which that parser splits the block with), then the line's end.
_FIELD = re.compile(rb"([!-9;-~]+):[ \t]*([^\r\n\x0b\x0c\x1c\x1d\x1e\x85]*)(?:\r\n|\n)?")


class Headers(http.client.HTTPMessage):
    """The standard library's request headers; `get` reads the list without the policy's
    per-value parsing (a no-op for text decoded as ISO-8859-1, which has no surrogates)."""

    def get(self, name: str, failobj: Any = None) -> Any:  # type: ignore[override]
        name = name.lower()
        for key, value in self._headers:  # type: ignore[attr-defined]
            if key.lower() == name:
                return value
        return failobj


def parse_headers(lines: list[bytes]) -> http.client.HTTPMessage:
    """The header block (its lines as `http.client._read_headers` reads them, the blank line
    that ends it included) as `http.client.parse_headers` would answer it."""
    message = Headers()
    fields = message._headers  # type: ignore[attr-defined]
    for line in lines[:-1] if lines and lines[-1] in (b"\r\n", b"\n", b"") else lines:
        m = _FIELD.fullmatch(line)
        if m is None:
            text = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=Headers).parsestr(text)
        fields.append((m.group(1).decode("iso-8859-1"), m.group(2).decode("iso-8859-1")))
    message.set_payload("")
    return message


class FastParsing:
    """A mixin for a `BaseHTTPRequestHandler`: `parse_request` as the standard library's
    (Python 3.11-3.13), the header block read by `parse_headers` above."""

    _date: tuple[int, str] = (0, "")

    def date_time_string(self, timestamp: float | None = None) -> str:
        if timestamp is not None:
            return email.utils.formatdate(timestamp, usegmt=True)
        now = int(time.time())
        second, text = FastParsing._date
        if second != now:
            text = email.utils.formatdate(now, usegmt=True)
            FastParsing._date = (now, text)
        return text

    def parse_request(self: Any) -> bool:
        self.command = None  # set in case of error on the first line
        self.request_version = version = self.default_request_version
        self.close_connection = True
        requestline = str(self.raw_requestline, "iso-8859-1")
        requestline = requestline.rstrip("\r\n")
        self.requestline = requestline
        words = requestline.split()
        if len(words) == 0:
            return False
        if len(words) >= 3:  # Enough to determine protocol version
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                base_version_number = version.split("/", 1)[1]
                version_number = base_version_number.split(".")
                if len(version_number) != 2:
                    raise ValueError
                if any(not component.isdigit() for component in version_number):
                    raise ValueError("non digit in http version")
                if any(len(component) > 10 for component in version_number):
                    raise ValueError("unreasonable length http version")
                major_minor = int(version_number[0]), int(version_number[1])
            except (ValueError, IndexError):
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
                return False
            if major_minor >= (1, 1) and self.protocol_version >= "HTTP/1.1":
                self.close_connection = False
            if major_minor >= (2, 0):
                self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({base_version_number})")
                return False
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
            return False
        command, path = words[:2]
        if len(words) == 2:
            self.close_connection = True
            if command != "GET":
                self.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
                return False
        self.command, self.path = command, path
        # gh-87389: a path starting with '//' is not taken for a scheme-less absolute URI.
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")
        try:
            self.headers = parse_headers(http.client._read_headers(self.rfile))  # type: ignore[attr-defined]
        except http.client.LineTooLong as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Line too long", str(err))
            return False
        except http.client.HTTPException as err:
            self.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "Too many headers", str(err))
            return False
        conntype = self.headers.get("Connection", "")
        if conntype.lower() == "close":
            self.close_connection = True
        elif conntype.lower() == "keep-alive" and self.protocol_version >= "HTTP/1.1":
            self.close_connection = False
        expect = self.headers.get("Expect", "")
        if (
            expect.lower() == "100-continue"
            and self.protocol_version >= "HTTP/1.1"
            and self.request_version >= "HTTP/1.1"
        ):
            if not self.handle_expect_100():
                return False
        return True
