"""The router on the fixture board: one chat command in, one reply out — authorised and audited."""

from __future__ import annotations

import itertools
import uuid

import anyio
import pytest

from gateway.access import AccessPolicy, Role
from gateway.messages import ChatRef, ChatUser, Document, IncomingMessage, Preformatted
from gateway.router import Router
from kanban_core import TaskId, TaskStatus
from kanban_core.board.audit import AuditEntry
from tests.gateway.support import text_of
from tests.kanban_core.support import snapshot

pytestmark = pytest.mark.anyio

ADMIN = ChatUser("telegram", "1", "ada")
OPERATOR = ChatUser("telegram", "2", "otto")
VIEWER = ChatUser("telegram", "3", "vic")
STRANGER = ChatUser("telegram", "666", "mallory")
POLICY = AccessPolicy(
    users={ADMIN.key: Role.ADMIN, OPERATOR.key: Role.OPERATOR, VIEWER.key: Role.VIEWER}
)
T1 = TaskId(1)


@pytest.fixture
def chat() -> ChatRef:
    # A chat of its own per test: the audit log is not emptied between PostgreSQL tests.
    return ChatRef("telegram", f"chat-{uuid.uuid4().hex[:10]}", None)


@pytest.fixture
def nudges() -> list[int]:
    return []


@pytest.fixture
def router(board, executor, nudges) -> Router:
    return Router(board, POLICY, executor, nudge=lambda: nudges.append(1))


@pytest.fixture
def say(router: Router, chat: ChatRef):
    """Send one command as a user (the operator by default) from a chat; returns the reply."""
    counter = itertools.count(1)
    prefix = uuid.uuid4().hex[:8]

    async def send(
        text: str,
        *,
        user: ChatUser = OPERATOR,
        where: ChatRef | None = None,
        delivery_id: str | None = None,
    ) -> Document | None:
        message = IncomingMessage(
            where or chat, user, text, delivery_id or f"{prefix}-{next(counter)}"
        )
        with anyio.fail_after(30):  # a chat command never hangs
            return await router.handle(message)

    return send


def audit_of(board, chat: ChatRef) -> list[AuditEntry]:
    """This chat's audit entries, oldest first."""
    return [e for e in reversed(board.audit_log(limit=1000)) if e.chat_id == chat.chat_id]


def refusal(reply: Document | None) -> str:
    """The text of a short one-paragraph refusal."""
    assert reply is not None
    text = text_of(reply)
    assert text.startswith("⚠"), text
    assert "\n" not in text, text
    assert len(text) < 200, text
    return text


def ok(reply: Document | None) -> str:
    """The text of a reply to a command that worked."""
    assert isinstance(reply, Document)
    text = text_of(reply)
    assert "⚠" not in text, text
    return text


# -- a command in, a reply out ------------------------------------------------------------------


async def test_a_command_comes_back_as_a_reply_document(board, say):
    created = ok(await say('create "write the docs" --assignee demo'))
    assert "Created t1" in created
    task = board.get(T1)
    assert (task.title, task.assignee, task.status) == ("write the docs", "demo", TaskStatus.READY)
    assert task.created_by == "otto (telegram:2)"

    listed = await say("list")
    assert isinstance(listed, Document)
    (table,) = [b for b in listed.blocks if isinstance(b, Preformatted)]
    assert "t1" in table.text
    assert "write the docs" in table.text


async def test_an_unknown_user_is_refused_without_touching_the_board(board, make_task, say, chat):
    make_task()
    before = snapshot(board)
    text = refusal(await say('create "sneaky"', user=STRANGER))
    assert "telegram:666" in text  # says whom an admin should add
    assert snapshot(board) == before
    (entry,) = audit_of(board, chat)
    assert (entry.outcome, entry.role, entry.user_id, entry.text, entry.detail) == (
        "refused",
        None,
        "666",
        'create "sneaky"',
        "unknown user",
    )


