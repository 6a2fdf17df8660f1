"""Live progress: an agent's update reaching the chat as an edit of the run's progress message.

The supervisor's side folds a stream of plan updates with its :class:`ProgressTracker` and
writes each snapshot it lets through with ``Kanban.progress`` (as the ACP client's progress sink
does), on its own connection and thread. The gateway's side is the real notifier, woken by the
change monitor, and the real Telegram adapter (python-telegram-bot) editing the message on the
loopback fake Bot API of the end-to-end tests. A sample is one edit (or the first send): from
the moment the update it shows was made to the moment the fake received it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from typing import Any

from acp import plan_entry, update_plan

from adapters import telegram
from benchmarks.backends import Backend
from benchmarks.gateway_bench import p99
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from gateway import Document, IncomingMessage
from gateway.changes import ChangeMonitor
from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from kanban_core import Actor
from kanban_core.dispatch.progress_tracker import ProgressTracker
from tests.support.fake_telegram import TOKEN, Call, FakeTelegram

OPERATOR = Actor(name="bench")
#: The coalescing interval, on both sides: the gateway's default ``progress_min_interval_ms``
#: and the profile's ``progress_interval_seconds`` set to the same.
INTERVAL_S = NotifierSettings().progress_min_interval_ms / 1000
#: How often the agent sends an update: ten per interval, so every edit waited on coalescing.
STEP_S = INTERVAL_S / 10
_CHAT = 4242
_WARMUP = 2
_STEP = re.compile(r"step (\d+)")


class _TimedFake(FakeTelegram):
    """The fake Bot API, noting when each call arrived."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.arrived: list[tuple[float, Call]] = []

    async def _record(self, call: Call) -> None:
        self.arrived.append((time.perf_counter(), call))
        await super()._record(call)


async def _no_commands(message: IncomingMessage) -> Document | None:
    del message
    return None


def update_to_edit(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 from an agent's update to the chat's edited progress message showing it."""
    edits = min(40, sizes.notify_samples) + _WARMUP
    with backend.board() as url, backend.open(url) as board, backend.open(url) as supervisor:
        log(f"{backend.name}: agent update → edited chat message ({edits} edits)")
        task = board.create(OPERATOR, title="streams").task
        board.subscribe(OPERATOR, task.id, platform="telegram", chat_id=str(_CHAT))
        claim = board.claim(OPERATOR, task.id, ttl_s=600)
        if claim is None:
            raise RuntimeError("the task could not be claimed")
        actor = Actor(name="supervisor", run=claim.proof)
        made: dict[int, float] = {}
        done = threading.Event()

        def stream() -> None:
            tracker = ProgressTracker(interval_s=INTERVAL_S, clock=time.monotonic)
            i = 0
            while not done.is_set():
                made[i] = time.perf_counter()
                tracker.update("plan", update_plan([plan_entry(f"step {i}")]))
                snapshot = tracker.take()
                if snapshot is not None:
                    supervisor.progress(actor, task.id, snapshot)
                i += 1
                time.sleep(STEP_S)  # the agent's own pace

        async def main() -> list[float]:
            fake = _TimedFake()
            await fake.start()
            fake.add_chat(_CHAT, "private")
            config: dict[str, Any] = {"api_base_url": fake.base_url, "poll_timeout": 1}
            adapter = telegram.create(config, {"TELEGRAM_BOT_TOKEN": TOKEN})
            await adapter.start(_no_commands)
            executor = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
            notifier = Notifier(
                board, {"telegram": adapter}, executor, NotifierSettings(), claimer="bench"
            )
            changes = ChangeMonitor(board.watch_changes(), executor, on_change=[notifier.nudge])
            stop = asyncio.Event()
            runner = asyncio.gather(notifier.run(stop), changes.run(stop))
            agent = threading.Thread(target=stream)
            agent.start()
            try:
                await fake.wait_for(lambda: len(_shown(fake)) >= edits, edits * INTERVAL_S * 3)
            finally:
                done.set()
                agent.join()
                stop.set()
                await runner
                await adapter.stop()
                await fake.stop()
                executor.shutdown()
            return [at - made[step] for at, step in _shown(fake)[_WARMUP:edits]]

        return p99(asyncio.run(main()))


def _shown(fake: _TimedFake) -> list[tuple[float, int]]:
    """(arrival, the step shown) of each send or edit of the progress message."""
    shown = []
    for at, call in list(fake.arrived):
        if call.method in ("sendMessage", "editMessageText"):
            found = _STEP.search(str(call.params.get("text", "")))
            if found:
                shown.append((at, int(found.group(1))))
    return shown
