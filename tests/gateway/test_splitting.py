"""split_text: platform-sized parts on line boundaries, a hard cut only for an over-long line."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from gateway.splitting import split_text

FOOTER = "… (cut)"


def split(text: str, limit: int = 20, max_parts: int = 10) -> list[str]:
    return split_text(text, limit, max_parts=max_parts, footer=FOOTER)


def test_short_text_is_one_part():
    assert split("hello\nworld") == ["hello\nworld"]
    assert split("x" * 20) == ["x" * 20]  # exactly at the limit


def test_parts_break_at_line_ends():
    text = "alpha one\nbravo two\ncharlie 3\ndelta four"
    parts = split(text, limit=20)
    assert parts == ["alpha one\nbravo two", "charlie 3\ndelta four"]
    assert "\n".join(parts) == text


def test_a_line_longer_than_the_limit_is_cut_hard():
    text = "short\n" + "x" * 45 + "\nafter"
    parts = split(text, limit=20)
    assert parts == ["short", "x" * 20, "x" * 20, "x" * 5 + "\nafter"]


def test_more_parts_than_allowed_end_with_the_footer():
    lines = [f"line {i:02d} ........" for i in range(12)]  # 16 characters each
    parts = split("\n".join(lines), limit=40, max_parts=3)
    assert len(parts) == 3
    assert parts[:2] == ["\n".join(lines[0:2]), "\n".join(lines[2:4])]
    assert parts[2].endswith("\n" + FOOTER)
    assert parts[2].startswith(lines[4])
    assert all(len(p) <= 40 for p in parts)


def test_the_footer_fits_even_when_the_last_part_is_one_long_line():
    parts = split("y" * 200, limit=20, max_parts=2)
    assert len(parts) == 2
    assert parts[1].endswith(FOOTER)
    assert len(parts[1]) <= 20


def test_empty_text_is_a_single_empty_part():
    assert split("") == [""]


def test_a_limit_that_cannot_hold_the_footer_is_refused():
    with pytest.raises(ValueError, match="footer"):
        split_text("text", len(FOOTER), max_parts=2, footer=FOOTER)


lines = st.lists(st.text(alphabet="ab \u00e9", max_size=30), min_size=1, max_size=30)


@given(lines=lines, limit=st.integers(min_value=10, max_value=40))
def test_parts_fit_and_nothing_is_lost_when_nothing_is_cut(lines, limit):
    text = "\n".join(lines)
    parts = split_text(text, limit, max_parts=1_000, footer=FOOTER)
    assert all(len(p) <= limit for p in parts)
    if all(len(line) <= limit for line in lines):
        # Every line survives whole and in order (a blank line at a part's edge may be dropped).
        assert [line for line in "\n".join(parts).split("\n") if line] == [
            line for line in lines if line
        ]
    else:
        assert "".join(parts).replace("\n", "") == text.replace("\n", "")


@given(
    lines=lines,
    limit=st.integers(min_value=10, max_value=40),
    max_parts=st.integers(min_value=1, max_value=4),
)
def test_capped_parts_fit_and_say_they_were_cut(lines, limit, max_parts):
    text = "\n".join(lines)
    every = split_text(text, limit, max_parts=1_000, footer=FOOTER)
    parts = split_text(text, limit, max_parts=max_parts, footer=FOOTER)
    assert all(len(p) <= limit for p in parts)
    if len(every) <= max_parts:
        assert parts == every
    else:
        assert len(parts) == max_parts
        assert parts[-1].endswith(FOOTER)
        assert parts[:-1] == every[: max_parts - 1]
