"""Live progress on Discord: discord.py, the notifier, the fake REST API (message PATCH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from kanban_core import Actor, Claim, Kanban, KernelSettings
from tests.e2e import test_discord as discord_e2e
from tests.e2e.fake_discord import CHANNEL_ID, FakeDiscord

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = discord_e2e.anyio_backend
fake = discord_e2e.fake
sink = discord_e2e.sink
started = discord_e2e.started
OPERATOR = Actor(name="alice")
SETTINGS = NotifierSettings(poll_ms=10, backoff_base_s=0, backoff_cap_s=0)


class Clock:
    """The notifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def drain(notifier: Notifier) -> None:
    while await notifier.deliver_once():
        pass


def snapshot(board: Kanban, claim: Claim, text: str) -> None:
    worker = Actor(name="coder", run=claim.proof)
    board.progress(worker, claim.task.id, {"plan": [{"content": text, "status": "in_progress"}]})


async def test_progress_is_posted_then_edited_and_a_deleted_message_is_posted_again(
    fake: FakeDiscord, started, tmp_path: Path
) -> None:
    adapter = await started()
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")
    with Kanban.open(settings) as board:
        task = board.create(OPERATOR, title="fix the parser", assignee="coder").task
        board.subscribe(OPERATOR, task.id, platform="discord", chat_id=str(CHANNEL_ID))
        claim = board.claim(OPERATOR, task.id)
        assert claim is not None
        executor = KernelExecutor(threads=1)
        clock = Clock()
        notifier = Notifier(board, {"discord": adapter}, executor, SETTINGS, claimer="gw")
        notifier.clock = clock
        try:
            snapshot(board, claim, "read the parser")
            await drain(notifier)
            (first,) = fake.posted_to(CHANNEL_ID)
            clock.now += 2
            snapshot(board, claim, "write a failing test")
            await drain(notifier)
            assert [(m, "write a failing test" in c) for _, m, c in fake.edited] == [
                (first.message_id, True)
            ]
            fake.delete_message(first.message_id)
            clock.now += 2
            snapshot(board, claim, "fix the tokenizer")
            await drain(notifier)
            posts = fake.posted_to(CHANNEL_ID)
            assert len(posts) == 2
            assert "fix the tokenizer" in posts[1].content
        finally:
            executor.shutdown()
