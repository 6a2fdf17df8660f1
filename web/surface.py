"""The web board as a surface of the gateway: same loop, same change watch, same dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.access import Role
from gateway.errors import ConfigError
from gateway.messages import Document, IncomingMessage
from gateway.surfaces import SurfaceCommand, SurfaceContext
from kanban_core.errors import KanbanError
from web.config import WebSettings, load_web_settings
from web.errors import WebError

if TYPE_CHECKING:
    # The server's stack (starlette, uvicorn) loads only when the board is enabled.
    from web.backend import WebBackend

HINT = "pip install 'kanban-gateway[web]'"


class WebSurface:
    """Serves the board from inside ``kanban gateway``."""

    name = "web"

    def __init__(self, backend: WebBackend, settings: WebSettings) -> None:
        from web.server import listen

        self.backend = backend
        self._sock = listen(settings)
        self.chat_commands: Mapping[str, SurfaceCommand] = {
            "web": SurfaceCommand(
                "A sign-in link to the web board (in a private chat)", self.login_link, private=True
            )
        }

    async def login_link(self, message: IncomingMessage, role: Role) -> Document:
        """``/web``: a single-use sign-in link, sent only into a private chat with the bot."""
        if not message.private:
            return Document.text(
                "⚠ /web answers with a sign-in link, so it only works in a private chat with "
                "me (a direct message), never in a group. Send /web there."
            )
        from web import store

        backend, settings = self.backend, self.backend.settings
        principal = message.user.key

        def make() -> str:
            with backend.board.db.transaction(write=True) as tx:
                return store.create_link(tx, principal, ttl_s=settings.link_ttl_s)

        token = await backend.executor.run(make)
        minutes = settings.link_ttl_s // 60
        return Document.text(
            f"{settings.base_url}/auth/link?token={token}\n"
            f"Signs you in to the web board as {role.name.lower()}; works once, for {minutes} "
            "min. Do not forward it."
        )

    def on_change(self) -> None:
        """Wake the event hub."""
        self.backend.hub.on_change()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until the gateway stops."""
        from web.server import serve

        await serve(self.backend, self._sock, stop)


def create(context: SurfaceContext) -> WebSurface | None:
    """The entry point: a surface when ``web.enabled`` is true, else None."""
    try:
        settings = load_web_settings(context.config_file)
    except KanbanError as exc:
        raise ConfigError(str(exc).splitlines()) from None
    if not settings.enabled:
        return None
    try:
        from web.server import build_backend
    except ImportError as exc:
        raise ConfigError(
            [f"web.enabled needs the web extra ({exc.name} is missing): {HINT}"]
        ) from None

    backend = build_backend(
        context.board,
        context.executor,
        context.access,
        settings,
        environ=context.environ,
        nudge=context.nudge,
        dispatcher=context.dispatcher,
    )
    try:
        return WebSurface(backend, settings)
    except WebError as exc:
        raise ConfigError([str(exc)]) from None
