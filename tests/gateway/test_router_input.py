"""What the router does with awkward input: characters the database cannot store, overlong lines,
a failing database, and ``help`` — always an answer and an audit row, never an exception."""

from __future__ import annotations

import uuid

import anyio
import pytest

from gateway.access import AccessPolicy, Role
from gateway.messages import ChatRef, ChatUser, Document, IncomingMessage, MessageKind
from gateway.router import Router
from gateway.routing import MAX_COMMAND_CHARS
from kanban_core.board.audit import AuditEntry
from kanban_core.storage.text import clean
from tests.gateway.support import text_of
from tests.kanban_core.support import snapshot

pytestmark = pytest.mark.anyio

OPERATOR = ChatUser("telegram", "2", "otto")
STRANGER = ChatUser("telegram", "666", "mal\x00lory")
POLICY = AccessPolicy(users={OPERATOR.key: Role.OPERATOR})
R = "\ufffd"

BAD_TEXT = [
    pytest.param("list\x00", id="nul"),
    pytest.param('create "caf\ud800"', id="lone-surrogate"),
    pytest.param(b"show t1 \xff\xfe".decode("utf-8", "surrogateescape"), id="not-utf8-bytes"),
]


@pytest.fixture
def chat() -> ChatRef:
    return ChatRef("telegram", f"chat-{uuid.uuid4().hex[:10]}", None)


@pytest.fixture
def router(board, executor) -> Router:
    return Router(board, POLICY, executor)


async def send(
    router: Router,
    chat: ChatRef,
    text: str,
    *,
    user: ChatUser = OPERATOR,
    kind: MessageKind = MessageKind.COMMAND,
    command: str = "kanban",
) -> Document | None:
    message = IncomingMessage(chat, user, text, uuid.uuid4().hex, command, kind)
    with anyio.fail_after(30):  # a chat command never hangs
        return await router.handle(message)


def audit_of(board, chat: ChatRef) -> list[AuditEntry]:
    return [e for e in reversed(board.audit_log(limit=1000)) if e.chat_id == chat.chat_id]


def one_line(reply: Document | None) -> str:
    assert reply is not None
    text = text_of(reply)
    assert text.startswith("⚠"), text
    assert "\n" not in text, text
    return text


# -- characters the database cannot store --------------------------------------------------------


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_a_known_user_gets_an_answer_and_the_line_is_audited(board, router, chat, text):
    before = snapshot(board)
    reply = await send(router, chat, text)

    assert reply is not None
    assert "internal error" not in text_of(reply)
    assert snapshot(board) == before  # refused by the parser or validation: nothing created
    [entry] = audit_of(board, chat)
    assert entry.text == clean(text)
    assert entry.role == "operator"


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_an_unknown_users_attempt_is_refused_and_audited(board, router, chat, text):
    before = snapshot(board)
    reply = one_line(await send(router, chat, text, user=STRANGER))

    assert "telegram:666" in reply
    assert snapshot(board) == before
    [entry] = audit_of(board, chat)
    assert (entry.outcome, entry.text, entry.user_name) == ("refused", clean(text), f"mal{R}lory")


async def test_a_slash_command_with_bad_characters_is_audited_under_its_name(board, router, chat):
    one_line(await send(router, chat, "x\x00", command="diff"))  # no workspace bound here
    [entry] = audit_of(board, chat)
    assert entry.text == f"/diff x{R}"


# -- overlong lines ------------------------------------------------------------------------------


async def test_a_megabyte_line_is_refused_at_once_in_one_line_and_audited(board, router, chat):
    before = snapshot(board)
    line = 'create "' + "x" * 1_000_000 + '"'
    reply = one_line(await send(router, chat, line))

    assert f"the limit is {MAX_COMMAND_CHARS:,}" in reply
    assert f"{len(line):,} characters" in reply
    assert snapshot(board) == before
    [entry] = audit_of(board, chat)
    assert (entry.outcome, entry.detail) == ("refused", reply.removeprefix("⚠ "))


async def test_the_limit_is_inclusive_and_applies_to_every_split_command(board, router, chat):
    exact = "list" + " " * (MAX_COMMAND_CHARS - len("list"))
    assert "⚠" not in text_of(await send(router, chat, exact) or Document(()))

    too_long = "list " + "x" * MAX_COMMAND_CHARS
    assert "too long" in one_line(await send(router, chat, too_long))
    assert "too long" in one_line(await send(router, chat, too_long, command="ws"))
    assert "too long" in one_line(await send(router, chat, "--x " + too_long, command="follow-up"))


# -- a failing database --------------------------------------------------------------------------


async def test_a_database_failure_is_answered_not_raised(board, router, chat):
    # A plain message looks up the chat's workspace first: that read fails on a closed board,
    # and so does the audit of the failure. Neither may escape to the adapter's reader.
    board.db.close()
    for kind in (MessageKind.TEXT, MessageKind.COMMAND):
        assert "database has been closed" in one_line(await send(router, chat, "list", kind=kind))


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text"),
    [("kanban", "help"), ("kanban", ""), ("help", ""), ("start", "")],
)
async def test_help_lists_the_verbs(router, chat, command, text):
    reply = text_of(await send(router, chat, text, command=command) or Document(()))
    assert "usage error" not in reply
    for verb in ("create", "list", "show", "ws"):
        assert verb in reply


async def test_help_on_one_verb_shows_its_options(router, chat):
    reply = text_of(await send(router, chat, "help create") or Document(()))
    assert "--assignee" in reply
    assert "usage error" not in reply
    unknown = text_of(await send(router, chat, "help nonsense") or Document(()))
    assert "unknown verb 'nonsense'" in unknown
