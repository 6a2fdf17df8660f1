"""Slack Web API failures as the gateway's errors, and short reasons that never echo a response."""

from __future__ import annotations

from typing import Final

from slack_sdk.errors import SlackApiError

from gateway import AdapterError, AdapterRateLimited, AdapterRejected

__all__ = ["describe_error", "map_api_error"]

#: Web API errors that retrying cannot fix: the channel is gone or the bot is not in it.
REJECTED_ERRORS: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


def map_api_error(exc: SlackApiError, method: str) -> AdapterError:
    """A Web API failure as the gateway's error: rate limited, rejected for good, or other."""
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = next(
            (value for key, value in headers.items() if str(key).lower() == "retry-after"), None
        )
        return AdapterRateLimited(_seconds(retry_after), f"slack {method} rate limited")
    if error in REJECTED_ERRORS:
        return AdapterRejected(f"slack refused {method}: {error}")
    return AdapterError(f"slack {method} failed: {error or f'HTTP {status}'}")


def _seconds(value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        return 1.0
    return seconds if seconds >= 0 else 1.0


def describe_error(exc: BaseException) -> str:
    """A short reason for a log line or an error message (never the whole response)."""
    # SlackApiError's str() embeds the whole response; the error code is what a human needs.
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"
    return str(exc) or type(exc).__name__
