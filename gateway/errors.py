"""The gateway's exception tree.

GatewayError                the gateway cannot do something
 ├── ConfigError            config.yaml is invalid; lists every problem by key path
 └── AdapterError           a chat platform failed (raised by adapters, at their boundary)
      ├── AdapterRateLimited  the platform asked us to wait ``retry_after`` seconds
      └── AdapterRejected     the platform refused for good (chat gone, bot removed)
           └── MessageGone    the message to edit no longer exists (deleted, too old)
"""

from __future__ import annotations


class GatewayError(Exception):
    """The gateway cannot do something."""


class ConfigError(GatewayError):
    """config.yaml is invalid."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class AdapterError(GatewayError):
    """A chat platform failed; the notifier retries these with backoff."""


class AdapterRateLimited(AdapterError):
    """The platform asked us to slow down."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after


class AdapterRejected(AdapterError):
    """The platform refused for good: retrying will not help."""


class MessageGone(AdapterRejected):
    """The message to edit is gone: the caller sends a new one instead."""
