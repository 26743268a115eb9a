"""kubectl's tabwriter layout of a table. Pure, and imports nothing: `mikro kubectl get`'s
quick path (mikro.cli.quickget) prints with it without loading the printers."""

from __future__ import annotations

from itertools import repeat

TYPE_CHECKING = False  # (the typing module is not imported for it)
if TYPE_CHECKING:
    from collections.abc import Sequence


def format_table(headers: list[str], body: list[list[str]]) -> str:
    """kubectl's tabwriter layout: columns padded to width + 3 spaces, the last one not padded,
    trailing blanks cut."""
    if not body:
        return ""
    count = len(headers)
    if any(len(row) != count for row in body):
        return _format_ragged(headers, body)
    return format_columns(headers, list(zip(*body, strict=True)))


def format_columns(headers: list[str], columns: Sequence[Sequence[str]]) -> str:
    """format_table of a body given column by column (one per header, all as long)."""
    # In C loops, column by column (10 000 rows: ~2.5x faster than a ljust call per cell).
    whole = [(header, *column) for header, column in zip(headers, columns, strict=True)]
    padded = [list(map(str.ljust, column, repeat(max(map(len, column))))) for column in whole[:-1]]
    return "\n".join([line.rstrip() for line in map("   ".join, zip(*padded, whole[-1], strict=True))])


def _format_ragged(headers: list[str], body: list[list[str]]) -> str:
    """The same layout of rows that are not as long as the headers."""
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    lines = []
    for row in [headers, *body]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)
