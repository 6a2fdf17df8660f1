"""Terminal rendering of command documents: display widths, aligned tables, block layout."""

from __future__ import annotations

import pytest

from kanban_core.commands.render import display_width, render_blocks, render_table
from kanban_core.commands.result import Heading, Table, Text


def _columns_start_at_equal_widths(rendered: str, cells: list[str]) -> None:
    """Each line's given cell (after a two-space gap) starts at the same display column."""
    starts = set()
    for line, cell in zip(rendered.splitlines(), cells, strict=True):
        starts.add(display_width(line[: line.index("  " + cell) + 2]))
    assert len(starts) == 1, (rendered, starts)


@pytest.mark.parametrize(
    ("value", "width"),
    [
        ("", 0),
        ("abc", 3),
        ("日本語", 6),
        ("ｱｲ", 2),  # half-width katakana are narrow
        ("\uff21\uff22", 4),  # full-width Latin is wide
        ("🙂", 2),
        ("ok 🚀", 5),
        ("e\u0301", 1),  # a combining accent takes no column
        ("▶ ✓ ⊘", 5),
    ],
)
def test_display_width(value, width):
    assert display_width(value) == width


def test_zero_width_characters_take_no_column():
    # ZERO WIDTH SPACE, ZERO WIDTH JOINER, WORD JOINER and the BOM render as nothing; they turn
    # up in titles pasted from the web and in emoji sequences.
    for invisible in ("\u200b", "\u200d", "\u2060", "\ufeff"):
        assert display_width(f"a{invisible}b") == 2, f"U+{ord(invisible):04X}"


def test_render_table_aligns_columns():
    table = Table(("ID", "STATUS", "TITLE"), (("t1", "ready", "Short"), ("t10", "blocked", "Long")))

    assert render_table(table) == ("ID   STATUS   TITLE\nt1   ready    Short\nt10  blocked  Long")


def test_render_table_aligns_wide_and_emoji_cells():
    table = Table(
        ("NAME", "N", "NOTE"),
        (("日本語", "1", "x"), ("ab", "22", "y"), ("🙂x", "3", "z"), ("cafe\u0301", "4", "w")),
    )

    rendered = render_table(table)

    assert rendered.splitlines() == [
        "NAME    N   NOTE",
        "日本語  1   x",
        "ab      22  y",
        "🙂x     3   z",
        "cafe\u0301    4   w",
    ]
    _columns_start_at_equal_widths(rendered, ["N", "1", "22", "3", "4"])
    _columns_start_at_equal_widths(rendered, ["NOTE", "x", "y", "z", "w"])


def test_the_last_column_is_not_padded_and_lines_have_no_trailing_space():
    table = Table(("A", "B"), (("long value", ""), ("x", "tail")))

    lines = render_table(table).splitlines()

    assert lines == ["A           B", "long value", "x           tail"]
    assert all(line == line.rstrip() for line in lines)


def test_a_table_without_header():
    table = Table(
        ("field", "value"), (("status", "ready"), ("assignee", "coder")), show_header=False
    )

    assert render_table(table) == "status    ready\nassignee  coder"


def test_an_empty_table():
    assert render_table(Table(("A", "B"), ())) == "A  B"
    assert render_table(Table(("A", "B"), (), show_header=False)) == ""


def test_a_one_column_table():
    assert render_table(Table(("ID",), (("t1",), ("t22",)))) == "ID\nt1\nt22"


def test_render_blocks_separates_sections_with_a_blank_line():
    blocks = (
        Heading("t1  Fix it"),
        Table(("k", "v"), (("status", "ready"),), show_header=False),
        Heading("Body"),
        Text("line one\nline two"),
        Heading("Events (last 1 of 1)"),
        Text("event"),
    )

    assert render_blocks(blocks) == (
        "t1  Fix it\nstatus  ready\n\nBody\nline one\nline two\n\nEvents (last 1 of 1)\nevent"
    )


def test_render_blocks_of_nothing():
    assert render_blocks(()) == ""
    assert render_blocks((Text("only"),)) == "only"
