"""discord.py's log lines the gateway reshapes: voice warnings dropped, reconnect tracebacks cut."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

__all__ = ["CLIENT_LOGGER", "ConnectionWatch", "drop_voice_warnings"]

#: discord.py logs both its voice warnings and its reconnect attempts here.
CLIENT_LOGGER: Final = "discord.client"
_VOICE_SUFFIX: Final = "voice will NOT be supported"
_RECONNECT_PREFIX: Final = "Attempting a reconnect"


class _VoiceWarnings(logging.Filter):
    """Drops the two start-up warnings about missing voice libraries (PyNaCl, davey)."""

    def filter(self, record: logging.LogRecord) -> bool:
        # The gateway never joins a voice channel, so these warn about nothing it uses.
        return not (
            record.levelno == logging.WARNING
            and isinstance(record.msg, str)
            and record.msg.endswith(_VOICE_SUFFIX)
        )


_VOICE_FILTER: Final = _VoiceWarnings()


def drop_voice_warnings() -> None:
    """Install the voice-warning filter on discord.py's client logger (once per process)."""
    logger = logging.getLogger(CLIENT_LOGGER)
    if _VOICE_FILTER not in logger.filters:
        logger.addFilter(_VOICE_FILTER)


class ConnectionWatch(logging.Filter):
    """Watches discord.py's reconnect attempts: keeps the last error, logs it in one line.

    discord.py logs each failed gateway connection with a full traceback before backing off; a
    network outage deserves one warning line per attempt instead. The first failure is also how
    ``start`` learns that the gateway cannot be reached at all.
    """

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.last_error: BaseException | None = None
        self.failed = asyncio.Event()
        #: Until the first connection is up, ``start`` reports a failure itself, in one line.
        self.connected = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not (isinstance(record.msg, str) and record.msg.startswith(_RECONNECT_PREFIX)):
            return True
        error = record.exc_info[1] if record.exc_info else None
        self.last_error = error
        self.failed.set()
        record.msg = "discord: cannot reach the gateway at %s (%s); retrying in %.2fs"
        record.args = (self.url, describe(error), *_delay(record.args))
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return self.connected

    def install(self) -> None:
        """Start watching discord.py's client logger."""
        logging.getLogger(CLIENT_LOGGER).addFilter(self)

    def remove(self) -> None:
        """Stop watching."""
        logging.getLogger(CLIENT_LOGGER).removeFilter(self)


def describe(error: BaseException | None) -> str:
    """A short reason: the exception's text, or its type when it has none."""
    if error is None:
        return "connection failed"
    return str(error) or type(error).__name__


def _delay(args: object) -> tuple[float]:
    if isinstance(args, tuple) and args and isinstance(args[0], int | float):
        return (float(args[0]),)
    return (0.0,)
