"""Watches an SDK's reconnect log lines: keeps the last error, logs one line, not a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

__all__ = ["ConnectionWatch", "describe"]


class ConnectionWatch(logging.Filter):
    """A filter on the SDK logger that reports each failed connection attempt.

    The SDKs (discord.py, slack_sdk) retry a failed connection by themselves and log every attempt
    with a full traceback; an outage deserves one warning line per attempt. The first failure is
    also how ``start`` learns that the platform cannot be reached at all: until ``connected`` is
    set the record is swallowed, and ``start`` fails with one line of its own.
    """

    def __init__(self, *, logger: str, prefix: str, label: str, target: Callable[[], str]) -> None:
        super().__init__()
        self.logger = logger
        self.prefix = prefix
        self.label = label
        self.target = target
        self.last_error: BaseException | None = None
        self.failed = asyncio.Event()
        self.connected = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(self.prefix)):
            return True
        error = record.exc_info[1] if record.exc_info else None
        self.last_error = error
        self.failed.set()
        delay = record.args[0] if isinstance(record.args, tuple) and record.args else None
        record.msg = "%s: cannot reach %s (%s); retrying" + (
            " in %.2fs" if isinstance(delay, int | float) else ""
        )
        record.args = (self.label, self.target(), describe(error))
        if isinstance(delay, int | float):
            record.args += (float(delay),)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = None
        record.exc_text = None
        return self.connected

    def message(self) -> str:
        """The one line ``start`` fails with."""
        return f"{self.label}: cannot reach {self.target()}: {describe(self.last_error)}"

    def install(self) -> None:
        """Start watching the SDK's logger."""
        logging.getLogger(self.logger).addFilter(self)

    def remove(self) -> None:
        """Stop watching."""
        logging.getLogger(self.logger).removeFilter(self)


def describe(error: BaseException | None) -> str:
    """A short reason: the exception's text, or its type when it has none."""
    if error is None:
        return "connection failed"
    return str(error) or type(error).__name__
