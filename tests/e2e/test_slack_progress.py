"""Live progress on Slack: slack-bolt's web client, the notifier, the fake Web API (chat.update)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack import SlackAdapter
from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from kanban_core import Actor, Claim, Kanban, KernelSettings
from tests.e2e import test_slack as slack_e2e
from tests.e2e.fake_slack import FakeSlack

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = slack_e2e.anyio_backend
fake = slack_e2e.fake
sink = slack_e2e.sink
adapter = slack_e2e.adapter
OPERATOR = Actor(name="alice")
CHANNEL = "C0001"
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


async def test_progress_is_posted_then_updated_then_the_completion_is_posted(
    fake: FakeSlack, adapter: SlackAdapter, tmp_path: Path
) -> None:
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")
    with Kanban.open(settings) as board:
        task = board.create(OPERATOR, title="fix the parser", assignee="coder").task
        board.subscribe(OPERATOR, task.id, platform="slack", chat_id=CHANNEL)
        claim = board.claim(OPERATOR, task.id)
        assert claim is not None
        executor = KernelExecutor(threads=1)
        clock = Clock()
        notifier = Notifier(board, {"slack": adapter}, executor, SETTINGS, claimer="gw")
        notifier.clock = clock
        try:
            snapshot(board, claim, "read the parser")
            await drain(notifier)
            (first,) = fake.messages
            for step in ("write a failing test", "fix the tokenizer"):
                clock.now += 2
                snapshot(board, claim, step)
                await drain(notifier)
            assert [u["ts"] for u in fake.updates] == [first.ts] * 2
            assert "fix the tokenizer" in fake.messages[0].text
            board.complete(Actor(name="coder", run=claim.proof), task.id, summary="done")
            await drain(notifier)
            assert len(fake.messages) == 2
            assert "completed" in fake.messages[1].text
        finally:
            executor.shutdown()
