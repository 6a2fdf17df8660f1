"""Live progress on Telegram: real python-telegram-bot, the notifier, the fake Bot API.

The first progress snapshot of a run is sent as a message, later ones edit that message in place
(editMessageText on the same message_id), and the completion arrives as a new message after the
last edit.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.progress_support import ProgressRun, progress_run, sqlite_board
from tests.support.fake_telegram import ALICE_ID, FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake


@pytest.fixture
async def run(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[ProgressRun]:
    fake.add_chat(ALICE_ID, "private")
    adapter = telegram_e2e.make_adapter(fake)
    await adapter.start(telegram_e2e.Sink())
    try:
        with contextlib.ExitStack() as stack:
            board = stack.enter_context(sqlite_board(tmp_path))
            yield stack.enter_context(
                progress_run(board, adapter, platform="telegram", chat_id=str(ALICE_ID))
            )
    finally:
        await adapter.stop()


async def test_progress_is_sent_then_edited_in_place_then_the_completion_arrives(
    fake: FakeTelegram, run: ProgressRun
) -> None:
    await run.step("read the parser")
    (first,) = fake.sent_to(ALICE_ID)
    assert "read the parser" in first.text
    for step in ("write a failing test", "fix the tokenizer"):
        await run.step(step, after_s=2)
    edits = fake.calls_of("editMessageText")
    assert [call.params["message_id"] for call in edits] == [first.message_id] * 2
    assert "fix the tokenizer" in fake.sent_to(ALICE_ID)[0].text  # edited in place
    run.complete("parser fixed")
    await run.drain()
    messages = fake.sent_to(ALICE_ID)
    assert len(messages) == 2
    assert messages[1].text.startswith("✔")
    assert len(fake.calls_of("editMessageText")) == 2  # nothing edited after the end


async def test_a_deleted_progress_message_is_sent_again(
    fake: FakeTelegram, run: ProgressRun
) -> None:
    await run.step("one")
    (first,) = fake.sent_to(ALICE_ID)
    fake.delete(ALICE_ID, first.message_id)
    await run.step("two", after_s=2)
    (second,) = fake.sent_to(ALICE_ID)
    assert second.message_id != first.message_id
    assert "two" in second.text
