"""A platform's redelivery after a gateway restart runs nothing twice; a new message always runs.

The real python-telegram-bot and our adapter against the fake Bot API, with the gateway's Router
on a SQLite file as the sink; each "gateway" opens the board afresh, as a restarted process does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.router import Router
from kanban_core import Kanban, KernelSettings
from tests.e2e import test_telegram as telegram_e2e
from tests.support.fake_telegram import ALICE_ID, FakeTelegram, Sent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
WAIT = 10.0


@pytest.fixture
def open_gateway(fake: FakeTelegram, tmp_path: Path) -> Callable[[], Any]:
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")

    @asynccontextmanager
    async def gateway() -> AsyncIterator[Kanban]:
        board = Kanban.open(settings)
        executor = KernelExecutor(threads=1)
        router = Router(
            board, AccessPolicy(users={f"telegram:{ALICE_ID}": Role.OPERATOR}), executor
        )
        adapter = telegram_e2e.make_adapter(fake)
        await adapter.start(router.handle)
        try:
            yield board
        finally:
            await adapter.stop()
            executor.shutdown()
            board.close()

    return gateway


def replies_to(fake: FakeTelegram, update: dict[str, Any]) -> list[Sent]:
    message_id = update["message"]["message_id"]
    return [m for m in fake.sent_to(ALICE_ID) if m.reply_to == message_id]


async def test_a_refetched_update_after_a_restart_runs_once_and_a_reused_update_id_runs(
    fake: FakeTelegram, open_gateway: Callable[[], Any]
) -> None:
    create = fake.message_update('/kanban create "x"', update_id=5000, message_id=10)
    async with open_gateway():
        await fake.push(create)
        await fake.wait_for(lambda: replies_to(fake, create), WAIT)

    # The gateway died before Telegram heard the update was handled: it comes again.
    sentinel = fake.message_update("/kanban list", update_id=5001, message_id=12)
    async with open_gateway() as board:
        await fake.push(create, sentinel)
        await fake.wait_for(lambda: replies_to(fake, sentinel), WAIT)
        assert len(replies_to(fake, create)) == 1
        assert [task.title for task in board.list()] == ["x"]

    # After a week without updates Telegram restarts update ids at random (and another bot counts
    # from its own start): an old update id on a new message is a new command.
    again = fake.message_update('/kanban create "y"', update_id=5000, message_id=11)
    async with open_gateway() as board:
        await fake.push(again)
        await fake.wait_for(lambda: replies_to(fake, again), WAIT)
        assert [task.title for task in board.list()] == ["x", "y"]
