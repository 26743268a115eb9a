"""kubectl logs --since, --since-time and --limit-bytes, applied to the runtime's stream."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from mikro.api import logfilter
from mikro.errors import ApiError

NOW = datetime(2026, 11, 27, 9, 0, 10, tzinfo=UTC)
# Docker's timestamped lines, split across chunks the way a stream delivers them.
CHUNKS = [
    b"2026-11-27T09:00:00.000000001Z old line\n2026-11-27T09:00:05.5",
    b"00000000Z middle line\n",
    b"2026-11-27T09:00:09.999999999Z new line\n",
]


def run(query: dict[str, str], chunks: list[bytes] | None = None) -> bytes:
    opts = logfilter.options(query, NOW)
    out: Iterator[bytes] = logfilter.apply(iter([b""] + (chunks if chunks is not None else CHUNKS)), opts)
    assert next(out) == b""
    return b"".join(out)


def test_since_seconds_drops_older_lines_and_their_timestamps() -> None:
    assert run({"sinceSeconds": "6"}) == b"middle line\nnew line\n"
    assert run({"sinceSeconds": "1"}) == b"new line\n"


def test_since_time_keeps_timestamps_when_asked() -> None:
    out = run({"sinceTime": "2026-11-27T09:00:05Z", "timestamps": "true"})
    assert out == b"2026-11-27T09:00:05.500000000Z middle line\n2026-11-27T09:00:09.999999999Z new line\n"


def test_limit_bytes_cuts_the_stream() -> None:
    assert run({"limitBytes": "5"}, [b"hello ", b"world\n"]) == b"hello"
    assert run({"limitBytes": "8", "sinceSeconds": "6"}) == b"middle l"


def test_runtime_asked_for_timestamps_only_when_needed() -> None:
    assert logfilter.options({"sinceSeconds": "5"}, NOW).runtime_timestamps
    assert not logfilter.options({"limitBytes": "5"}, NOW).runtime_timestamps


@pytest.mark.parametrize(
    "query",
    [
        {"sinceSeconds": "0"},
        {"sinceSeconds": "x"},
        {"limitBytes": "-1"},
        {"sinceTime": "yesterday"},
        {"sinceSeconds": "5", "sinceTime": "2026-11-27T09:00:05Z"},
    ],
)
def test_bad_options_are_refused(query: dict[str, str]) -> None:
    with pytest.raises(ApiError) as err:
        logfilter.options(query, NOW)
    assert err.value.code in (400, 422)


def test_runtime_errors_surface_on_the_first_read() -> None:
    def failing() -> Iterator[bytes]:
        raise ApiError(400, "previous terminated container not found")
        yield b""

    out = logfilter.apply(failing(), logfilter.options({"limitBytes": "3"}, NOW))
    with pytest.raises(ApiError):
        next(out)
