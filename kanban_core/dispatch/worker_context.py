"""What a worker sees of its task: body, prior attempts, parent handoffs, peers' work, comments.

Every free-text field is capped, and text written by other agents or people (comments, parent
summaries) is rendered as quoted data with its author, so it cannot pass itself off as
instructions from the system.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from kanban_core.board import reads
from kanban_core.board.domain import (
    Run,
    RunOutcome,
    TaskDetail,
    TaskId,
    TaskStatus,
    format_task_id,
)
from kanban_core.board.kanban import Kanban
from kanban_core.storage import Query

BODY_CAP = 8 * 1024
FIELD_CAP = 4 * 1024
COMMENT_CAP = 2 * 1024
ATTEMPTS_SHOWN = 10
COMMENTS_SHOWN = 30
PEER_RUNS_SHOWN = 5

_PEER_WORK = Query(
    "recent_work_by_profile",
    "SELECT r.task_id, t.title, r.ended_ms, r.summary FROM task_runs r "
    "JOIN tasks t ON t.id = r.task_id WHERE r.profile = :profile AND r.outcome = 'completed' "
    "AND r.task_id <> :task_id ORDER BY r.ended_ms DESC LIMIT :limit",
)


def build(board: Kanban, task_id: TaskId) -> str:
    """The worker context of a task, as Markdown."""
    # One read transaction, and no event log: the context shows none of it, and a long-lived
    # task's events would be most of what is read and decoded.
    with board.db.transaction(write=False) as tx:
        detail = reads.detail(tx, task_id, event_limit=0)
        parents = [reads.detail(tx, p, event_limit=0) for p in detail.parents]
        peers = (
            tx.fetchall(
                _PEER_WORK,
                {"profile": detail.task.assignee, "task_id": task_id, "limit": PEER_RUNS_SHOWN},
            )
            if detail.task.assignee
            else []
        )
    task = detail.task
    lines = [f"# Kanban task {task.ref}: {task.title}", ""]
    lines.append(f"Assignee: {task.assignee or '(unassigned)'}")
    lines.append(f"Status: {task.status.value}")
    if task.tenant:
        lines.append(f"Tenant: {task.tenant}")
    lines.append(
        f"Workspace: {task.workspace_kind.value} @ {task.workspace_path or '(unresolved)'}"
    )
    if task.branch_name:
        lines.append(f"Branch: {task.branch_name}")
    if task.max_runtime_s:
        lines.append(f"Max runtime: {task.max_runtime_s}s")
    lines += ["", "## Body", "", cap(task.body or "(no body)", BODY_CAP)]
    lines += _attempts([r for r in detail.runs if r.ended_ms is not None])
    lines += _parents(parents)
    if task.assignee:
        lines += _peer_work(peers, task.assignee)
    if detail.comments:
        shown = detail.comments[-COMMENTS_SHOWN:]
        lines += ["", "## Comment thread", ""]
        if len(detail.comments) > len(shown):
            lines.append(f"_{len(detail.comments) - len(shown)} earlier comments omitted_")
        for comment in shown:
            lines.append(f"comment from `{comment.author}` at {_when(comment.created_ms)}:")
            lines.append(quote(cap(comment.body, COMMENT_CAP)))
    return "\n".join(lines).rstrip() + "\n"


def _attempts(closed: list[Run]) -> list[str]:
    if not closed:
        return []
    lines = ["", "## Prior attempts on this task", ""]
    shown = closed[-ATTEMPTS_SHOWN:]
    if len(closed) > len(shown):
        lines.append(f"_{len(closed) - len(shown)} earlier attempts omitted_")
    for run in shown:
        outcome = run.outcome.value if run.outcome else run.status
        lines.append(
            f"### Attempt {run.attempt} — {outcome} ({run.profile or '-'}, {_when(run.started_ms)})"
        )
        if run.summary:
            lines.append(quote(cap(run.summary, FIELD_CAP)))
        if run.error:
            lines.append(f"_error_: {cap(run.error, FIELD_CAP)}")
        if run.metadata:
            lines.append(f"_metadata_: {cap(_compact(run.metadata), FIELD_CAP)}")
    return lines


def _parents(parents: list[TaskDetail]) -> list[str]:
    done = [d for d in parents if d.task.status is TaskStatus.DONE]
    if not done:
        return []
    lines = ["", "## Parent task results", ""]
    for parent in done:
        lines.append(f"### {parent.task.ref} — {parent.task.title}")
        completed = [r for r in parent.runs if r.outcome is RunOutcome.COMPLETED]
        handoff = completed[-1] if completed else None
        text = (handoff.summary if handoff else None) or parent.task.result
        lines.append(quote(cap(text, FIELD_CAP)) if text else "(no result recorded)")
        if handoff and handoff.metadata:
            lines.append(f"_metadata_: {cap(_compact(handoff.metadata), FIELD_CAP)}")
    return lines


def _peer_work(rows: list[tuple[Any, ...]], assignee: str) -> list[str]:
    if not rows:
        return []
    lines = ["", f"## Recent work by @{assignee}", ""]
    for other, title, ended, summary in rows:
        first = (summary or "").strip().splitlines()[0][:200] if (summary or "").strip() else ""
        lines.append(f"- {format_task_id(other)} — {title} ({_when(ended)}): {first}")
    return lines


def cap(text: str, limit: int) -> str:
    """Cut text at ``limit`` characters with a visible marker."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [truncated, {len(text) - limit} chars omitted]"


def quote(text: str) -> str:
    """Render text as a Markdown quote, so it reads as data, not as instructions."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines()) or ">"


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
