"""What every route reaches: the board, the kernel thread, the command bridge, the event hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from gateway.access import AccessPolicy
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from web.bridge import CommandBridge
from web.config import WebSettings
from web.identity import WebUser

if TYPE_CHECKING:
    from web.events import EventHub


@dataclass(frozen=True, slots=True)
class WebBackend:
    """The app's collaborators (``request.app.state.web``)."""

    board: Kanban
    executor: KernelExecutor
    access: AccessPolicy
    settings: WebSettings
    bridge: CommandBridge
    hub: EventHub
    trusted_origins: frozenset[str]

    @property
    def secure_cookies(self) -> bool:
        """Mark the cookie Secure: the board is served (or proxied) over HTTPS."""
        return self.settings.tls or (self.settings.public_url or "").startswith("https:")


def backend_of(request: Request) -> WebBackend:
    """The app's collaborators, from a request."""
    backend: WebBackend = request.app.state.web
    return backend


def user_of(request: Request) -> WebUser:
    """The signed-in user the session gate found for this request."""
    user: WebUser = request.scope["state"]["web_user"]
    return user
