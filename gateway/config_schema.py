"""The gateway's sections of config.yaml, declared: gateway, access, and platforms.<name>.

Contributed to the one schema of the file through the ``kanban_gateway.config_sections`` entry
points; each platform's keys are declared by its adapter (``gateway.platform_settings``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, create_model

from gateway.platform_settings import SETTINGS_GROUP, PlatformSettings
from kanban_core.config.model import Section
from kanban_core.errors import ValidationError

ADAPTER_GROUP = "kanban_gateway.adapters"
Positive = Annotated[int, Field(gt=0)]
RoleName = Annotated[
    Literal["viewer", "operator", "approver", "admin"],
    BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
]


class GatewaySection(Section):
    """The notifier's polling and retries, and how long replies may get."""

    notify_poll_ms: Positive = 100
    notify_max_attempts: Positive = 8
    notify_backoff_base_seconds: Positive = 5
    notify_backoff_cap_seconds: Positive = 600
    notify_claim_lease_seconds: Positive = 60
    max_reply_parts: Positive = 5
    # Live progress: at most one edit per chat per this many milliseconds.
    progress_min_interval_ms: Positive = 1000
    # Several gateways on one board: how long a platform connection's or the leader's lease
    # lasts without a renewal (a standby takes over within about this after its owner dies).
    lease_seconds: Positive = 15


def _principal(key: str) -> str:
    platform, sep, user = key.partition(":")
    if not sep or not platform or not user:
        raise ValueError("name users as platform:user_id (e.g. telegram:12345)")
    # Platform names are case-folded; user ids are exact (Slack's are case-sensitive).
    return f"{platform.lower()}:{user}"


class AccessSection(Section):
    """Who may use the board from chat; deny by default."""

    users: dict[Annotated[str, AfterValidator(_principal)], RoleName] = Field(default_factory=dict)
    console: RoleName = "admin"


def platforms_section() -> type[Section]:
    """``platforms``: one optional section per installed adapter, with the keys it declares."""
    from importlib.metadata import entry_points

    installed = entry_points()
    models: dict[str, type[PlatformSettings]] = {
        entry.name: PlatformSettings for entry in installed.select(group=ADAPTER_GROUP)
    }
    for entry in installed.select(group=SETTINGS_GROUP):
        try:
            model = entry.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not a traceback
            raise ValidationError(
                f"the schema of platforms.{entry.name} ({entry.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        if isinstance(model, type) and issubclass(model, PlatformSettings):
            models[entry.name] = model
    fields: dict[str, Any] = {name: (models[name] | None, None) for name in sorted(models)}
    platforms: type[Section] = create_model("PlatformsSection", __base__=Section, **fields)
    return platforms
