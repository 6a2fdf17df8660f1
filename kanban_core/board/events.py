"""The append-only event log, and the notification fan-out written in the same transaction."""

from __future__ import annotations

from typing import Any

from kanban_core.board.domain import NOTIFYING_EVENT_KINDS, EventKind, TaskId
from kanban_core.board.rows import dump_json
from kanban_core.storage import Query, Transaction

_INSERT = Query(
    "insert_event",
    "INSERT INTO task_events (task_id, run_id, kind, payload, created_ms) "
    "VALUES (:task_id, :run_id, :kind, :payload, {now}) RETURNING id",
)
_INSERT_MANY = Query(
    "insert_events",
    "INSERT INTO task_events (task_id, run_id, kind, payload, created_ms) "
    "VALUES (:task_id, :run_id, :kind, :payload, {now})",
)
# One delivery row per (event, subscriber): the gateway's notifier claims and sends them, so a
# terminal event reaches every subscribed chat even if no notifier is running right now.
_FAN_OUT = Query(
    "fan_out_deliveries",
    "INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status, "
    "attempts, next_try_ms, created_ms) "
    "SELECT :event_id, task_id, platform, chat_id, thread_id, 'pending', 0, {now}, {now} "
    "FROM notify_subscriptions WHERE task_id = :task_id",
)
# Live progress goes only to the chats that want it (progress = 1, the default).
_FAN_OUT_PROGRESS = Query(
    "fan_out_progress_deliveries",
    "INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status, "
    "attempts, next_try_ms, created_ms) "
    "SELECT :event_id, task_id, platform, chat_id, thread_id, 'pending', 0, {now}, {now} "
    "FROM notify_subscriptions WHERE task_id = :task_id AND progress = 1",
)


def append(
    tx: Transaction,
    task_id: TaskId,
    kind: EventKind,
    payload: dict[str, Any] | None = None,
    run_id: int | None = None,
    *,
    fan_out: bool = True,
) -> int:
    """Record one event; terminal kinds also queue a delivery per subscription. Returns its id.

    ``fan_out=False`` is for a caller that already knows the task has no subscriptions.
    """
    event_id: int = tx.scalar(
        _INSERT,
        {"task_id": task_id, "run_id": run_id, "kind": kind.value, "payload": dump_json(payload)},
    )
    if fan_out and kind in NOTIFYING_EVENT_KINDS:
        fan = _FAN_OUT_PROGRESS if kind is EventKind.PROGRESS else _FAN_OUT
        tx.execute(fan, {"event_id": event_id, "task_id": task_id})
    return event_id


def append_many(
    tx: Transaction, kind: EventKind, task_ids: list[TaskId], payload: dict[str, Any] | None = None
) -> None:
    """Record the same non-terminal event for several tasks."""
    assert kind not in NOTIFYING_EVENT_KINDS
    encoded = dump_json(payload)
    tx.executemany(
        _INSERT_MANY,
        [{"task_id": t, "run_id": None, "kind": kind.value, "payload": encoded} for t in task_ids],
    )
