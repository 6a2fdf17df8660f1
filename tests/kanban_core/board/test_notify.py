"""kanban_core.board.notify (through the facade): subscribe, unsubscribe and list subscriptions."""

from __future__ import annotations

import pytest

from kanban_core import PermissionDenied, Subscription, TaskId, TaskNotFound, ValidationError
from tests.kanban_core.support import snapshot, worker


@pytest.fixture
def subscribe(board, operator):
    """Factory: subscribe a chat (defaults: telegram chat 100, no thread) to a task."""

    def factory(
        task_id: TaskId,
        *,
        platform: str = "telegram",
        chat_id: str = "100",
        thread_id: str | None = None,
        user_id: str | None = None,
    ) -> bool:
        added: bool = board.subscribe(
            operator,
            task_id,
            platform=platform,
            chat_id=chat_id,
            thread_id=thread_id,
            user_id=user_id,
        )
        return added

    return factory


def keys(subscriptions: list[Subscription]) -> list[tuple[TaskId, str, str, str]]:
    return [(s.task_id, s.platform, s.chat_id, s.thread_id) for s in subscriptions]


def test_subscribe_is_idempotent(board, make_task, subscribe):
    task = make_task()
    assert subscribe(task.id, user_id="U1") is True
    before = snapshot(board)
    assert subscribe(task.id, user_id="U2") is False
    assert snapshot(board) == before
    (sub,) = board.subscriptions(task.id)
    assert (sub.task_id, sub.platform, sub.chat_id, sub.thread_id, sub.user_id) == (
        task.id,
        "telegram",
        "100",
        "",
        "U1",
    )
    assert sub.created_ms > 0


def test_threads_platforms_and_chats_are_distinct_subscriptions(board, make_task, subscribe):
    task = make_task()
    assert subscribe(task.id) is True
    assert subscribe(task.id, thread_id="7") is True
    assert subscribe(task.id, chat_id="200") is True
    assert subscribe(task.id, platform="discord") is True
    assert subscribe(task.id, thread_id="7") is False
    assert sorted(keys(board.subscriptions(task.id))) == [
        (task.id, "discord", "100", ""),
        (task.id, "telegram", "100", ""),
        (task.id, "telegram", "100", "7"),
        (task.id, "telegram", "200", ""),
    ]


def test_platform_is_case_insensitive_and_values_are_stripped(board, make_task, subscribe):
    task = make_task()
    assert subscribe(task.id, platform=" Telegram ", chat_id=" 100 ") is True
    assert subscribe(task.id, platform="TELEGRAM", chat_id="100") is False
    assert keys(board.subscriptions(task.id)) == [(task.id, "telegram", "100", "")]


def test_unsubscribe(board, operator, make_task, subscribe):
    task = make_task()
    subscribe(task.id)
    subscribe(task.id, thread_id="7")
    assert board.unsubscribe(operator, task.id, platform="telegram", chat_id="100", thread_id="7")
    assert keys(board.subscriptions(task.id)) == [(task.id, "telegram", "100", "")]
    before = snapshot(board)
    assert not board.unsubscribe(
        operator, task.id, platform="telegram", chat_id="100", thread_id="7"
    )
    assert not board.unsubscribe(operator, task.id, platform="slack", chat_id="100", thread_id=None)
    assert snapshot(board) == before
    assert board.unsubscribe(operator, task.id, platform="Telegram", chat_id="100", thread_id=None)
    assert board.subscriptions(task.id) == []


@pytest.mark.parametrize("finish", ["complete", "archive"])
def test_finished_tasks_are_refused(board, operator, make_task, subscribe, finish):
    task = make_task()
    getattr(board, finish)(operator, task.id)
    state = "done" if finish == "complete" else "archived"
    before = snapshot(board)
    with pytest.raises(ValidationError, match=f"{task.ref} is {state}; it has no more events"):
        subscribe(task.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("state", ["triage", "todo", "running", "blocked"])
def test_unfinished_tasks_may_be_subscribed(board, operator, make_task, subscribe, state):
    parent = make_task()
    task = (
        make_task(parents=[parent.id]) if state == "todo" else make_task(triage=state == "triage")
    )
    if state == "running":
        board.claim(operator, task.id)
    elif state == "blocked":
        board.block(operator, task.id, "hold")
    assert board.get(task.id).status.value == state
    assert subscribe(task.id) is True


def test_list_all_and_per_task(board, make_task, subscribe):
    a, b = make_task(), make_task()
    subscribe(b.id, chat_id="2")
    subscribe(a.id, chat_id="1")
    subscribe(a.id, chat_id="3")
    everything = board.subscriptions()
    assert sorted(keys(everything)) == sorted(
        keys(board.subscriptions(a.id)) + keys(board.subscriptions(b.id))
    )
    assert [s.task_id for s in everything] == [a.id, a.id, b.id]
    assert {s.chat_id for s in board.subscriptions(a.id)} == {"1", "3"}
    assert keys(board.subscriptions(b.id)) == [(b.id, "telegram", "2", "")]


def test_empty_board_has_no_subscriptions(board):
    assert board.subscriptions() == []


def test_refusals(board, operator, make_task, subscribe):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(TaskNotFound):
        subscribe(TaskId(404))
    with pytest.raises(TaskNotFound):
        board.unsubscribe(operator, TaskId(404), platform="telegram", chat_id="1", thread_id=None)
    with pytest.raises(TaskNotFound):
        board.subscriptions(TaskId(404))
    with pytest.raises(ValidationError, match="--platform is required"):
        subscribe(task.id, platform="")
    with pytest.raises(ValidationError, match="platform"):
        subscribe(task.id, platform="tele gram")
    with pytest.raises(ValidationError, match="chat id"):
        subscribe(task.id, chat_id="")
    with pytest.raises(ValidationError, match="chat id"):
        subscribe(task.id, chat_id="x" * 201)
    with pytest.raises(ValidationError, match="thread id"):
        subscribe(task.id, thread_id="bad\x00")
    assert snapshot(board) == before


def test_a_worker_may_not_subscribe_or_unsubscribe(board, operator, make_task):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    with pytest.raises(PermissionDenied):
        board.subscribe(worker(claim), task.id, platform="telegram", chat_id="1")
    with pytest.raises(PermissionDenied):
        board.unsubscribe(worker(claim), task.id, platform="telegram", chat_id="1", thread_id=None)
