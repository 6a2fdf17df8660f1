"""The gateway's sections of config.yaml (gateway, platforms, access) as frozen values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.access import AccessPolicy, Role
from gateway.errors import ConfigError


@dataclass(frozen=True, slots=True)
class NotifierSettings:
    """How the notifier polls and retries."""

    poll_ms: int = 100
    max_attempts: int = 8
    backoff_base_s: int = 5
    backoff_cap_s: int = 600
    claim_lease_s: int = 60
    #: The fewest milliseconds between two progress edits in one chat.
    progress_min_interval_ms: int = 1000


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the gateway runs."""

    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    access: AccessPolicy = field(default_factory=AccessPolicy)
    notifier: NotifierSettings = field(default_factory=NotifierSettings)
    max_reply_parts: int = 5
    #: How long a platform connection's or the leader's lease lasts without a renewal.
    lease_s: int = 15

    @property
    def enabled_platforms(self) -> list[str]:
        """Platforms to start; the console when none is configured."""
        names = [n for n, c in self.platforms.items() if c.get("enabled", True) is not False]
        return names or ["console"]


def load_gateway_config(path: Path | None) -> GatewayConfig:
    """The gateway's sections of the validated file; no file means the console default."""
    if path is None or not path.is_file():
        return GatewayConfig()
    from kanban_core import KanbanError
    from kanban_core.config.model import load_file

    try:
        document: Any = load_file(path)
    except KanbanError as exc:
        raise ConfigError(str(exc).splitlines()) from None
    gateway = document.gateway
    platforms = {
        name: section.model_dump(exclude_unset=True)
        for name, section in document.platforms
        if section is not None
    }
    access = document.access
    return GatewayConfig(
        platforms=platforms,
        access=AccessPolicy(
            users={key: Role[role.upper()] for key, role in access.users.items()},
            console_role=Role[access.console.upper()],
            answer_role=Role[document.permissions.answer_role.upper()],
        ),
        notifier=NotifierSettings(
            poll_ms=gateway.notify_poll_ms,
            max_attempts=gateway.notify_max_attempts,
            backoff_base_s=gateway.notify_backoff_base_seconds,
            backoff_cap_s=gateway.notify_backoff_cap_seconds,
            claim_lease_s=gateway.notify_claim_lease_seconds,
            progress_min_interval_ms=gateway.progress_min_interval_ms,
        ),
        max_reply_parts=gateway.max_reply_parts,
        lease_s=gateway.lease_seconds,
    )