async def test_a_known_id_on_another_platform_is_a_stranger(board, say, chat):
    impostor = ChatUser("discord", ADMIN.user_id, ADMIN.display_name)
    refusal(await say("list", user=impostor, where=ChatRef("discord", chat.chat_id)))
    assert [e.outcome for e in audit_of(board, chat)] == ["refused"]


# -- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "line"),
    [
        (VIEWER, "list"),
        (VIEWER, "show t1"),
        (VIEWER, "tail t1"),
        (VIEWER, "notify-list"),
        (OPERATOR, 'create "another"'),
        (OPERATOR, "comment t1 looks good"),
        (OPERATOR, "block t1 waiting for the designer"),
        (ADMIN, "archive t1"),
        (ADMIN, "dispatch --dry-run"),
    ],
)
async def test_roles_allow(board, make_task, say, chat, user, line):
    make_task(title="first", assignee="demo")
    ok(await say(line, user=user))
    (entry,) = audit_of(board, chat)
    assert (entry.outcome, entry.role, entry.detail) == ("allowed", _role(user), "exit 0")


async def test_an_admin_re_places_a_task_from_chat(board, operator, make_task, say):
    board.enroll_host(operator, name="beta", labels=(), secret="-".join("sb"), readmit=False)
    make_task(title="first")
    said = ok(await say("edit t1 --host beta", user=ADMIN))
    assert "Re-placed t1: any host → host 'beta'" in said
    assert "t1" in ok(await say("edit t1 --title renamed", user=OPERATOR))


async def test_archive_and_dispatch_from_chat_do_their_work(board, make_task, say):
    make_task(title="first", assignee="demo")
    assert "Would spawn: t1 → demo" in ok(await say("dispatch --dry-run", user=ADMIN))
    ok(await say("archive t1", user=ADMIN))
    assert board.get(T1).status is TaskStatus.ARCHIVED


@pytest.mark.parametrize(
    ("user", "line", "needed"),
    [
        (VIEWER, 'create "nope"', "operator"),
        (VIEWER, "comment t1 hello", "operator"),
        (VIEWER, "notify-subscribe t1", "operator"),
        (OPERATOR, "archive t1", "admin"),
        (OPERATOR, "dispatch", "admin"),
        (OPERATOR, "reclaim t1", "admin"),
        (OPERATOR, "gc", "admin"),
        (OPERATOR, "edit t1 --any-host", "admin"),
        (OPERATOR, "edit t1 --host=beta", "admin"),
        (OPERATOR, "edit t1 --label gpu", "admin"),
    ],
)
async def test_roles_refuse(board, make_task, say, chat, user, line, needed):
    make_task(title="first")
    before = snapshot(board)
    text = refusal(await say(line, user=user))
    assert f"needs the {needed} role" in text
    assert snapshot(board) == before
    (entry,) = audit_of(board, chat)
    assert (entry.outcome, entry.role, entry.text) == ("refused", _role(user), line)


@pytest.mark.parametrize(
    "line",
    [
        "claim t1",
        "claim --next",
        "heartbeat t1",
        "mcp",
        "worker",
        "gateway",
        "init",
    ],
)
async def test_local_and_worker_verbs_are_refused_from_chat_even_for_admins(
    board, make_task, say, chat, line
):
    make_task(title="first")
    before = snapshot(board)
    text = refusal(await say(line, user=ADMIN))
    assert "not available from chat" in text
    assert snapshot(board) == before
    (entry,) = audit_of(board, chat)
    assert (entry.outcome, entry.detail) == ("refused", "not available from chat")


def _role(user: ChatUser) -> str:
    return POLICY.users[user.key].name.lower()


# -- delivery, typography, usage ----------------------------------------------------------------


