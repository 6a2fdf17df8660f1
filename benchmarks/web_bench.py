"""Web board measurements: ``GET /api/board`` on a big board, event → open stream latency from
another process, and what fifty open streams cost the server's memory."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks.backends import Backend
from benchmarks.gateway_bench import p99
from benchmarks.seed import BoardMix, seed_board
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress, median
from gateway.access import AccessPolicy, Role
from gateway.changes import ChangeMonitor
from gateway.executor import KernelExecutor
from kanban_core import Actor, Kanban
from web import store
from web.app import create_app
from web.config import WebSettings
from web.gate import COOKIE
from web.server import build_backend, listen, serve

USER = "bench:u1"
ACCESS = AccessPolicy(users={USER: Role.ADMIN})
OPERATOR = Actor(name="bench-operator")
STREAMS = 50
#: Commits the latency row samples, and the pause between them (longer than the debounce, so
#: each is its own burst).
LATENCY_GAP_S = 0.1


def _session(board: Kanban) -> str:
    with board.db.transaction(write=True) as tx:
        token, _ = store.create_session(tx, USER, ttl_s=3600, client="bench")
    return token


def board_endpoint(backend: Backend, sizes: Sizes, log: Progress) -> tuple[float, float]:
    """Median server time of ``GET /api/board`` (session check, reads, JSON) on a big board:
    as the page asks for it (finished columns capped), and with every card."""
    with backend.board() as url:
        log(f"{backend.name}: seeding {sizes.list_board:,} tasks for GET /api/board")
        seed_board(url, BoardMix.realistic(sizes.list_board, todo=sizes.list_board // 10))
        with backend.open(url) as board:
            executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
            web = build_backend(board, executor, ACCESS, WebSettings(), environ={})
            app = create_app(web)
            token = _session(board)

            async def main(query: str) -> list[float]:
                samples = []
                _, body = await _asgi_get(app, "/api/board", token, query)  # warms caches
                for _ in range(sizes.list_repeats):
                    elapsed, body = await _asgi_get(app, "/api/board", token, query)
                    samples.append(elapsed)
                columns = json.loads(body)["columns"]
                assert sum(c["count"] for c in columns) >= sizes.list_board * 0.9, columns
                return samples

            try:
                return (
                    median(asyncio.run(main(""))),
                    median(asyncio.run(main("finished=100000"))),
                )
            finally:
                executor.shutdown()


async def _asgi_get(app: Any, path: str, token: str, query: str = "") -> tuple[float, bytes]:
    """Server time of one GET: the app called directly, from the request to its last byte."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"cookie", f"{COOKIE}={token}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    chunks: list[bytes] = []
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    start = time.perf_counter()
    await app(scope, receive, send)
    elapsed = time.perf_counter() - start
    if status != [200]:
        raise RuntimeError(f"GET {path}: {status} {b''.join(chunks)[:200]!r}")
    return elapsed, b"".join(chunks)


@contextmanager
def _served(board: Kanban) -> Iterator[str]:
    """The board served on 127.0.0.1 by this process, in a thread with its own loop."""
    settings = WebSettings(enabled=True, port=0)
    sock = listen(settings)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
        web = build_backend(board, executor, ACCESS, settings, environ={})
        changes = ChangeMonitor(board.watch_changes(), executor, on_change=(web.hub.on_change,))
        watching = asyncio.create_task(changes.run(stop[0]))
        serving = asyncio.create_task(serve(web, sock, stop[0]))
        await web.hub.started.wait()
        ready.set()
        await serving
        await watching
        executor.shutdown()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(15):
        raise RuntimeError("the web board did not start")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(15)
        loop.close()


_WRITER = """
import sys, time
from kanban_core import Actor, Kanban, KernelSettings
from pathlib import Path
from typing import Any
settings = KernelSettings(home=Path(sys.argv[1]), db_url=sys.argv[2])
board = Kanban.open(settings)
actor = Actor(name="bench-writer")
task = int(sys.argv[3])
for n in range(int(sys.argv[4])):
    board.comment(actor, task, f"c{n}")
    print(time.time(), flush=True)
    time.sleep(float(sys.argv[5]))
board.close()
"""


def event_to_stream(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 from a commit in another process to its event read off an open SSE stream."""
    with backend.board() as url, backend.open(url) as board:
        log(f"{backend.name}: event (other process) → SSE stream latency")
        task = board.create(OPERATOR, title="stream me").task
        samples = sizes.notify_samples
        received: list[float] = []
        done = threading.Event()
        with _served(board) as base:
            token = _session(board)
            client = httpx.Client(base_url=base, cookies={COOKIE: token}, timeout=30)
            since = board.max_event_id()
            opened = threading.Event()

            def read() -> None:
                with client.stream("GET", f"/api/events?since={since}") as answer:
                    opened.set()
                    for line in answer.iter_lines():
                        if line.startswith("data: ") and '"commented"' in line:
                            received.append(time.time())
                            if len(received) == samples:
                                done.set()
                                return

            reader = threading.Thread(target=read, daemon=True)
            reader.start()
            if not opened.wait(10):
                raise RuntimeError("the stream did not open")
            writer = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _WRITER,
                    str(board.settings.home),
                    url,
                    str(task.id),
                    str(samples),
                    str(LATENCY_GAP_S),
                ],
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            if not done.wait(30):
                raise RuntimeError(f"only {len(received)} of {samples} events arrived")
            client.close()
        committed = [float(line) for line in writer.stdout.split()]
        return p99([got - sent for got, sent in zip(received, committed, strict=True)])


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def streams_memory(log: Progress, work: Path) -> float:
    """Resident memory fifty open streams add to a ``kanban web`` process (SQLite)."""
    log(f"web: memory of {STREAMS} open streams")
    home = work / "web-rss"
    home.mkdir(parents=True, exist_ok=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (home / "config.yaml").write_text(
        f"web:\n  port: {port}\naccess:\n  users:\n    {USER}: admin\n"
    )
    env = dict(os.environ, KANBAN_HOME=str(home))
    env.pop("KANBAN_DB_URL", None)
    env.pop("KANBAN_CONFIG", None)
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "init"], env=env, check=True, capture_output=True
    )
    made = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "web", "login-link", "--json", "--user", USER],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    link_token = json.loads(made.stdout)["url"].split("token=", 1)[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "web", "--log-level", "WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/signin", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

        async def main() -> float:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                answer = await client.post("/auth/link", data={"token": link_token})
                assert answer.status_code == 303
                for _ in range(20):  # warm: imports, caches, the first requests' buffers
                    await client.get("/api/board")
                before = _rss(server.pid)
                got = [asyncio.Event() for _ in range(STREAMS)]
                opened = [asyncio.Event() for _ in range(STREAMS)]

                async def stream(i: int) -> None:
                    async with client.stream("GET", "/api/events") as answer:
                        opened[i].set()
                        async for line in answer.aiter_lines():
                            if line.startswith("data: "):
                                got[i].set()

                tasks = [asyncio.create_task(stream(i)) for i in range(STREAMS)]
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in opened)), 30)
                csrf = (await client.get("/api/me")).json()["csrf_token"]
                made = await client.post(
                    "/api/tasks", json={"title": "wake the streams"}, headers={"X-CSRF-Token": csrf}
                )
                assert made.status_code == 201
                await asyncio.wait_for(asyncio.gather(*(e.wait() for e in got)), 30)
                after = _rss(server.pid)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                return float(max(0, after - before))

        return asyncio.run(main())
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
