"""Plain-text rendering of command documents for a terminal: aligned tables, no colour."""

from __future__ import annotations

import functools
import unicodedata

from kanban_core.commands.result import Block, Heading, Table, Text


@functools.lru_cache(maxsize=4096)  # status icons and repeated names recur on every row
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
    last = len(table.columns) - 1
    # Each cell's width once; plain ASCII (nearly every cell) needs no per-character lookup.
    widths_of = [
        [len(cell) if cell.isascii() else display_width(cell) for cell in row[:last]]
        for row in rows
    ]
    widths = [max(col) for col in zip(*widths_of, strict=True)] if last else []
    lines = []
    for row, cell_widths in zip(rows, widths_of, strict=True):
        cells = [
            cell + " " * (width - used)
            for cell, used, width in zip(row, cell_widths, widths, strict=False)
        ]
        cells.append(row[last])
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
