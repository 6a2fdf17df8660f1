"""Live progress from chat: /kanban watch tN subscribes with progress on; progress on|off."""

from __future__ import annotations

import itertools
import uuid

import anyio
import pytest

from gateway.access import AccessPolicy, Role
from gateway.messages import ChatRef, ChatUser, Document, IncomingMessage
from gateway.router import Router
from tests.gateway.support import rows, text_of
from tests.kanban_core.support import worker

pytestmark = pytest.mark.anyio

OPERATOR = ChatUser("telegram", "2", "otto")
VIEWER = ChatUser("telegram", "3", "vic")
POLICY = AccessPolicy(users={OPERATOR.key: Role.OPERATOR, VIEWER.key: Role.VIEWER})


@pytest.fixture
def chat() -> ChatRef:
    return ChatRef("telegram", f"chat-{uuid.uuid4().hex[:10]}", None)


@pytest.fixture
def say(board, executor, chat):
    router = Router(board, POLICY, executor, nudge=lambda: None)
    counter = itertools.count(1)

    async def send(text: str, *, user: ChatUser = VIEWER) -> str:
        message = IncomingMessage(chat, user, text, f"{uuid.uuid4().hex[:8]}-{next(counter)}")
        with anyio.fail_after(30):  # watch from chat answers once, never streams
            reply = await router.handle(message)
        assert isinstance(reply, Document)
        return text_of(reply)

    return send


def progress_flag(board, chat: ChatRef) -> list[tuple[int]]:
    return rows(
        board, "SELECT progress FROM notify_subscriptions WHERE chat_id = :c", c=chat.chat_id
    )


async def test_a_viewer_watches_a_running_task_and_sees_what_it_does_now(
    board, operator, make_task, say, chat
):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.progress(
        worker(claim),
        task.id,
        {"plan": [{"content": "write the test", "status": "in_progress"}], "tool": "pytest"},
    )
    reply = await say(f"watch t{task.id}")
    assert f"Watching t{task.id} here" in reply
    assert "[>] write the test" in reply
    assert "tool: pytest" in reply
    assert progress_flag(board, chat) == [(1,)]


async def test_progress_off_then_on_for_this_chat(board, operator, make_task, say, chat):
    task = make_task()
    await say(f"watch t{task.id}")
    assert "is off" in await say(f"progress t{task.id} off")
    assert progress_flag(board, chat) == [(0,)]
    await say(f"progress t{task.id} on")
    assert progress_flag(board, chat) == [(1,)]


async def test_progress_for_an_unsubscribed_chat_says_how_to_watch(make_task, say):
    task = make_task()
    reply = await say(f"progress t{task.id} off")
    assert f"not subscribed to t{task.id}" in reply
    assert f"watch t{task.id}" in reply
