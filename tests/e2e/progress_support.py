"""Live progress through a real adapter: a claimed, subscribed task, a notifier on a test clock."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.adapter import ChatAdapter
from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from kanban_core import Actor, Claim, Kanban, KernelSettings

OPERATOR = Actor(name="alice")
# No per-chat wait: each test moves its own clock, so the rate limit is what the test sets.
SETTINGS = NotifierSettings(poll_ms=10, backoff_base_s=0, backoff_cap_s=0)


class Clock:
    """The notifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ProgressRun:
    """A running task whose progress the notifier sends to one chat."""

    board: Kanban
    claim: Claim
    notifier: Notifier
    clock: Clock

    def report(self, text: str) -> None:
        """The run's worker records a progress snapshot."""
        self.board.progress(
            Actor(name="coder", run=self.claim.proof),
            self.claim.task.id,
            {"plan": [{"content": text, "status": "in_progress"}]},
        )

    async def drain(self) -> None:
        """Deliver everything due now."""
        while await self.notifier.deliver_once():
            pass

    async def step(self, text: str, *, after_s: float = 0) -> None:
        """Let ``after_s`` pass on the notifier's clock, report, deliver."""
        self.clock.now += after_s
        self.report(text)
        await self.drain()

    def complete(self, summary: str) -> None:
        """The run's worker completes the task."""
        worker = Actor(name="coder", run=self.claim.proof)
        self.board.complete(worker, self.claim.task.id, summary=summary)


@contextlib.contextmanager
def sqlite_board(root: Path) -> Iterator[Kanban]:
    """A fresh SQLite board under ``root``."""
    with Kanban.open(KernelSettings(home=root, db_url=f"sqlite:///{root / 'kanban.db'}")) as board:
        yield board


@contextlib.contextmanager
def progress_run(
    board: Kanban, adapter: ChatAdapter, *, platform: str, chat_id: str
) -> Iterator[ProgressRun]:
    """Claim a task subscribed by ``chat_id`` and a notifier sending through ``adapter``."""
    task = board.create(OPERATOR, title="fix the parser", assignee="coder").task
    board.subscribe(OPERATOR, task.id, platform=platform, chat_id=chat_id)
    claim = board.claim(OPERATOR, task.id)
    assert claim is not None
    executor = KernelExecutor(threads=1)
    clock = Clock()
    notifier = Notifier(board, {platform: adapter}, executor, SETTINGS, claimer="gw")
    notifier.clock = clock
    try:
        yield ProgressRun(board, claim, notifier, clock)
    finally:
        executor.shutdown()
