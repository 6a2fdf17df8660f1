"""Bot API failures as the gateway's errors, with the bot token kept out of them and of logs."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from gateway import AdapterError, AdapterRateLimited, AdapterRejected

__all__ = ["TokenRedactor", "map_error", "retry_after_seconds", "safe_cause"]

# BadRequest descriptions that mean the destination is gone for good, not a transient failure.
_GONE = ("chat not found", "thread not found", "not enough rights", "have no rights")
# Loggers that print the bot URL (and so the token): httpx logs every request at INFO.
_TOKEN_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")


def map_error(exc: TelegramError, *, token: str, token_env: str, context: str = "") -> AdapterError:
    """``exc`` as rate limited, rejected for good, or another AdapterError, token redacted."""
    redacted = str(exc).replace(token, "<token>") if token else str(exc)
    what = f"telegram: {context + ': ' if context else ''}{redacted}"
    if isinstance(exc, RetryAfter):
        return AdapterRateLimited(retry_after_seconds(exc), what)
    if isinstance(exc, ChatMigrated):
        return AdapterRejected(f"{what} (the group is now chat {exc.new_chat_id})")
    if isinstance(exc, Forbidden):
        return AdapterRejected(what)
    if isinstance(exc, BadRequest) and any(gone in str(exc).lower() for gone in _GONE):
        return AdapterRejected(what)
    if isinstance(exc, InvalidToken):
        return AdapterError(f"telegram: the Bot API rejected the token in {token_env}")
    # NetworkError, TimedOut, other BadRequests, Conflict: the caller may retry later.
    return AdapterError(what)


def safe_cause(exc: TelegramError) -> TelegramError | None:
    """``exc`` to chain into our error, unless it may quote the token."""
    # InvalidToken raised by Bot.initialize() quotes the token; never chain it into our errors.
    return None if isinstance(exc, InvalidToken) else exc


def retry_after_seconds(exc: RetryAfter) -> float:
    """How long flood control asks us to wait, in seconds."""
    # An int of seconds today; a timedelta with PTB_TIMEDELTA=1 and in PTB's next major version.
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class TokenRedactor(logging.Filter):
    """Replaces the bot token in log records: Bot API URLs embed it (``/bot<token>/getMe``)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def install(self) -> None:
        """Filter the loggers that print Bot API URLs."""
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).addFilter(self)

    def remove(self) -> None:
        """Stop filtering them."""
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        """Let every record through, with the token replaced."""
        message = record.getMessage()
        if self._token and self._token in message:
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        return True
