"""Redelivery dedupe is durable: a new gateway on the same board drops what the last one ran."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.messages import ChatRef, ChatUser, Document, IncomingMessage, MessageKind
from gateway.router import DEDUPE_KEEP_HOURS, Router
from kanban_core import Kanban, KernelSettings
from kanban_core.storage import Query

pytestmark = pytest.mark.anyio

OPERATOR = ChatUser("slack", "U2", "otto")
POLICY = AccessPolicy(users={OPERATOR.key: Role.OPERATOR})
HOUR_MS = 3600 * 1000
_KEYS = Query(
    "test_delivery_keys",
    "SELECT delivery_id FROM chat_deliveries WHERE platform = 'slack' ORDER BY delivery_id",
)
_AGE = Query(
    "test_age_delivery_key",
    "UPDATE chat_deliveries SET created_ms = created_ms - :ms WHERE delivery_id = :id",
)


@pytest.fixture
def file_settings(db_url: str, tmp_path: Path) -> KernelSettings:
    """The test's database as something two processes could open: a SQLite file, or PostgreSQL."""
    url = f"sqlite:///{tmp_path / 'kanban.db'}" if db_url.startswith("sqlite") else db_url
    return KernelSettings(home=tmp_path / "home", db_url=url)


class Gateway:
    """What one gateway process has: its own board connection, thread pool and router."""

    def __init__(self, settings: KernelSettings) -> None:
        self.board = Kanban.open(settings)
        self.executor = KernelExecutor(threads=1)
        self.router = Router(self.board, POLICY, self.executor)

    async def say(
        self, text: str, delivery_id: str, chat: ChatRef, **kw: object
    ) -> Document | None:
        message = IncomingMessage(chat, OPERATOR, text, delivery_id, **kw)  # type: ignore[arg-type]
        with anyio.fail_after(30):
            return await self.router.handle(message)

    def close(self) -> None:
        self.executor.shutdown()
        self.board.close()


@pytest.fixture
def gateways(file_settings: KernelSettings) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for gateway in started:
        gateway.close()


@pytest.fixture
def chat() -> ChatRef:
    return ChatRef("slack", f"C{uuid.uuid4().hex[:8]}")


def titles(board: Kanban) -> list[str]:
    return [task.title for task in board.list()]


def keys(board: Kanban) -> list[str]:
    with board.db.transaction(write=False) as tx:
        return [row[0] for row in tx.fetchall(_KEYS)]


async def test_a_redelivery_after_a_restart_creates_nothing(file_settings, gateways, chat):
    first = Gateway(file_settings)
    gateways.append(first)
    assert await first.say('create "once"', "Ev01", chat) is not None
    first.close()
    gateways.remove(first)

    # The platform redelivers (a Slack retry, a Telegram update fetched again) to a new gateway.
    second = Gateway(file_settings)
    gateways.append(second)
    assert await second.say('create "once"', "Ev01", chat) is None
    assert titles(second.board) == ["once"]
    # A new delivery still runs.
    assert await second.say('create "twice"', "Ev02", chat) is not None
    assert titles(second.board) == ["once", "twice"]


async def test_two_gateways_on_one_board_run_a_delivery_once(file_settings, gateways, chat):
    one, two = Gateway(file_settings), Gateway(file_settings)
    gateways += [one, two]
    replies = await asyncio.gather(
        one.say('create "raced"', "Ev10", chat), two.say('create "raced"', "Ev10", chat)
    )
    assert sorted(reply is None for reply in replies) == [False, True]
    assert titles(one.board) == ["raced"]


async def test_a_retry_while_the_first_copy_still_runs_is_dropped(file_settings, gateways, chat):
    gateway = Gateway(file_settings)
    gateways.append(gateway)
    replies = await asyncio.gather(*(gateway.say('create "slow"', "Ev20", chat) for _ in range(3)))
    assert [reply is None for reply in replies].count(False) == 1
    assert titles(gateway.board) == ["slow"]


async def test_keys_older_than_the_window_are_forgotten(file_settings, gateways, chat):
    gateway = Gateway(file_settings)
    gateways.append(gateway)
    await gateway.say("list", "Ev30", chat)
    await gateway.say("list", "Ev31", chat)
    with gateway.board.db.transaction(write=True) as tx:
        tx.execute(_AGE, {"ms": (DEDUPE_KEEP_HOURS + 1) * HOUR_MS, "id": "Ev30"})

    # The next delivery sweeps the expired key; the table does not grow without bound.
    await gateway.say("list", "Ev32", chat)
    assert keys(gateway.board) == ["Ev31", "Ev32"]
    # Past the window a redelivery is a new delivery again (the documented trade-off).
    assert await gateway.say("list", "Ev30", chat) is not None
    assert await gateway.say("list", "Ev31", chat) is None


async def test_chatter_the_bot_ignores_costs_no_key(file_settings, gateways, chat):
    gateway = Gateway(file_settings)
    gateways.append(gateway)
    # A plain message in a chat bound to no workspace: ignored, and nothing is written.
    assert await gateway.say("hello all", "Ev40", chat, kind=MessageKind.TEXT) is None
    assert keys(gateway.board) == []
