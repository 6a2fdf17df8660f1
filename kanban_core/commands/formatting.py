"""Shared text formatting for command output: status icons, ages, task rows."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

from kanban_core.board.domain import Event, Run, Task, TaskId, TaskStatus, format_task_id
from kanban_core.board.reads import TaskSummary
from kanban_core.commands.result import Table

STATUS_ICONS = {
    TaskStatus.TRIAGE: "?",
    TaskStatus.TODO: "◻",
    TaskStatus.READY: "▶",
    TaskStatus.RUNNING: "●",
    TaskStatus.BLOCKED: "⊘",
    TaskStatus.DONE: "✓",
    TaskStatus.ARCHIVED: "—",
}


def status_label(task: Task | TaskSummary) -> str:
    """``blocked`` is qualified with its kind when the breaker tripped."""
    kind = task.block_kind  # a BlockKind or its text: both compare and format as the text
    if task.status is TaskStatus.BLOCKED and kind and kind != "human":
        return f"blocked ({kind})"
    if task.status is TaskStatus.READY and task.pause_reason:
        return f"ready, paused: {task.pause_reason}"
    # The member is its own text (a StrEnum); `.value` costs a descriptor call per row.
    return task.status


def task_table(
    tasks: Sequence[Task | TaskSummary], waiting: Mapping[TaskId, Sequence[str]] | None = None
) -> Table:
    """The ``list`` table; ``waiting`` marks tasks whose agent waits for an answer."""
    asks = waiting or {}
    rows = tuple(
        (
            STATUS_ICONS[task.status],
            task.ref,
            f"{status_label(task)} · asks {' '.join(asks[task.id])}"
            if task.id in asks
            else status_label(task),
            task.assignee or "(unassigned)",
            f"[{task.tenant}] {task.title}" if task.tenant else task.title,
        )
        for task in tasks
    )
    return Table(("", "ID", "STATUS", "ASSIGNEE", "TITLE"), rows)


def timestamp(ms: int | None) -> str:
    """A local, minute-precision time; ``-`` for none."""
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M")


def elapsed(seconds: float) -> str:
    """``42s``, ``3m``, ``1.5h`` (never negative: clocks step)."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)}s"
    if seconds < 7200:
        return f"{int(seconds // 60)}m"
    return f"{seconds / 3600:.1f}h"


def run_elapsed(run: Run, now_ms: int) -> str:
    """How long an attempt took (or has taken so far)."""
    return elapsed(((run.ended_ms or now_ms) - run.started_ms) / 1000)


def first_line(value: str | None, limit: int) -> str:
    """The first line of a text, cut to ``limit`` characters with an ellipsis."""
    if not value:
        return ""
    line = value.strip().splitlines()[0] if value.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def event_line(event: Event, *, with_task: bool = False) -> str:
    """One event as a line: time, [task], kind, [run], payload."""
    parts = [timestamp(event.created_ms)]
    if with_task:
        parts.append(format_task_id(event.task_id))
    parts.append(event.kind)
    if event.run_id is not None:
        parts.append(f"[run {event.run_id}]")
    if event.payload:
        parts.append(compact(event.payload))
    return "  ".join(parts)


def compact(value: Any, limit: int = 200) -> str:
    """Compact JSON, cut to a length."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return encoded if len(encoded) <= limit else encoded[: limit - 1] + "…"
