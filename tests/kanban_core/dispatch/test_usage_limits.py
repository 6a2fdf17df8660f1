"""Recognising usage-limit messages and their reset times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kanban_core.dispatch import usage_limits

NOW_MS = int(datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp() * 1000)


def test_claude_code_epoch_reset_is_parsed() -> None:
    epoch = NOW_MS // 1000 + 3600
    found = usage_limits.detect(f"Claude AI usage limit reached|{epoch}", now_ms=NOW_MS)
    assert found is not None
    assert found.resume_at_ms == epoch * 1000
    assert "usage limit reached" in found.message


@pytest.mark.parametrize(
    "text",
    [
        "Error: Usage Limit exceeded for this organisation",
        "RATE LIMIT REACHED, slow down",
        "openai: Quota exceeded for model",
        "Your limit will reset tomorrow",
        "You've hit your usage limit. Upgrade to Pro.",
    ],
)
def test_known_phrasings_match_without_a_reset(text: str) -> None:
    found = usage_limits.detect(text, now_ms=NOW_MS)
    assert found is not None
    assert found.resume_at_ms is None


def test_iso_reset_time() -> None:
    found = usage_limits.detect("usage limit reached; resets 2026-12-05T14:05:00Z", now_ms=NOW_MS)
    assert found is not None
    assert found.resume_at_ms == int(datetime(2026, 12, 5, 14, 5, tzinfo=UTC).timestamp() * 1000)


def test_try_again_at_a_clock_time_is_the_next_such_time() -> None:
    found = usage_limits.detect("Too many requests, try again at 2:05 pm", now_ms=NOW_MS)
    assert found is not None
    assert found.resume_at_ms == int(datetime(2026, 12, 5, 14, 5, tzinfo=UTC).timestamp() * 1000)
    earlier = usage_limits.detect("try again at 11:00", now_ms=NOW_MS)
    assert earlier is not None
    assert earlier.resume_at_ms == int(datetime(2026, 12, 6, 11, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "all tests passed",
        "limit the output to 10 lines",
        "rate limiter configured",
        "\x00\xff" * 5000,
        "usage" + " " * 100000 + "limit",
    ],
)
def test_ordinary_or_garbage_text_is_not_a_limit(text: str | None) -> None:
    assert usage_limits.detect(text, now_ms=NOW_MS) is None


@pytest.mark.parametrize(
    "text",
    [
        "Claude AI usage limit reached|0000000001",  # the past
        "Claude AI usage limit reached|99999999999",  # centuries ahead
        "usage limit; resets 2026-13-45T99:99:00Z",  # not a date
        "usage limit; try again at 25:61",
        "usage limit; try again at 13:05 pm",
    ],
)
def test_implausible_reset_times_fall_back_to_the_backoff(text: str) -> None:
    found = usage_limits.detect(text, now_ms=NOW_MS)
    assert found is not None
    assert found.resume_at_ms is None


def test_only_the_tail_of_a_huge_text_is_scanned() -> None:
    text = "usage limit reached\n" + "x" * (usage_limits.MAX_SCAN_CHARS + 10)
    assert usage_limits.detect(text, now_ms=NOW_MS) is None
    found = usage_limits.detect("x" * 10**6 + "\nquota exceeded", now_ms=NOW_MS)
    assert found is not None
    assert found.message == "quota exceeded"
