"""discord.py and network failures as the gateway's AdapterError family."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp
import discord

from gateway import AdapterError, AdapterRateLimited, AdapterRejected

__all__ = ["platform_errors"]


@contextlib.contextmanager
def platform_errors() -> Iterator[None]:
    """Translate discord.py and network failures into the gateway's AdapterError family."""
    try:
        yield
    except discord.RateLimited as exc:
        raise AdapterRateLimited(exc.retry_after, "discord rate limit") from exc
    except (discord.Forbidden, discord.NotFound) as exc:
        raise AdapterRejected(f"discord refused: {exc}") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            # No Via header: Cloudflare, not Discord, is throttling us; discord.py does not retry.
            raise AdapterRateLimited(_retry_after(exc), "discord rate limit") from exc
        raise AdapterError(f"discord: {exc}") from exc
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        raise AdapterError(f"discord: network error: {exc!r}") from exc


def _retry_after(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After")
    try:
        return float(header) if header else 60.0
    except ValueError:
        return 60.0
