"""Live progress of a run: the bounded snapshot of what the agent is doing."""

from __future__ import annotations

import re
from typing import Any

from kanban_core.storage import Query, Transaction

MAX_PLAN_ENTRIES = 20
MAX_ENTRY_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_TOOL_CHARS = 200
# Plan entry statuses an ACP agent reports; anything else is shown as pending.
_STATUSES = frozenset({"pending", "in_progress", "completed"})
# Progress is shown verbatim in chats: every control character (even newline) is dropped so
# a hostile agent cannot forge lines or corrupt a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
_COUNTS = ("tool_calls", "messages", "updates")

_MESSAGE = Query(
    "progress_message",
    "SELECT message_id FROM progress_messages WHERE run_id = :run_id AND platform = :platform "
    "AND chat_id = :chat_id AND thread_id = :thread_id",
)
_FORGET = Query(
    "forget_progress_message",
    "DELETE FROM progress_messages WHERE run_id = :run_id AND platform = :platform "
    "AND chat_id = :chat_id AND thread_id = :thread_id",
)
_REMEMBER = Query(
    "remember_progress_message",
    "INSERT INTO progress_messages (run_id, platform, chat_id, thread_id, task_id, message_id, "
    "event_id, updated_ms) VALUES (:run_id, :platform, :chat_id, :thread_id, :task_id, "
    ":message_id, :event_id, {now})",
)


def _clip(value: object, limit: int) -> str:
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot reduced to its known, bounded fields (unknown keys are dropped)."""
    plan = []
    raw_plan = snapshot.get("plan")
    for entry in raw_plan[:MAX_PLAN_ENTRIES] if isinstance(raw_plan, list) else []:
        if isinstance(entry, dict):
            status = str(entry.get("status", "pending"))
            text = _clip(entry.get("content", ""), MAX_ENTRY_CHARS)
        else:
            status, text = "pending", _clip(entry, MAX_ENTRY_CHARS)
        plan.append({"content": text, "status": status if status in _STATUSES else "pending"})
    out: dict[str, Any] = {"plan": plan}
    tool = snapshot.get("tool")
    out["tool"] = _clip(tool, MAX_TOOL_CHARS) if tool else None
    message = snapshot.get("message")
    out["message"] = _clip(message, MAX_MESSAGE_CHARS) if message else None
    for key in _COUNTS:
        value = snapshot.get(key, 0)
        out[key] = value if isinstance(value, int) and not isinstance(value, bool) else 0
        out[key] = max(0, min(out[key], 10**12))
    return out


def progress_message(
    tx: Transaction, *, run_id: int, platform: str, chat_id: str, thread_id: str
) -> str | None:
    """The id of the message showing this run's progress in this chat, if one was sent."""
    params = {"run_id": run_id, "platform": platform, "chat_id": chat_id, "thread_id": thread_id}
    row = tx.fetchone(_MESSAGE, params)
    return None if row is None else str(row[0])


def remember_progress_message(
    tx: Transaction,
    *,
    run_id: int,
    platform: str,
    chat_id: str,
    thread_id: str,
    task_id: int,
    message_id: str,
    event_id: int,
) -> None:
    """Record (or replace) the message that shows this run's progress in this chat."""
    key = {"run_id": run_id, "platform": platform, "chat_id": chat_id, "thread_id": thread_id}
    # Delete then insert: the same statements on SQLite and PostgreSQL, in one transaction.
    tx.execute(_FORGET, key)
    tx.execute(
        _REMEMBER, key | {"task_id": task_id, "message_id": message_id, "event_id": event_id}
    )
