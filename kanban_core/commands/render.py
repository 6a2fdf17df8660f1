"""Plain-text rendering of command documents for a terminal: aligned tables, no colour."""

from __future__ import annotations

import functools
import json
import unicodedata
from collections.abc import Sequence

from kanban_core.commands.result import Block, CommandResult, Heading, Table, Text


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
    # Column by column: one width per cell, and plain ASCII (nearly every cell) needs no
    # per-character lookup; a board of ten thousand rows renders in a few milliseconds.
    columns = list(zip(*rows, strict=True))
    padded: list[Sequence[str]] = []
    for column in columns[:last]:
        widths = [len(cell) if cell.isascii() else display_width(cell) for cell in column]
        width = max(widths)
        padded.append(
            [cell + " " * (width - used) for cell, used in zip(column, widths, strict=True)]
        )
    padded.append(columns[last])
    return "\n".join("  ".join(cells).rstrip() for cells in zip(*padded, strict=True))


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


def render_result(result: CommandResult) -> tuple[str, str]:
    """A result as a terminal shows it: (stdout, stderr) — JSON or text, one-line errors."""
    out = []
    if result.as_json:
        out.append(json.dumps(result.data, indent=2, ensure_ascii=False) + "\n")
    elif result.blocks:
        out.append(render_blocks(result.blocks) + "\n")
    out += [attached.content.decode("utf-8", errors="replace") for attached in result.files]
    # An error listing several problems (an invalid config file) is one line per problem.
    errors = [line for error in result.errors for line in error.splitlines() or [""]]
    return "".join(out), "".join(f"kanban: {line}\n" for line in errors)
