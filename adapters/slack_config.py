"""The Slack adapter's section of config.yaml, validated: mode, env var names, listener, limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from gateway import AdapterError

DEFAULT_API_BASE_URL: Final = "https://slack.com/api/"

Mode = Literal["http", "socket"]


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """The adapter's section of config.yaml, validated; secrets are env var names, not values."""

    mode: Mode = "socket"
    # Names of environment variables, not secrets.
    bot_token_env: str = "SLACK_BOT_TOKEN"  # noqa: S105
    signing_secret_env: str = "SLACK_SIGNING_SECRET"  # noqa: S105
    app_token_env: str = "SLACK_APP_TOKEN"  # noqa: S105
    listen_host: str = "127.0.0.1"
    listen_port: int = 3000
    path: str = "/slack/events"
    api_base_url: str = DEFAULT_API_BASE_URL
    command: str = "/kanban"
    connect_timeout: float = 30.0
    drain_timeout: float = 5.0

    @property
    def command_word(self) -> str:
        """``kanban``: the word that must follow ``@bot`` in a mention."""
        return self.command.lstrip("/")

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> SlackConfig:
        """Validate a config section, naming every bad key at once."""
        problems = [f"slack.{key}: unknown key" for key in config if key not in _CHECKS]
        values: dict[str, Any] = {}
        for key, (check, requirement) in _CHECKS.items():
            if key not in config:
                continue
            value = check(config[key])
            if value is None:
                problems.append(f"slack.{key}: must be {requirement}, not {config[key]!r}")
            else:
                values[key] = value
        if problems:
            raise AdapterError("invalid slack configuration:\n  " + "\n  ".join(problems))
        # The SDK joins base_url and the method name, so the trailing slash is required.
        if not values.get("api_base_url", "/").endswith("/"):
            values["api_base_url"] += "/"
        if not values.get("command", "/").startswith("/"):
            values["command"] = "/" + values["command"]
        return cls(**values)


def _string(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _mode(value: object) -> str | None:
    return value if value in ("http", "socket") else None


def _port(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return None


def _positive(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


_CHECKS: Final[dict[str, tuple[Callable[[object], object], str]]] = {
    "mode": (_mode, "'http' or 'socket'"),
    "bot_token_env": (_string, "an environment variable name"),
    "signing_secret_env": (_string, "an environment variable name"),
    "app_token_env": (_string, "an environment variable name"),
    "listen_host": (_string, "a host name or address"),
    "listen_port": (_port, "an integer 0-65535"),
    "path": (_string, "a URL path"),
    "api_base_url": (_string, "a URL"),
    "command": (_string, "a slash command name"),
    "connect_timeout": (_positive, "a positive number of seconds"),
    "drain_timeout": (_positive, "a positive number of seconds"),
}
