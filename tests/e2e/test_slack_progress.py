"""Live progress on Slack: slack-bolt's web client, the notifier, the fake Web API (chat.update)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack import SlackAdapter
from tests.e2e import test_slack as slack_e2e
from tests.e2e.fake_slack import FakeSlack
from tests.e2e.progress_support import progress_run, sqlite_board

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = slack_e2e.anyio_backend
fake = slack_e2e.fake
sink = slack_e2e.sink
adapter = slack_e2e.adapter
CHANNEL = "C0001"


async def test_progress_is_posted_then_updated_then_the_completion_is_posted(
    fake: FakeSlack, adapter: SlackAdapter, tmp_path: Path
) -> None:
    with (
        sqlite_board(tmp_path) as board,
        progress_run(board, adapter, platform="slack", chat_id=CHANNEL) as run,
    ):
        await run.step("read the parser")
        (first,) = fake.messages
        for step in ("write a failing test", "fix the tokenizer"):
            await run.step(step, after_s=2)
        assert [u["ts"] for u in fake.updates] == [first.ts] * 2
        assert "fix the tokenizer" in fake.messages[0].text
        run.complete("done")
        await run.drain()
        assert len(fake.messages) == 2
        assert "completed" in fake.messages[1].text
