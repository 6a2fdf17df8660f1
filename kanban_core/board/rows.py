"""Column lists shared by the queries and the functions that turn rows into domain records."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kanban_core.board.domain import (
    BlockKind,
    Comment,
    Event,
    Run,
    RunId,
    RunOutcome,
    Subscription,
    Task,
    TaskId,
    TaskStatus,
    WorkspaceKind,
)

TASK_COLUMNS = (
    "id, title, body, assignee, status, block_kind, priority, tenant, workspace_kind, "
    "workspace_path, created_by, created_ms, updated_ms, started_ms, completed_ms, result, "
    "skills, max_runtime_s, idempotency_key, attempts, current_run_id, lease_expires_ms, "
    "consecutive_failures, last_failure_error, repo, branch_name, not_before_ms, "
    "pause_reason, max_cost_micro_usd, max_tokens, host_label, "
    # The placement's host by name (one primary-key look-up; hosts has no host_id column, so
    # host_id is the task's, whether read from tasks, a RETURNING or a claim function's rows).
    "(SELECT name FROM hosts WHERE hosts.id = host_id)"
)
RUN_COLUMNS = (
    "id, task_id, attempt, profile, claimer, status, outcome, started_ms, ended_ms, "
    "worker_pid, summary, metadata, error, input_tokens, output_tokens, cost_micro_usd"
)
EVENT_COLUMNS = "id, task_id, run_id, kind, payload, created_ms"
COMMENT_COLUMNS = "id, task_id, author, body, created_ms"
SUBSCRIPTION_COLUMNS = "task_id, platform, chat_id, thread_id, user_id, created_ms"

_STATUS = {s.value: s for s in TaskStatus}
_BLOCK = {k.value: k for k in BlockKind}
_WORKSPACE = {k.value: k for k in WorkspaceKind}
_OUTCOME = {o.value: o for o in RunOutcome}


def task_from_row(row: tuple[Any, ...]) -> Task:
    """Build a Task from a row selected with TASK_COLUMNS."""
    block_kind = row[5]
    skills = row[16]
    return Task(
        TaskId(row[0]),
        row[1],
        row[2],
        row[3],
        _STATUS[row[4]],
        _BLOCK[block_kind] if block_kind else None,
        row[6],
        row[7],
        _WORKSPACE[row[8]],
        row[9],
        row[10],
        row[11],
        row[12],
        row[13],
        row[14],
        row[15],
        tuple(json.loads(skills)) if skills else (),
        row[17],
        row[18],
        row[19],
        RunId(row[20]) if row[20] is not None else None,
        row[21],
        row[22],
        row[23],
        row[24],
        row[25],
        row[26],
        row[27],
        row[28],
        row[29],
        host=row[31],
        host_label=row[30],
    )


def run_from_row(row: tuple[Any, ...], lease_expires_ms: int | None = None) -> Run:
    """Build a Run from a row selected with RUN_COLUMNS."""
    outcome = row[6]
    metadata = row[11]
    return Run(
        id=RunId(row[0]),
        task_id=TaskId(row[1]),
        attempt=row[2],
        profile=row[3],
        claimer=row[4],
        status=row[5],
        outcome=_OUTCOME.get(outcome) if outcome else None,
        started_ms=row[7],
        ended_ms=row[8],
        lease_expires_ms=lease_expires_ms,
        worker_pid=row[9],
        summary=row[10],
        metadata=json.loads(metadata) if metadata else None,
        error=row[12],
        input_tokens=row[13],
        output_tokens=row[14],
        cost_micro_usd=row[15],
    )


def event_from_row(row: tuple[Any, ...]) -> Event:
    """Build an Event from a row selected with EVENT_COLUMNS."""
    payload = row[4]
    return Event(
        id=row[0],
        task_id=TaskId(row[1]),
        run_id=RunId(row[2]) if row[2] is not None else None,
        kind=row[3],
        payload=json.loads(payload) if payload else None,
        created_ms=row[5],
    )


def comment_from_row(row: tuple[Any, ...]) -> Comment:
    """Build a Comment from a row selected with COMMENT_COLUMNS."""
    return Comment(id=row[0], task_id=TaskId(row[1]), author=row[2], body=row[3], created_ms=row[4])


def subscription_from_row(row: tuple[Any, ...]) -> Subscription:
    """Build a Subscription from a row selected with SUBSCRIPTION_COLUMNS."""
    return Subscription(
        task_id=TaskId(row[0]),
        platform=row[1],
        chat_id=row[2],
        thread_id=row[3],
        user_id=row[4],
        created_ms=row[5],
    )


def dump_json(value: Any) -> str | None:
    """Compact JSON for a TEXT column, or None."""
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def hash_token(token: str) -> str:
    """Tokens are stored hashed, so reading the database does not hand out worker credentials."""
    return hashlib.sha256(token.encode()).hexdigest()
