"""Serving the board with uvicorn inside an event loop someone else owns (the gateway's or ours)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn

from gateway.access import AccessPolicy
from gateway.changes import ChangeMonitor
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from kanban_core.dispatch.dispatcher import Dispatcher
from web.app import create_app
from web.backend import WebBackend
from web.bridge import CommandBridge
from web.config import WebSettings, check_bind
from web.errors import WebError
from web.events import EventHub
from web.gate import origin_of

log = logging.getLogger(__name__)
#: Open streams are closed at shutdown; requests in flight get this long to finish.
GRACEFUL_S = 3


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the process that embeds it owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def build_backend(
    board: Kanban,
    executor: KernelExecutor,
    access: AccessPolicy,
    settings: WebSettings,
    *,
    environ: Mapping[str, str],
    nudge: Any = None,
    dispatcher: Dispatcher | None = None,
) -> WebBackend:
    """The app's collaborators."""
    bridge = CommandBridge(
        board,
        access,
        executor,
        nudge=nudge or (lambda: None),
        dispatcher=dispatcher,
        environ=environ,
    )
    origins = {origin_of(settings.base_url)}
    return WebBackend(
        board=board,
        executor=executor,
        access=access,
        settings=settings,
        bridge=bridge,
        hub=EventHub(board, executor),
        trusted_origins=frozenset(origins),
    )


def listen(settings: WebSettings) -> socket.socket:
    """Bind the listening socket now, so a taken port is a one-line error at start."""
    check_bind(settings)
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    try:
        return socket.create_server((settings.host, settings.port), family=family, backlog=128)
    except OSError as exc:
        raise WebError(f"web: cannot listen on {settings.host}:{settings.port}: {exc}") from None


async def serve(backend: WebBackend, sock: socket.socket, stop: asyncio.Event) -> None:
    """Serve the board on ``sock`` until ``stop`` is set (the hub runs alongside)."""
    settings = backend.settings
    config = uvicorn.Config(
        create_app(backend),
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_S,
        ssl_certfile=settings.tls_cert_file,
        ssl_keyfile=settings.tls_key_file,
    )
    server = _EmbeddedServer(config)
    hub = asyncio.create_task(backend.hub.run(stop), name="web-events")
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="web-server")
    where = sock.getsockname()
    log.info(
        "web board on %s (listening on %s:%s)",
        settings.base_url,
        where[0],
        where[1],
        extra={"action": "web_ready"},
    )
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await hub
        await serving
        sock.close()


async def run_standalone(
    board: Kanban,
    access: AccessPolicy,
    settings: WebSettings,
    environ: Mapping[str, str],
    stop: asyncio.Event,
) -> None:
    """``kanban web``: the board with its own change watch (no dispatcher loop, no chat)."""
    sock = listen(settings)
    executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
    backend = build_backend(board, executor, access, settings, environ=environ)
    changes = ChangeMonitor(board.watch_changes(), executor, on_change=(backend.hub.on_change,))
    watching = asyncio.create_task(changes.run(stop), name="changes")
    try:
        await serve(backend, sock, stop)
    finally:
        await watching
        executor.shutdown()
