"""The Telegram adapter's section of config.yaml, declared (no SDK import: the gateway reads it)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from gateway.platform_settings import HttpUrl, PlatformSettings

DEFAULT_API_BASE_URL: Final = "https://api.telegram.org"
DEFAULT_POLL_TIMEOUT: Final = 10


class TelegramSettings(PlatformSettings):
    """``platforms.telegram``; the token itself is read from the variable ``token_env`` names."""

    token_env: Annotated[str, Field(min_length=1)] = "TELEGRAM_BOT_TOKEN"  # noqa: S105 - a name
    # The Bot API server's root (a self-hosted server, a proxy, a test fake); the adapter
    # appends /bot<token>/<method> and /file/bot<token>/<path>.
    api_base_url: HttpUrl = DEFAULT_API_BASE_URL
    poll_timeout: Annotated[int, Field(ge=0)] = DEFAULT_POLL_TIMEOUT
