"""The web board as a surface of the gateway: same loop, same change watch, same dispatcher."""

from __future__ import annotations

import asyncio

from gateway.errors import ConfigError
from gateway.surfaces import SurfaceContext
from kanban_core.errors import KanbanError
from web.backend import WebBackend
from web.config import WebSettings, load_web_settings
from web.errors import WebError


class WebSurface:
    """Serves the board from inside ``kanban gateway``."""

    name = "web"

    def __init__(self, backend: WebBackend, settings: WebSettings) -> None:
        from web.server import listen

        self.backend = backend
        self._sock = listen(settings)

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
    from web.server import build_backend

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
