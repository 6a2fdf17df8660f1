"""Recognise an agent's "usage limit reached" message and the reset time it names, if any.

Pure: text in, a verdict out. Agents phrase the limit differently (Claude Code prints
``Claude AI usage limit reached|<epoch seconds>``; others say "rate limit reached", "quota
exceeded", "try again at 14:05"), so matching is by known phrasings, case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

# Input beyond this is ignored: a log tail or an error can be long and hostile.
MAX_SCAN_CHARS = 20_000
# A reset further out than this is not believed (a garbled number); the backoff applies.
MAX_RESET_AHEAD_MS = 7 * 24 * 3600 * 1000

_PHRASES = re.compile(
    r"usage limit|rate limit reached|rate_limit_exceeded|quota exceeded|insufficient_quota"
    r"|limit will reset|you've hit your (?:usage )?limit|you have hit your (?:usage )?limit",
    re.IGNORECASE,
)
_EPOCH = re.compile(r"usage limit reached\|(\d{9,11})\b", re.IGNORECASE)
_ISO = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)",
    re.IGNORECASE,
)
_TRY_AGAIN_AT = re.compile(
    r"(?:try again|resets?|reset) at (\d{1,2}):(\d{2})\s*(am|pm)?(?:\s*\(?UTC\)?)?", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class UsageLimit:
    """A recognised usage limit: the matched message and the reset time when one was named."""

    message: str
    resume_at_ms: int | None


def detect(text: str | None, *, now_ms: int) -> UsageLimit | None:
    """A usage limit reported in ``text``, or None when it reports none."""
    if not text:
        return None
    scanned = text[-MAX_SCAN_CHARS:]
    found = _PHRASES.search(scanned) or _TRY_AGAIN_AT.search(scanned)
    if found is None:
        return None
    return UsageLimit(_line_of(scanned, found.start()), reset_time_ms(scanned, now_ms=now_ms))


def reset_time_ms(text: str, *, now_ms: int) -> int | None:
    """The reset time named in ``text`` (epoch ms), if it is in the future and plausible."""
    for candidate in (_from_epoch(text), _from_iso(text), _from_clock(text, now_ms)):
        if candidate is not None and now_ms < candidate <= now_ms + MAX_RESET_AHEAD_MS:
            return candidate
    return None


def _from_epoch(text: str) -> int | None:
    found = _EPOCH.search(text)
    return int(found.group(1)) * 1000 if found else None


def _from_iso(text: str) -> int | None:
    found = _ISO.search(text)
    if found is None:
        return None
    raw = found.group(1).replace(" ", "T")
    if raw.upper().endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(raw)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # agents report times without a zone in UTC, we assume
    return int(when.timestamp() * 1000)


def _from_clock(text: str, now_ms: int) -> int | None:
    # "try again at 2:05 pm": the next such time of day in UTC.
    found = _TRY_AGAIN_AT.search(text)
    if found is None:
        return None
    hour, minute, half = int(found.group(1)), int(found.group(2)), (found.group(3) or "").lower()
    if half and not 1 <= hour <= 12:
        return None
    if half:
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    now = datetime.fromtimestamp(now_ms / 1000, UTC)
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    at_ms = int(at.timestamp() * 1000)
    return at_ms if at_ms > now_ms else at_ms + 24 * 3600 * 1000


def _line_of(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return text[start : end if end >= 0 else len(text)].strip()[:300]
