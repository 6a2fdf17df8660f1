"""Plain-text rendering of command documents for a terminal: aligned tables, no colour."""

from __future__ import annotations

import unicodedata

from kanban_core.commands.result import Block, Heading, Table, Text


def display_width(text: str) -> int:
    """Columns a string occupies in a terminal (wide East Asian characters and emoji count 2)."""
    if text.isascii() and text.isprintable():
        return len(text)  # the common case, without a per-character lookup
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Cf", "Mn", "Me"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def render_table(table: Table) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    rows = [table.columns, *table.rows] if table.show_header else list(table.rows)
    if not rows:
        return ""
    ncols = len(table.columns)
    widths = [max(display_width(row[i]) for row in rows) for i in range(ncols - 1)]
    lines = []
    for row in rows:
        cells = [cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row[:-1])]
        cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def render_blocks(blocks: tuple[Block, ...]) -> str:
    """The whole document as text."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append(f"\n{block.text}" if parts else block.text)
        elif isinstance(block, Table):
            parts.append(render_table(block))
        elif isinstance(block, Text):
            parts.append(block.text)
    return "\n".join(parts)
