"""Live progress on Discord: discord.py, the notifier, the fake REST API (message PATCH)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import test_discord as discord_e2e
from tests.e2e.fake_discord import CHANNEL_ID, FakeDiscord
from tests.e2e.progress_support import progress_run, sqlite_board

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = discord_e2e.anyio_backend
fake = discord_e2e.fake
sink = discord_e2e.sink
started = discord_e2e.started


async def test_progress_is_posted_then_edited_and_a_deleted_message_is_posted_again(
    fake: FakeDiscord, started, tmp_path: Path
) -> None:
    adapter = await started()
    with (
        sqlite_board(tmp_path) as board,
        progress_run(board, adapter, platform="discord", chat_id=str(CHANNEL_ID)) as run,
    ):
        await run.step("read the parser")
        (first,) = fake.posted_to(CHANNEL_ID)
        await run.step("write a failing test", after_s=2)
        assert [(m, "write a failing test" in c) for _, m, c in fake.edited] == [
            (first.message_id, True)
        ]
        fake.delete_message(first.message_id)
        await run.step("fix the tokenizer", after_s=2)
        posts = fake.posted_to(CHANNEL_ID)
        assert len(posts) == 2
        assert "fix the tokenizer" in posts[1].content