async def test_a_redelivered_message_is_handled_once(board, say, chat, nudges):
    first = await say('create "only once"', delivery_id="update-42")
    assert "Created t1" in ok(first)
    assert await say('create "only once"', delivery_id="update-42") is None
    assert [t.title for t in board.list()] == ["only once"]
    assert len(audit_of(board, chat)) == 1
    assert len(nudges) == 1
    # The same id from another platform is another delivery.
    other = ChatRef("slack", chat.chat_id)
    slack_user = ChatUser("slack", "U1")
    assert await say("list", user=slack_user, where=other, delivery_id="update-42") is not None


async def test_smart_quotes_and_em_dashes_are_what_the_user_meant(board, say):
    ok(await say("create \u201cfix the login bug\u201d \u2014assignee demo \u2013priority 3"))
    task = board.get(T1)
    assert (task.title, task.assignee, task.priority) == ("fix the login bug", "demo", 3)
    ok(await say("comment t1 \u2018don\u2019t panic \u2014 it\u2019s fine\u2019"))
    (comment,) = board.detail(T1).comments
    assert comment.body == "don\u2019t panic \u2014 it\u2019s fine"


async def test_unbalanced_quotes_come_back_as_usage_text(board, say, chat):
    text = refusal(await say('create "no closing quote --assignee demo'))
    assert "quote" in text
    assert board.list() == []
    assert [e.outcome for e in audit_of(board, chat)] == ["refused"]


@pytest.mark.parametrize(
    ("line", "usage", "message"),
    [
        ("create", "usage: /kanban create", "the following arguments are required: title"),
        ("show t1 --bogus", "usage: /kanban show", "unrecognized arguments: --bogus"),
        ("show banana", "usage: /kanban show", "banana"),
        ("tail t1 --limit 0", "usage: /kanban tail", "--limit must be between 1 and 1000"),
        ("frobnicate", "usage: /kanban", "invalid choice"),
    ],
)
async def test_usage_errors_come_back_as_the_verbs_usage(make_task, say, line, usage, message):
    make_task()
    reply = await say(line)
    assert isinstance(reply, Document)
    text = text_of(reply)
    assert text.startswith(usage), text
    last = text.splitlines()[-1]
    assert last.startswith("⚠ usage error:"), text
    assert message in last, text
    # The usage line, not the verb's whole help.
    assert "options:" not in text
    assert len(text.splitlines()) <= 12, text


async def test_tail_from_chat_is_a_bounded_snapshot(board, operator, make_task, say):
    task = make_task()
    for i in range(40):
        board.comment(operator, task.id, f"note {i}")
    reply = await say("tail t1")
    lines = ok(reply).splitlines()
    assert len(lines) == 20
    assert all("commented" in line for line in lines)  # the newest 20; "created" is cut off
    watched = ok(await say("watch")).splitlines()
    assert 0 < len(watched) <= 20


# -- subscriptions from chat --------------------------------------------------------------------


async def test_create_from_chat_subscribes_that_chat_and_thread(board, say, chat):
    thread = ChatRef(chat.platform, chat.chat_id, "77")
    text = ok(await say('create "ship it"', where=thread))
    assert "subscribed" in text
    assert "t1" in text.splitlines()[-1]
    (sub,) = board.subscriptions(T1)
    assert (sub.platform, sub.chat_id, sub.thread_id, sub.user_id) == (
        "telegram",
        chat.chat_id,
        "77",
        OPERATOR.user_id,
    )


async def test_create_json_does_not_subscribe(board, say):
    reply = await say('create "quietly" --json')
    text = ok(reply)
    assert "subscribed" not in text
    assert '"created": true' in text
    assert board.subscriptions(T1) == []


async def test_a_retried_create_does_not_subscribe_twice(board, say, chat):
    assert "subscribed" in ok(await say('create "once" --idempotency-key deploy-7'))
    again = ok(await say('create "once" --idempotency-key deploy-7'))
    assert "Exists" in again
    assert "subscribed" not in again
    assert len(board.list()) == 1
    assert len(board.subscriptions(T1)) == 1


