"""A real web board on 127.0.0.1 in a thread of its own, for streams and other processes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from gateway.access import AccessPolicy
from gateway.changes import ChangeMonitor
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from web import store
from web.backend import WebBackend
from web.config import WebSettings
from web.server import build_backend, listen, serve


@dataclass
class LiveBoard:
    """A served board: its URL and backend (the hub's counters are readable)."""

    url: str
    backend: WebBackend

    def client(self, board: Kanban, principal: str) -> httpx.Client:
        """An httpx client signed in as ``principal`` with the CSRF header set."""
        with board.db.transaction(write=True) as tx:
            token = store.create_link(tx, principal, ttl_s=60)
        client = httpx.Client(base_url=self.url, timeout=10)
        answer = client.post("/auth/link", data={"token": token})
        assert answer.status_code == 303, answer.text
        client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf_token"]
        return client


@contextmanager
def live_board(board: Kanban, access: AccessPolicy, environ: dict[str, str]) -> Iterator[LiveBoard]:
    """Serve ``board`` with its own change watch until the block ends."""
    settings = WebSettings(enabled=True, port=0)
    sock = listen(settings)
    port = sock.getsockname()[1]
    settings = settings.with_address(None, port)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    stop: asyncio.Event | None = None
    holder: dict[str, WebBackend] = {}

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
        backend = build_backend(board, executor, access, settings, environ=environ)
        holder["backend"] = backend
        changes = ChangeMonitor(board.watch_changes(), executor, on_change=(backend.hub.on_change,))
        watching = asyncio.create_task(changes.run(stop))
        serving = asyncio.create_task(serve(backend, sock, stop))
        await backend.hub.started.wait()
        ready.set()
        await serving
        await watching
        executor.shutdown()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the web board did not start"
    try:
        yield LiveBoard(f"http://127.0.0.1:{port}", holder["backend"])
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)
        loop.close()
        assert not thread.is_alive()
