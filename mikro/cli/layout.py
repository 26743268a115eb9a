"""kubectl's tabwriter layout of a table. Pure, and imports nothing: `mikro kubectl get`'s
quick path (mikro.cli.quickget) prints with it without loading the printers."""

from __future__ import annotations


def format_table(headers: list[str], body: list[list[str]]) -> str:
    """kubectl's tabwriter layout: columns padded to width + 3 spaces, the last one not padded,
    trailing blanks cut."""
    if not body:
        return ""
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
    lines = []
    for row in [headers, *body]:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)
