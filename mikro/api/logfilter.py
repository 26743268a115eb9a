"""The log options the container runtime does not apply itself: `sinceSeconds`, `sinceTime`
and `limitBytes` (kubectl logs --since, --since-time, --limit-bytes). Pure.

The runtime is asked for timestamped lines when a since option is given; lines older than the
cut are dropped and the timestamps removed again unless the client asked for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mikro.errors import ApiError


@dataclass(frozen=True)
class LogOptions:
    since: datetime | None = None
    limit_bytes: int | None = None
    timestamps: bool = False

    @property
    def runtime_timestamps(self) -> bool:
        return self.timestamps or self.since is not None


def _positive(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise ApiError(400, f'{name}: Invalid value: "{value}": must be an integer') from None
    if number < 1:
        raise ApiError(422, f'PodLogOptions "" is invalid: {name}: Invalid value: {number}: must be greater than 0')
    return number


def parse_time(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f'sinceTime: Invalid value: "{text}": must be RFC 3339') from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def options(query: dict[str, str], now: datetime) -> LogOptions:
    seconds = _positive(query, "sinceSeconds")
    if seconds is not None and query.get("sinceTime"):
        raise ApiError(
            422,
            'PodLogOptions "" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified',
        )
    since = now - timedelta(seconds=seconds) if seconds is not None else None
    if query.get("sinceTime"):
        since = parse_time(query["sinceTime"])
    return LogOptions(since, _positive(query, "limitBytes"), query.get("timestamps") == "true")


def _line_time(line: bytes) -> datetime | None:
    stamp, _, _ = line.partition(b" ")
    text = stamp.decode(errors="replace").rstrip("Z")
    whole, _, fraction = text.partition(".")
    try:
        parsed = datetime.fromisoformat(whole + ("." + fraction[:6] if fraction else "")).replace(tzinfo=UTC)
    except ValueError:
        return None
    return parsed


def _lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


def apply(chunks: Iterator[bytes], opts: LogOptions) -> Iterator[bytes]:
    """Filter the runtime's stream. The first item is b"" once the runtime's first item has
    been read, so that its errors surface before the response starts."""
    first = next(chunks, b"")
    yield b""
    if opts.since is None and opts.limit_bytes is None:
        yield first
        yield from chunks
        return

    def stream() -> Iterator[bytes]:
        yield first
        yield from chunks

    source: Iterator[bytes] = _lines(stream()) if opts.since is not None else stream()
    budget = opts.limit_bytes
    for piece in source:
        if opts.since is not None:
            stamp = _line_time(piece)
            if stamp is not None and stamp < opts.since:
                continue
            if stamp is not None and not opts.timestamps:
                piece = piece.partition(b" ")[2]
        if budget is not None:
            piece = piece[:budget]
            budget -= len(piece)
        if piece:
            yield piece
        if budget is not None and budget <= 0:
            return
