"""The gateway's sections of config.yaml (gateway, platforms, access), every problem listed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.access import AccessPolicy, Role
from gateway.errors import ConfigError

_GATEWAY_KEYS = {
    "notify_poll_ms",
    "notify_max_attempts",
    "notify_backoff_base_seconds",
    "notify_backoff_cap_seconds",
    "notify_claim_lease_seconds",
    "max_reply_parts",
}
#: Keys that look like they hold a secret; the file may only name an environment variable.
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "api_key", "apikey", "key")
_KNOWN_TOP = {
    "board", "dispatcher", "assignees", "workspaces", "gateway", "platforms", "access"
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """How the notifier polls and retries."""

    poll_ms: int = 100
    max_attempts: int = 8
    backoff_base_s: int = 5
    backoff_cap_s: int = 600
    claim_lease_s: int = 60


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the gateway runs."""

    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    access: AccessPolicy = field(default_factory=AccessPolicy)
    notifier: NotifierSettings = field(default_factory=NotifierSettings)
    max_reply_parts: int = 5

    @property
    def enabled_platforms(self) -> list[str]:
        """Platforms to start; the console when none is configured."""
        names = [n for n, c in self.platforms.items() if c.get("enabled", True) is not False]
        return names or ["console"]


def load_gateway_config(path: Path | None) -> GatewayConfig:
    """Read the gateway's sections; no file means the console default."""
    if path is None or not path.is_file():
        return GatewayConfig()
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: {exc}"]) from None
    if not isinstance(document, dict):
        raise ConfigError([f"{path}: the top level must be a mapping"])
    problems = [f"{key}: unknown section" for key in sorted(set(document) - _KNOWN_TOP)]
    gateway = _mapping(document, "gateway", problems)
    problems += [f"gateway.{k}: unknown key" for k in sorted(set(gateway) - _GATEWAY_KEYS)]
    notifier = NotifierSettings(
        poll_ms=_int(gateway, "notify_poll_ms", 100, "gateway", problems),
        max_attempts=_int(gateway, "notify_max_attempts", 8, "gateway", problems),
        backoff_base_s=_int(gateway, "notify_backoff_base_seconds", 5, "gateway", problems),
        backoff_cap_s=_int(gateway, "notify_backoff_cap_seconds", 600, "gateway", problems),
        claim_lease_s=_int(gateway, "notify_claim_lease_seconds", 60, "gateway", problems),
    )
    platforms: dict[str, Mapping[str, Any]] = {}
    for name, section in _mapping(document, "platforms", problems).items():
        if not isinstance(section, dict):
            problems.append(f"platforms.{name}: must be a mapping")
            continue
        for key, value in section.items():
            if key.endswith(_SECRET_SUFFIXES) and not key.endswith("_env"):
                problems.append(
                    f"platforms.{name}.{key}: secrets never go in the file; "
                    f"name the environment variable with {key}_env"
                )
            elif key == "enabled" and not isinstance(value, bool):
                problems.append(f"platforms.{name}.enabled: must be true or false")
        platforms[str(name)] = section
    access = _access(_mapping(document, "access", problems), problems)
    parts = _int(gateway, "max_reply_parts", 5, "gateway", problems)
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return GatewayConfig(
        platforms=platforms, access=access, notifier=notifier, max_reply_parts=parts
    )


def _access(section: dict[str, Any], problems: list[str]) -> AccessPolicy:
    users: dict[str, Role] = {}
    raw_users = section.get("users") or {}
    if not isinstance(raw_users, dict):
        problems.append("access.users: must map platform:user_id to a role")
        raw_users = {}
    for key, role in raw_users.items():
        where = f"access.users.{key}"
        if not isinstance(key, str) or ":" not in key or not key.split(":", 1)[1]:
            problems.append(f"{where}: name users as platform:user_id (e.g. telegram:12345)")
            continue
        try:
            users[key.lower().split(":", 1)[0] + ":" + key.split(":", 1)[1]] = Role[
                str(role).upper()
            ]
        except KeyError:
            problems.append(f"{where}: role must be viewer, operator, approver or admin")
    console = str(section.get("console", "admin")).upper()
    if console not in Role.__members__:
        problems.append("access.console: role must be viewer, operator, approver or admin")
        console = "ADMIN"
    unknown = set(section) - {"users", "console"}
    problems += [f"access.{k}: unknown key" for k in sorted(unknown)]
    return AccessPolicy(users=users, console_role=Role[console])


def _mapping(document: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, Any]:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be a mapping")
        return {}
    return value


def _int(
    section: Mapping[str, Any], key: str, default: int, where: str, problems: list[str]
) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        problems.append(f"{where}.{key}: must be a positive whole number")
        return default
    return value
