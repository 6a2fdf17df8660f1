"""An agent's permission request in chat: the card, its buttons, and who may answer."""

from __future__ import annotations

import uuid

import anyio
import pytest

from gateway.access import AccessPolicy, Role
from gateway.messages import (
    Button,
    ChatRef,
    ChatUser,
    Document,
    IncomingMessage,
    MessageKind,
    Paragraph,
    Preformatted,
)
from gateway.rendering import event_document
from gateway.router import Router
from kanban_core import (
    Actor,
    Kanban,
    PermissionDecision,
    PermissionRequest,
    PermissionStatus,
    TaskId,
)
from kanban_core.board.deliveries import Delivery
from tests.gateway.support import text_of

pytestmark = pytest.mark.anyio

OPERATOR = ChatUser("telegram", "2", "otto")
VIEWER = ChatUser("telegram", "3", "vic")
POLICY = AccessPolicy(users={OPERATOR.key: Role.OPERATOR, VIEWER.key: Role.VIEWER})


def ask(board: Kanban, operator: Actor, chat: ChatRef | None = None) -> PermissionRequest:
    task = board.create(operator, title="migrate the database", assignee="coder").task
    claim = board.claim(operator, task.id, ttl_s=120)
    assert claim is not None
    if chat is not None:
        board.subscribe(operator, task.id, platform=chat.platform, chat_id=chat.chat_id)
    return board.request_permission(
        Actor(name="agent", run=claim.proof),
        task.id,
        tool_kind="execute",
        tool_name="bash",
        summary="drop the staging tables",
        detail="psql -c 'DROP TABLE staging_*'",
        ttl_s=600,
    )


@pytest.fixture
def chat() -> ChatRef:
    return ChatRef("telegram", f"chat-{uuid.uuid4().hex[:10]}", None)


@pytest.fixture
def router(board, executor) -> Router:
    return Router(board, POLICY, executor, nudge=lambda: None)


async def send(
    router: Router, chat: ChatRef, user: ChatUser, text: str, *, button: bool = False
) -> Document:
    message = IncomingMessage(
        chat,
        user,
        text,
        uuid.uuid4().hex,
        kind=MessageKind.ACTION if button else MessageKind.COMMAND,
    )
    with anyio.fail_after(30):
        reply = await router.handle(message)
    assert reply is not None
    return reply


def the_card(board: Kanban, chat: ChatRef) -> Document:
    """The notification the gateway would send this chat (claimed as its notifier would)."""
    [delivery] = board.claim_deliveries(platform=chat.platform, claimer="test", lease_ms=60_000)
    assert delivery.kind == "permission_requested"
    return event_document(delivery)


async def test_the_card_asks_with_the_detail_and_three_answers(board, operator, chat):
    made = ask(board, operator, chat)

    card = the_card(board, chat)

    ref = made.ref
    assert card.blocks[0] == Paragraph(f"🔐 t{made.task_id} asks to run: drop the staging tables")
    assert Preformatted("psql -c 'DROP TABLE staging_*'") in card.blocks
    assert Paragraph(f"/allow {ref} · /allow {ref} --run · /deny {ref} [reason]") in card.blocks
    assert card.buttons == (
        Button("Allow once", f"k:kanban allow {ref}"),
        Button("Allow for this run", f"k:kanban allow {ref} --run"),
        Button("Deny", f"k:kanban deny {ref}"),
    )


def test_a_card_without_a_ref_offers_no_buttons():
    delivery = Delivery(
        id=1,
        event_id=2,
        task_id=TaskId(1),
        platform="telegram",
        chat_id="1",
        thread_id="",
        attempts=1,
        kind="permission_requested",
        payload={"summary": "x"},
        title="t",
        assignee=None,
    )
    assert event_document(delivery).buttons == ()


async def test_a_viewer_may_list_but_not_answer(board, operator, chat, router):
    made = ask(board, operator)

    assert made.ref in text_of(await send(router, chat, VIEWER, "permissions"))
    for line in (f"allow {made.ref}", f"allow {made.ref} --run", f"deny {made.ref} no"):
        refused = text_of(await send(router, chat, VIEWER, line))
        assert refused.startswith("⚠")
        assert "needs the operator role" in refused
    assert board.permission(made.ref).status is PermissionStatus.PENDING


async def test_pressing_allow_answers_and_a_second_press_is_refused(board, operator, chat, router):
    made = ask(board, operator, chat)
    allow_once = the_card(board, chat).buttons[0]

    first = text_of(await send(router, chat, OPERATOR, allow_once.action, button=True))
    assert first.startswith(f"Allowed {made.ref} once")
    again = text_of(await send(router, chat, OPERATOR, f"deny {made.ref}"))
    assert again == f"⚠ {made.ref} was already allowed by otto (telegram:2)"
    final = board.permission(made.ref)
    assert (final.status, final.answered_by) == (PermissionStatus.ALLOWED, "otto (telegram:2)")


async def send_slash(router: Router, chat: ChatRef, user: ChatUser, word: str, text: str) -> str:
    message = IncomingMessage(chat, user, text, uuid.uuid4().hex, command=word)
    with anyio.fail_after(30):
        reply = await router.handle(message)
    assert reply is not None
    return text_of(reply)


async def test_the_typed_slash_forms_answer_and_deny_keeps_its_workspace_meaning(
    board, operator, chat, router
):
    first, second = ask(board, operator), ask(board, operator)

    allowed = await send_slash(router, chat, OPERATOR, "allow", f"{first.ref} --run")
    assert allowed.startswith(f"Allowed {first.ref}")
    assert board.permission(first.ref).decision is PermissionDecision.ALLOW_RUN
    denied = await send_slash(router, chat, OPERATOR, "deny", f"{second.ref.upper()} not today")
    assert board.permission(second.ref).status is PermissionStatus.DENIED
    assert board.permission(second.ref).reason == "not today"
    assert second.ref in denied
    # Anything that is not a permission ref is still a workspace approval request's id.
    workspace = await send_slash(router, chat, OPERATOR, "deny", "ap-1-abc")
    assert workspace == "⚠ no such request ap-1-abc"  # the workspace approvals' answer
    assert board.permission(first.ref).status is PermissionStatus.ALLOWED


@pytest.mark.parametrize(
    ("answer_role", "operator_may"), [(Role.APPROVER, False), (Role.OPERATOR, True)]
)
async def test_who_may_answer_is_the_configured_role(
    board, operator, chat, executor, answer_role, operator_may
):
    made = ask(board, operator)
    policy = AccessPolicy(users={OPERATOR.key: Role.OPERATOR}, answer_role=answer_role)
    router = Router(board, policy, executor, nudge=lambda: None)

    reply = await send_slash(router, chat, OPERATOR, "allow", made.ref)

    assert reply.startswith("⚠") is not operator_may
    expected = PermissionStatus.ALLOWED if operator_may else PermissionStatus.PENDING
    assert board.permission(made.ref).status is expected
