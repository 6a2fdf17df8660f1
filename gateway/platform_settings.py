"""How an adapter declares its section of config.yaml: a pydantic model, checked by the gateway.

Adapters subclass ``PlatformSettings`` in a module that does not import their SDK, and register
it under the ``kanban_gateway.adapter_settings`` entry points with the platform's name. The
gateway validates every ``platforms.<name>`` section against it (an unknown key is an error with
its key path) before any adapter is built, and hands the adapter its section.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from gateway.errors import AdapterError

SETTINGS_GROUP = "kanban_gateway.adapter_settings"
Settings = TypeVar("Settings", bound="PlatformSettings")


def matching(pattern: str, requirement: str) -> Callable[[str], str]:
    """A check that a string matches ``pattern``; its error says ``requirement`` in words."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(requirement)
        return value

    return check


#: The root of an HTTP(S) server: the adapter appends its API path.
HttpUrl = Annotated[str, AfterValidator(matching(r"https?://\S+", "must be an http(s):// URL"))]
#: A websocket URL.
WsUrl = Annotated[str, AfterValidator(matching(r"wss?://\S+", "must be a ws(s):// URL"))]


class PlatformSettings(BaseModel):
    """A platform's section: known keys only, values of the declared type, never coerced.

    Every platform's ``api_base_url`` (where it has one) is the server's root URL — scheme, host,
    port and any path prefix of a proxy — and the adapter appends the platform's own API path.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    #: Owned by the gateway: a listed platform starts unless this is false.
    enabled: bool = True

    def secret_env(self) -> list[str]:
        """The environment variables this platform's secrets must be in (``kanban doctor``):
        by default every ``*_env`` key; an adapter whose needs depend on a mode narrows it."""
        return [str(v) for k, v in self.model_dump().items() if k.endswith("_env") and v]

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # ``key:`` with nothing after it is YAML null: the default, as everywhere in the file.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data

    @classmethod
    def from_section(cls: type[Settings], section: Mapping[str, object], platform: str) -> Settings:
        """Validate a section given directly (the gateway has already checked the file's)."""
        try:
            return cls.model_validate(dict(section))
        except ValidationError as exc:
            problems = [
                f"{platform}.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            ]
            raise AdapterError(
                f"invalid {platform} configuration: " + "; ".join(problems)
            ) from None
