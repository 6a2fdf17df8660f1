"""An ACP agent at its limits, as the phone sees it: the real gateway, dispatcher and supervisor,
the fake ACP agent on the official SDK, python-telegram-bot against the fake Bot API.

At its usage limit the task pauses until the reset the agent named, the chat is told when it
resumes, and it runs again by itself; at its budget the turn is cancelled and the task blocked,
and the chat is told the figures.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import TaskStatus
from kanban_core.board.domain import BlockKind, TaskId
from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.acp_chat import Gateway, complete, configure, recorded, told
from tests.support.fake_telegram import ALICE_ID

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "state").mkdir()
    started = Gateway(tmp_path, home)
    try:
        yield started
    finally:
        await started.kill()


async def test_a_usage_limit_pauses_with_the_resume_time_and_the_chat_hears_the_resume(
    tmp_path, fake, gateway
):
    reset_s = int(time.time()) + 10  # ahead of the supervisor reaching its verdict
    quota = {
        "rpc_error": {
            "message": "Internal error",
            "data": f"Claude AI usage limit reached|{reset_s}",
            "once": "quota",
        }
    }
    configure(gateway.home, fake, tmp_path / "state", [quota, complete("after the reset")])
    await gateway.start(fake)
    await fake.push_text('/kanban create "deploy it" --assignee asker')
    paused = await told(fake, "⏳ t1")
    assert f"resumes at {time.strftime('%H:%M', time.gmtime(reset_s))} UTC" in paused, paused
    resumed = await told(fake, "▶ t1")
    assert "resumed after the usage limit" in resumed
    done = await told(fake, "✔ t1")
    assert "after the reset" in done
    texts = [m.text for m in fake.sent_to(ALICE_ID)]
    assert texts.index(paused) < texts.index(resumed) < texts.index(done)
    assert not any("gave up" in text or "crashed" in text for text in texts)
    with gateway.board() as board:
        claims = [e for e in board.detail(TaskId(1)).events if e.kind == "claimed"]
        assert claims[-1].created_ms >= reset_s * 1000


async def test_a_budget_reached_blocks_the_task_and_the_chat_hears_the_figures(
    tmp_path, fake, gateway
):
    steps: list[dict[str, Any]] = [{"usage": {"used": 1500, "cost": 0.25}}, {"wait_cancel": True}]
    configure(gateway.home, fake, tmp_path / "state", steps)
    await gateway.start(fake)
    await fake.push_text('/kanban create "deploy it" --assignee asker --max-tokens 1000')
    notice = await told(fake, "💰 t1")
    assert "budget reached: 1500 of 1000 tokens ($0.2500)" in notice, notice
    assert "unblock it to let it run again" in notice
    assert recorded(tmp_path / "state", "cancelled") == {}  # the turn was cancelled
    with gateway.board() as board:
        task = board.get(TaskId(1))
        assert task.status is TaskStatus.BLOCKED
        assert task.block_kind is BlockKind.BUDGET
