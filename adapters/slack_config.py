"""The Slack adapter's section of config.yaml, declared (no SDK import: the gateway reads it)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, Field

from gateway.platform_settings import HttpUrl, PlatformSettings, matching

DEFAULT_API_BASE_URL: Final = "https://slack.com"
#: The Web API path, appended to ``api_base_url`` (the SDK joins it with the method name).
API_PATH: Final = "/api/"

Mode = Literal["http", "socket"]
EnvName = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, Field(gt=0)]


def _slash(command: str) -> str:
    return command if command.startswith("/") else "/" + command


class SlackConfig(PlatformSettings):
    """``platforms.slack``; secrets are the names of environment variables, not values."""

    mode: Mode = "socket"
    # Names of environment variables, not secrets.
    bot_token_env: EnvName = "SLACK_BOT_TOKEN"  # noqa: S105
    app_token_env: EnvName = "SLACK_APP_TOKEN"  # noqa: S105
    signing_secret_env: EnvName = "SLACK_SIGNING_SECRET"  # noqa: S105
    listen_host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    listen_port: Annotated[int, Field(ge=0, le=65535)] = 3000
    path: Annotated[str, AfterValidator(matching(r"/\S*", "must start with /"))] = "/slack/events"
    # The Web API server's root (a proxy, a test fake); the adapter appends /api/.
    api_base_url: HttpUrl = DEFAULT_API_BASE_URL
    command: Annotated[str, Field(min_length=1), AfterValidator(_slash)] = "/kanban"
    connect_timeout: Seconds = 30.0
    drain_timeout: Seconds = 5.0

    def secret_env(self) -> list[str]:
        """The bot token, and the app token (socket mode) or signing secret (http mode)."""
        second = self.app_token_env if self.mode == "socket" else self.signing_secret_env
        return [self.bot_token_env, second]

    @property
    def command_word(self) -> str:
        """``kanban``: the word that must follow ``@bot`` in a mention."""
        return self.command.lstrip("/")

    @property
    def api_url(self) -> str:
        """What the SDK's Web API calls go to (it needs the trailing slash)."""
        return self.api_base_url.rstrip("/") + API_PATH
