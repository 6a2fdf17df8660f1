"""Live progress on Telegram: real python-telegram-bot, the notifier, the fake Bot API.

The first progress snapshot of a run is sent as a message, later ones edit that message in place
(editMessageText on the same message_id), and the completion arrives as a new message after the
last edit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from kanban_core import Actor, Claim, Kanban, KernelSettings
from tests.e2e import test_telegram as telegram_e2e
from tests.support.fake_telegram import ALICE_ID, FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
OPERATOR = Actor(name="alice")
# No per-chat wait: each test moves its own clock, so the rate limit is what the test sets.
SETTINGS = NotifierSettings(poll_ms=10, backoff_base_s=0, backoff_cap_s=0)


class Clock:
    """The notifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[Kanban]:
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")
    with Kanban.open(settings) as kanban:
        yield kanban


async def drain(notifier: Notifier) -> None:
    while await notifier.deliver_once():
        pass


def snapshot(board: Kanban, claim: Claim, text: str) -> None:
    worker = Actor(name="coder", run=claim.proof)
    board.progress(worker, claim.task.id, {"plan": [{"content": text, "status": "in_progress"}]})


async def test_progress_is_sent_then_edited_in_place_then_the_completion_arrives(
    fake: FakeTelegram, board: Kanban
) -> None:
    task = board.create(OPERATOR, title="fix the parser", assignee="coder").task
    board.subscribe(OPERATOR, task.id, platform="telegram", chat_id=str(ALICE_ID))
    claim = board.claim(OPERATOR, task.id)
    assert claim is not None
    fake.add_chat(ALICE_ID, "private")
    adapter = telegram_e2e.make_adapter(fake)
    await adapter.start(telegram_e2e.Sink())
    executor = KernelExecutor(threads=1)
    clock = Clock()
    notifier = Notifier(board, {"telegram": adapter}, executor, SETTINGS, claimer="gw")
    notifier.clock = clock
    try:
        snapshot(board, claim, "read the parser")
        await drain(notifier)
        (first,) = fake.sent_to(ALICE_ID)
        assert "read the parser" in first.text
        for step in ("write a failing test", "fix the tokenizer"):
            clock.now += 2
            snapshot(board, claim, step)
            await drain(notifier)
        edits = fake.calls_of("editMessageText")
        assert [call.params["message_id"] for call in edits] == [first.message_id] * 2
        assert "fix the tokenizer" in fake.sent_to(ALICE_ID)[0].text  # edited in place
        board.complete(Actor(name="coder", run=claim.proof), task.id, summary="parser fixed")
        await drain(notifier)
        messages = fake.sent_to(ALICE_ID)
        assert len(messages) == 2
        assert messages[1].text.startswith("✔")
        assert len(fake.calls_of("editMessageText")) == 2  # nothing edited after the end
    finally:
        await adapter.stop()
        executor.shutdown()


async def test_a_deleted_progress_message_is_sent_again(fake: FakeTelegram, board: Kanban) -> None:
    task = board.create(OPERATOR, title="fix the parser", assignee="coder").task
    board.subscribe(OPERATOR, task.id, platform="telegram", chat_id=str(ALICE_ID))
    claim = board.claim(OPERATOR, task.id)
    assert claim is not None
    fake.add_chat(ALICE_ID, "private")
    adapter = telegram_e2e.make_adapter(fake)
    await adapter.start(telegram_e2e.Sink())
    executor = KernelExecutor(threads=1)
    clock = Clock()
    notifier = Notifier(board, {"telegram": adapter}, executor, SETTINGS, claimer="gw")
    notifier.clock = clock
    try:
        snapshot(board, claim, "one")
        await drain(notifier)
        (first,) = fake.sent_to(ALICE_ID)
        fake.delete(ALICE_ID, first.message_id)
        clock.now += 2
        snapshot(board, claim, "two")
        await drain(notifier)
        (second,) = fake.sent_to(ALICE_ID)
        assert second.message_id != first.message_id
        assert "two" in second.text
    finally:
        await adapter.stop()
        executor.shutdown()
