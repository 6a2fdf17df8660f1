"""Gateway measurements: a chat command's round trip through the router, event → send latency
through the notifier, a nudged claim reaching spawn, and the resident memory of a gateway with
every adapter loaded."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from benchmarks.backends import Backend
from benchmarks.dispatching import ASSIGNEE, NullSpawner, config
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from gateway import Capabilities, ChatRef, ChatUser, Document, IncomingMessage
from gateway.access import AccessPolicy, Role
from gateway.changes import ChangeMonitor
from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from gateway.router import Router
from gateway.scheduler import DispatchLoop
from kanban_core import Actor, TaskId
from kanban_core.dispatch.dispatcher import Dispatcher
from kanban_core.dispatch.spawn import WorkerSpec

OPERATOR = Actor(name="bench-operator")
CHAT = ChatRef("bench", "room")
USER = ChatUser("bench", "u1", "bench")


@dataclass
class RecordingAdapter:
    """An in-memory adapter that notes when each send was called."""

    name: str = "bench"
    capabilities: Capabilities = field(default_factory=lambda: Capabilities(4096))
    sent_at: list[float] = field(default_factory=list)
    sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self, sink: object, *, menu: object = ()) -> None:
        """Nothing to connect."""

    async def stop(self) -> None:
        """Nothing to close."""

    async def send(self, chat: ChatRef, document: Document) -> None:
        """Record the time."""
        del chat, document
        self.sent_at.append(time.perf_counter())
        self.sent.set()


def p99(samples: list[float]) -> float:
    """The 99th percentile."""
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


def router_round_trip(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 of `/kanban list` through the router on a board of ``router_board`` tasks."""
    with backend.board() as url, backend.open(url) as board:
        for i in range(sizes.router_board):
            board.create(OPERATOR, title=f"task {i}", assignee=ASSIGNEE)
        log(f"{backend.name}: router round trips")

        async def main() -> list[float]:
            executor = KernelExecutor(threads=1)
            access = AccessPolicy(users={USER.key: Role.ADMIN})
            router = Router(board, access, executor)
            samples = []
            try:
                for i in range(sizes.router_calls + 5):
                    message = IncomingMessage(CHAT, USER, "list", f"m{i}")
                    start = time.perf_counter()
                    reply = await router.handle(message)
                    if i >= 5:  # warm-up
                        samples.append(time.perf_counter() - start)
                    if reply is None:
                        raise RuntimeError("the router dropped a command")
            finally:
                executor.shutdown()
            return samples

        return p99(asyncio.run(main()))


def event_to_send(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 from a completion committed by another connection to the adapter's send call."""
    with backend.board() as url, backend.open(url) as board, backend.open(url) as worker_side:
        log(f"{backend.name}: event → send latency")

        async def main() -> list[float]:
            executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
            adapter = RecordingAdapter()
            notifier = Notifier(
                board, {"bench": adapter}, executor, NotifierSettings(), claimer="bench"
            )
            # Wired as the gateway wires it: changes by another connection nudge the notifier.
            changes = ChangeMonitor(board.watch_changes(), executor, on_change=[notifier.nudge])
            stop = asyncio.Event()
            runner = asyncio.gather(notifier.run(stop), changes.run(stop))
            samples = []
            try:
                for i in range(sizes.notify_samples):
                    task = board.create(OPERATOR, title=f"n{i}").task
                    board.subscribe(
                        OPERATOR, task.id, platform="bench", chat_id="room", thread_id=None
                    )
                    # Committed from another thread and connection, as a worker process would.
                    committed: list[float] = []

                    def complete(task_id: TaskId = task.id, out: list[float] = committed) -> None:
                        worker_side.complete(OPERATOR, task_id)
                        out.append(time.perf_counter())

                    adapter.sent.clear()
                    thread = threading.Thread(target=complete)
                    thread.start()
                    await asyncio.wait_for(adapter.sent.wait(), 10)
                    thread.join()
                    samples.append(adapter.sent_at[-1] - committed[0])
            finally:
                stop.set()
                await runner
                executor.shutdown()
            return samples

        return p99(asyncio.run(main()))


def nudged_claim(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 from a task's creation (and a nudge) to its worker's spawn, through the gateway loop."""
    with backend.board() as url, backend.open(url) as board:
        log(f"{backend.name}: nudged claim → spawn latency")

        class TimedSpawner(NullSpawner):
            def __init__(self) -> None:
                super().__init__()
                self.at: list[float] = []
                self.signal: asyncio.Event | None = None
                self.loop: asyncio.AbstractEventLoop | None = None

            def spawn(self, spec: WorkerSpec, token: str) -> int:
                self.at.append(time.perf_counter())
                if self.loop is not None and self.signal is not None:
                    self.loop.call_soon_threadsafe(self.signal.set)  # spawn runs in a thread
                return super().spawn(spec, token)

        spawner = TimedSpawner()
        dispatcher = Dispatcher(board, config=lambda: config(10**6, 10**6), spawner=spawner)

        async def main() -> list[float]:
            executor = KernelExecutor(threads=1)
            loop = DispatchLoop(dispatcher, executor, interval_s=3600)
            stop = asyncio.Event()
            runner = asyncio.create_task(loop.run(stop))
            samples = []
            spawner.loop = asyncio.get_running_loop()
            spawner.signal = asyncio.Event()
            try:
                await loop.drain()
                for i in range(sizes.notify_samples):
                    spawner.signal.clear()
                    start = time.perf_counter()
                    await executor.run(board.create, OPERATOR, title=f"x{i}", assignee=ASSIGNEE)
                    loop.nudge()
                    await asyncio.wait_for(spawner.signal.wait(), 10)
                    samples.append(spawner.at[-1] - start)
            finally:
                stop.set()
                await runner
                executor.shutdown()
            return samples

        return p99(asyncio.run(main()))


_RSS_PROBE = """
import os, sys
from adapters import discord, slack, telegram
from gateway import app, notifier, router, scheduler
env = {"T": "123:abc", "D": "x", "S": "xoxb-1", "A": "xapp-1", "G": "s"}
adapters = [
    telegram.create({"token_env": "T"}, env),
    discord.create({"token_env": "D"}, env),
    slack.create({"mode": "socket", "bot_token_env": "S", "app_token_env": "A"}, env),
]
with open("/proc/self/status") as status:
    for line in status:
        if line.startswith("VmRSS:"):
            print(int(line.split()[1]) * 1024)
"""


def gateway_rss(log: Progress) -> float:
    """Resident memory of a process with the gateway and all three adapters loaded and built."""
    log("gateway resident memory with every adapter loaded")
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])
