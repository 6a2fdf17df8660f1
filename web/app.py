"""The ASGI application: routes, the session gate in front, JSON errors, the packaged assets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from web import signin, tasks_api, workspaces_api
from web.backend import WebBackend
from web.events import sse_frame
from web.gate import BodyTooLarge, SessionGate
from web.http import ApiError, api_error_handler, error_response

STATIC = Path(__file__).with_name("static")


async def index(_request: Request) -> Response:
    """``GET /``: the board app."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def signin_page(_request: Request) -> Response:
    """``GET /signin``: how to get a login link."""
    return FileResponse(STATIC / "signin.html", headers={"Cache-Control": "no-store"})


async def events(request: Request) -> Response:
    """``GET /api/events?since=ID``: Server-Sent Events, resumable by id (or Last-Event-ID)."""
    raw = request.query_params.get("since") or request.headers.get("last-event-id")
    since: int | None = None
    if raw is not None:
        if not raw.isdigit() or len(raw) > 18:
            raise ApiError(400, "since must be an event id")
        since = int(raw)
    hub = request.app.state.web.hub

    async def frames() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        async for event in hub.stream(since):
            yield sse_frame(event)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def not_found(_request: Request, _exc: Exception) -> Response:
    """Unknown paths are JSON 404s like every other refusal."""
    return error_response(404, "not found")


async def not_allowed(_request: Request, _exc: Exception) -> Response:
    """A known path with the wrong method."""
    return error_response(405, "method not allowed")


async def too_large(_request: Request, _exc: Exception) -> Response:
    """A body that went past the limit while being read."""
    return error_response(413, "the request body is too large")


def routes() -> list[BaseRoute]:
    """Every route of the board (the security tests walk this list)."""
    return [
        Route("/", index, methods=["GET"]),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/auth/link", signin.link_page, methods=["GET"]),
        Route("/auth/link", signin.consume, methods=["POST"]),
        Route("/api/me", signin.me, methods=["GET"]),
        Route("/api/logout", signin.logout, methods=["POST"]),
        Route("/api/events", events, methods=["GET"]),
        *tasks_api.ROUTES,
        *workspaces_api.ROUTES,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


def create_app(backend: WebBackend) -> SessionGate:
    """The board's ASGI app, behind the session gate."""
    app = Starlette(
        routes=routes(),
        exception_handlers={
            ApiError: api_error_handler,
            BodyTooLarge: too_large,
            404: not_found,
            405: not_allowed,
        },
    )
    app.state.web = backend
    return SessionGate(
        app,
        board=backend.board,
        executor=backend.executor,
        access=backend.access,
        max_body=backend.settings.max_body_bytes,
        trusted_origins=backend.trusted_origins,
    )
