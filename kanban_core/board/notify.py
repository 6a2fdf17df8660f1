"""Notification subscriptions: which chats hear about a task's terminal events."""

from __future__ import annotations

from kanban_core.board.domain import Subscription, TaskId
from kanban_core.board.rows import SUBSCRIPTION_COLUMNS, subscription_from_row
from kanban_core.storage import Query, Transaction

_SUBSCRIBE = Query(
    "subscribe",
    "INSERT INTO notify_subscriptions (task_id, platform, chat_id, thread_id, user_id, created_ms) "
    "VALUES (:task_id, :platform, :chat_id, :thread_id, :user_id, {now}) ON CONFLICT DO NOTHING",
)
_UNSUBSCRIBE = Query(
    "unsubscribe",
    "DELETE FROM notify_subscriptions WHERE task_id = :task_id AND platform = :platform "
    "AND chat_id = :chat_id AND thread_id = :thread_id",
)
_SET_PROGRESS = Query(
    "set_subscription_progress",
    "UPDATE notify_subscriptions SET progress = :progress WHERE task_id = :task_id "
    "AND platform = :platform AND chat_id = :chat_id AND thread_id = :thread_id",
)
_LIST_ALL = Query(
    "list_subscriptions",
    f"SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions ORDER BY task_id, created_ms",
)
_LIST_FOR_TASK = Query(
    "list_task_subscriptions",
    f"SELECT {SUBSCRIPTION_COLUMNS} FROM notify_subscriptions WHERE task_id = :task_id "
    "ORDER BY created_ms",
)
# A workspace's task completes once per agent turn; its chats keep hearing about later turns.
_END = Query(
    "end_subscriptions",
    "DELETE FROM notify_subscriptions WHERE task_id = :task_id "
    "AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.task_id = :task_id)",
)


def subscribe(
    tx: Transaction,
    task_id: TaskId,
    *,
    platform: str,
    chat_id: str,
    thread_id: str | None,
    user_id: str | None,
) -> bool:
    """Add a subscription; False when it already existed."""
    params = {
        "task_id": task_id,
        "platform": platform,
        "chat_id": chat_id,
        "thread_id": thread_id or "",
        "user_id": user_id,
    }
    return bool(tx.execute(_SUBSCRIBE, params))


def unsubscribe(
    tx: Transaction, task_id: TaskId, *, platform: str, chat_id: str, thread_id: str | None
) -> bool:
    """Remove a subscription; False when there was none."""
    params = {
        "task_id": task_id,
        "platform": platform,
        "chat_id": chat_id,
        "thread_id": thread_id or "",
    }
    return bool(tx.execute(_UNSUBSCRIBE, params))


def set_progress(
    tx: Transaction,
    task_id: TaskId,
    *,
    platform: str,
    chat_id: str,
    thread_id: str | None,
    on: bool,
) -> bool:
    """Turn live progress on or off for one subscribed chat; False when it is not subscribed."""
    params = {
        "task_id": task_id,
        "platform": platform,
        "chat_id": chat_id,
        "thread_id": thread_id or "",
        "progress": 1 if on else 0,
    }
    return bool(tx.execute(_SET_PROGRESS, params))


def subscriptions(tx: Transaction, task_id: TaskId | None = None) -> list[Subscription]:
    """All subscriptions, or those of one task."""
    if task_id is None:
        rows = tx.fetchall(_LIST_ALL)
    else:
        rows = tx.fetchall(_LIST_FOR_TASK, {"task_id": task_id})
    return [subscription_from_row(row) for row in rows]


def end_subscriptions(tx: Transaction, task_id: TaskId) -> None:
    """Subscriptions end when a task is done or archived (after its last event fanned out)."""
    tx.execute(_END, {"task_id": task_id})
