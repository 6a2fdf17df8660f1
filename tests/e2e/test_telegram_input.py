"""Telegram text the databases cannot store, end to end: the real python-telegram-bot against the
fake Bot API, the real Router as its sink, a board on SQLite and on PostgreSQL.

A NUL (which PostgreSQL refuses in text) or a lone surrogate (a broken emoji: Telegram's JSON may
carry ``\\ud83d`` alone, which neither database can encode) used to fail the audit insert: the
user got "the gateway failed on this command" and nothing was audited — refused attempts by
unknown users included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.telegram import TelegramAdapter
from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.router import Router
from kanban_core import Kanban
from kanban_core.board.audit import AuditEntry
from kanban_core.storage.text import clean
from tests.e2e import test_telegram as telegram_e2e
from tests.kanban_core.support import snapshot
from tests.support.fake_telegram import ALICE_ID, FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake

WAIT = 10.0
STRANGER = {"id": 7, "is_bot": False, "first_name": "Mal\x00lory", "username": "mallory"}
GROUP = telegram_e2e.GROUP
BAD = [
    pytest.param("list\x00", id="nul"),
    pytest.param("show t1 \x00", id="nul-argument"),
    pytest.param('create "broken \ud83d emoji"', id="lone-surrogate"),
]


@pytest.fixture
def executor(board: Kanban) -> Iterator[KernelExecutor]:
    pool = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
    yield pool
    pool.shutdown()


@pytest.fixture
async def telegram(
    fake: FakeTelegram, board: Kanban, executor: KernelExecutor
) -> AsyncIterator[TelegramAdapter]:
    router = Router(board, AccessPolicy(users={f"telegram:{ALICE_ID}": Role.OPERATOR}), executor)
    adapter = telegram_e2e.make_adapter(fake)
    await adapter.start(router.handle)
    try:
        yield adapter
    finally:
        await adapter.stop()


def audit_in(board: Kanban, chat_id: int, after: int) -> list[AuditEntry]:
    """This chat's entries newer than ``after`` (PostgreSQL's audit log outlives a test)."""
    return [e for e in board.audit_log(limit=1000) if e.chat_id == str(chat_id) and e.id > after]


def newest_audit_id(board: Kanban) -> int:
    return max((e.id for e in board.audit_log(limit=1)), default=0)


@pytest.mark.parametrize("line", BAD)
async def test_a_known_user_is_answered_and_audited(
    fake: FakeTelegram, telegram: TelegramAdapter, board: Kanban, line: str
):
    before, seen = snapshot(board), newest_audit_id(board)
    await fake.push_text(f"/kanban {line}")
    [reply] = await fake.wait_for(lambda: fake.sent_to(ALICE_ID), WAIT)

    assert "gateway failed" not in reply.text
    assert "usage error" in reply.text or "⚠" in reply.text, reply.text
    assert snapshot(board) == before
    [entry] = audit_in(board, ALICE_ID, seen)
    assert (entry.role, entry.text) == ("operator", clean(line))


@pytest.mark.parametrize("line", BAD)
async def test_an_unknown_users_attempt_is_refused_and_audited(
    fake: FakeTelegram, telegram: TelegramAdapter, board: Kanban, line: str
):
    before, seen = snapshot(board), newest_audit_id(board)
    await fake.push_text(f"/kanban {line}", chat_id=GROUP, chat_type="group", user=STRANGER)
    [reply] = await fake.wait_for(lambda: fake.sent_to(GROUP), WAIT)

    assert "not allowed" in reply.text
    assert "telegram:7" in reply.text
    assert snapshot(board) == before
    [entry] = audit_in(board, GROUP, seen)
    assert (entry.outcome, entry.user_id, entry.role, entry.text) == (
        "refused",
        "7",
        None,
        clean(line),
    )
    assert entry.user_name is not None
    assert "\x00" not in entry.user_name


async def test_the_next_command_is_served_after_a_bad_one(
    fake: FakeTelegram, telegram: TelegramAdapter, board: Kanban
):
    await fake.push_text("/kanban list\x00")
    await fake.push_text('/kanban create "after the bad one"')
    await fake.wait_for(lambda: len(fake.sent_to(ALICE_ID)) >= 2, WAIT)
    assert "Created t1" in fake.sent_to(ALICE_ID)[1].text
    assert [t.title for t in board.list()] == ["after the bad one"]