async def test_notify_subscribe_without_flags_means_this_chat(board, make_task, say, chat):
    make_task()
    thread = ChatRef(chat.platform, chat.chat_id, "9")
    text = ok(await say("notify-subscribe t1", where=thread))
    assert f"telegram:{chat.chat_id}:9" in text
    assert [(s.platform, s.chat_id, s.thread_id) for s in board.subscriptions(T1)] == [
        ("telegram", chat.chat_id, "9")
    ]
    ok(await say("notify-unsubscribe t1", where=thread))
    assert board.subscriptions(T1) == []


@pytest.mark.parametrize(
    "flags",
    [
        "--platform telegram --chat-id elsewhere",
        "--platform discord --chat-id elsewhere",
        "--chat-id elsewhere",
    ],
)
async def test_naming_another_chat_needs_admin(board, make_task, say, chat, flags):
    make_task()
    text = refusal(await say(f"notify-subscribe t1 {flags}"))
    assert "admin" in text
    assert board.subscriptions(T1) == []
    assert audit_of(board, chat)[-1].outcome == "refused"


async def test_another_chat_cannot_be_named_with_equals_signs_either(board, make_task, say, chat):
    make_task()
    await say("notify-subscribe t1 --platform=discord --chat-id=elsewhere")
    # Refused, or scoped to this chat: never a subscription for the chat the operator named.
    subs = [(s.platform, s.chat_id) for s in board.subscriptions(T1)]
    assert ("discord", "elsewhere") not in subs
    assert subs in ([], [("telegram", chat.chat_id)])


async def test_an_admin_may_manage_another_chats_subscriptions(board, make_task, say):
    make_task()
    text = ok(await say("notify-subscribe t1 --platform discord --chat-id ops", user=ADMIN))
    assert "discord:ops" in text
    assert [(s.platform, s.chat_id) for s in board.subscriptions(T1)] == [("discord", "ops")]


# -- audit and nudges ---------------------------------------------------------------------------


async def test_every_command_from_chat_is_audited(board, say, chat):
    thread = ChatRef(chat.platform, chat.chat_id, "5")
    commands = [
        (VIEWER, "list", "allowed", "exit 0"),
        (STRANGER, "list", "refused", "unknown user"),
        (OPERATOR, 'create "audited"', "allowed", "exit 0"),
        (OPERATOR, "archive t1", "refused", "needs the admin role"),
        (ADMIN, "claim t1", "refused", "not available from chat"),
        (OPERATOR, 'create "unbalanced', "refused", None),
        (OPERATOR, "create", "allowed", "exit 2"),
        (OPERATOR, "show t99", "allowed", None),
    ]
    for user, line, _, _ in commands:
        await say(line, user=user, where=thread)
    entries = audit_of(board, chat)
    assert [(e.text, e.outcome) for e in entries] == [(c[1], c[2]) for c in commands]
    for entry, (user, _, _, detail) in zip(entries, commands, strict=True):
        assert (entry.platform, entry.thread_id, entry.user_id, entry.user_name) == (
            "telegram",
            "5",
            user.user_id,
            user.display_name,
        )
        assert entry.created_ms > 0
        if detail is not None:
            assert entry.detail == detail
    assert entries[-1].detail != "exit 0"  # a missing task is not a success


async def test_the_dispatcher_is_nudged_when_work_may_have_become_ready(board, say, nudges):
    ok(await say('create "first" --assignee demo'))
    assert len(nudges) == 1
    ok(await say("list"))
    ok(await say('create "second"'))
    assert len(nudges) == 2
    ok(await say("block t2 needs a decision"))
    assert len(nudges) == 2
    ok(await say("unblock t2"))
    assert len(nudges) == 3
    ok(await say("complete t1 --summary done"))
    assert len(nudges) == 4
    await say("create")  # a usage error changed nothing
    await say('create "refused"', user=VIEWER)
    assert len(nudges) == 4
