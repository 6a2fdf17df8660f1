"""The Discord adapter's section of config.yaml, declared (no SDK import: the gateway reads it)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import Field

from gateway.platform_settings import HttpUrl, PlatformSettings, WsUrl

DEFAULT_API_BASE_URL: Final = "https://discord.com"
#: The REST API path discord.py speaks, appended to ``api_base_url``.
API_PATH: Final = "/api/v10"


class DiscordSettings(PlatformSettings):
    """``platforms.discord``; the token itself is read from the variable ``token_env`` names."""

    token_env: Annotated[str, Field(min_length=1)] = "DISCORD_BOT_TOKEN"  # noqa: S105 - a name
    # The REST server's root (a proxy, a test fake); the adapter appends /api/v10.
    api_base_url: HttpUrl = DEFAULT_API_BASE_URL
    # The websocket gateway; discord.py's default (wss://gateway.discord.gg) when unset.
    gateway_url: WsUrl | None = None
    message_content: bool = True
    # Verbs offered as autocomplete suggestions; None means the built-in list.
    verbs: list[Annotated[str, Field(min_length=1)]] | None = None
    guild_ready_timeout: Annotated[float, Field(ge=0)] = 2.0

    @property
    def rest_url(self) -> str:
        """What discord.py's requests go to."""
        return self.api_base_url.rstrip("/") + API_PATH
