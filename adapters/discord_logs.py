"""discord.py's log lines the gateway reshapes: voice warnings dropped, reconnects in one line."""

from __future__ import annotations

import logging
from typing import Final

from adapters.connection_watch import ConnectionWatch

__all__ = ["CLIENT_LOGGER", "connection_watch", "drop_voice_warnings"]

#: discord.py logs both its voice warnings and its reconnect attempts here.
CLIENT_LOGGER: Final = "discord.client"
_VOICE_SUFFIX: Final = "voice will NOT be supported"


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


def connection_watch(url: str) -> ConnectionWatch:
    """A watch on discord.py's "Attempting a reconnect in …s" tracebacks."""
    return ConnectionWatch(
        logger=CLIENT_LOGGER,
        prefix="Attempting a reconnect",
        label="discord",
        target=lambda: f"the gateway at {url}",
    )
