"""Runs: every way one ends (completed, blocked, reclaimed), fenced for workers, guarded for people.

A worker's write proves its run (``fences``); a person's is guarded by "still as read a moment
ago". Claims are in ``claims``; both are re-exported here, where the board's callers find them.
"""

from __future__ import annotations

from typing import Any

from kanban_core.board import events, fences, links, notify, permissions
from kanban_core.board.claims import claim as claim
from kanban_core.board.domain import (
    BlockKind,
    EventKind,
    RunId,
    RunOutcome,
    RunProof,
    Task,
    TaskId,
    TaskStatus,
    format_task_id,
)
from kanban_core.board.fences import (
    check_scope as check_scope,
    get_task as get_task,
    heartbeat as heartbeat,
    progress as progress,
    set_workspace as set_workspace,
    worker_name as worker_name,
)
from kanban_core.board.rows import (
    TASK_COLUMNS,
    dump_json,
    hash_token as hash_token,  # callers hash tokens through runs
    task_from_row,
)
from kanban_core.errors import InvalidTransition
from kanban_core.storage import Query, Transaction

# PostgreSQL: a worker's fenced completion, with everything it sets off, in one call.
_PG_COMPLETE = Query(
    "pg_complete",
    f"SELECT {TASK_COLUMNS} FROM kanban_complete(CAST(:id AS BIGINT), "
    "CAST(:run_id AS BIGINT), CAST(:token_hash AS TEXT), CAST(:result AS TEXT), "
    "CAST(:summary AS TEXT), CAST(:metadata AS TEXT), CAST(:payload AS TEXT), "
    "CAST(:promoted_payload AS TEXT))",
)
_INSERT_CLOSED_RUN = Query(
    "insert_closed_run",
    "INSERT INTO task_runs (task_id, attempt, profile, claimer, token_hash, status, outcome, "
    "started_ms, ended_ms, lease_ttl_ms, summary, metadata) VALUES (:task_id, :attempt, :profile, "
    ":claimer, '', :status, :outcome, {now}, {now}, 0, :summary, :metadata) RETURNING id",
)
_BUMP_ATTEMPTS = Query(
    "bump_attempts", "UPDATE tasks SET attempts = attempts + 1 WHERE id = :id RETURNING attempts"
)
_CLOSE_RUN = Query(
    "close_run",
    "UPDATE task_runs SET status = :status, outcome = :outcome, ended_ms = {now}, "
    "summary = COALESCE(:summary, summary), metadata = COALESCE(:metadata, metadata), "
    "error = COALESCE(:error, error) WHERE id = :run_id AND ended_ms IS NULL",
)

#: A task leaving running or blocked waits in todo while any parent is unfinished (a link can
#: be added while it runs), and is ready otherwise.
WAITING_OR_READY = (
    "CASE WHEN EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id "
    "WHERE l.child_id = tasks.id AND p.status NOT IN ('done', 'archived')) "
    "THEN 'todo' ELSE 'ready' END"
)

# The operator's guard: the task is still as we read it a moment ago.
_AS_READ = "id = :id AND status = :status AND COALESCE(current_run_id, 0) = :run_or_zero"
_OFF_RUNNING = (
    "current_run_id = NULL, lease_owner = NULL, lease_expires_ms = NULL, heartbeat_ms = NULL, "
    "deadline_ms = NULL, updated_ms = {now}"
)
_DONE_SET = (
    "status = 'done', completed_ms = {now}, result = COALESCE(:result, result), "
    "block_kind = NULL, consecutive_failures = 0, last_failure_error = NULL, "
    f"not_before_ms = NULL, pause_reason = NULL, {_OFF_RUNNING}"
)
_BLOCK_SET = f"status = 'blocked', block_kind = :block_kind, {_OFF_RUNNING}"
# What else a completion has to do, answered by its UPDATE: subscriptions to fan out to and
# end, children to promote. Most tasks have neither, and each check is a statement saved.
_FOLLOW_UPS = (
    "EXISTS (SELECT 1 FROM notify_subscriptions s WHERE s.task_id = tasks.id), "
    "EXISTS (SELECT 1 FROM task_links l WHERE l.parent_id = tasks.id)"
)
_COMPLETE_FENCED = Query(
    "complete_fenced",
    f"UPDATE tasks SET {_DONE_SET} WHERE {fences.FENCE} RETURNING {TASK_COLUMNS}, {_FOLLOW_UPS}",
)
_COMPLETE_AS_READ = Query(
    "complete_as_read",
    f"UPDATE tasks SET {_DONE_SET} WHERE {_AS_READ} RETURNING {TASK_COLUMNS}, {_FOLLOW_UPS}",
)
_BLOCK_FENCED = Query(
    "block_fenced", f"UPDATE tasks SET {_BLOCK_SET} WHERE {fences.FENCE} RETURNING {TASK_COLUMNS}"
)
_BLOCK_AS_READ = Query(
    "block_as_read", f"UPDATE tasks SET {_BLOCK_SET} WHERE {_AS_READ} RETURNING {TASK_COLUMNS}"
)
_RECLAIM_AS_READ = Query(
    "reclaim_as_read",
    f"UPDATE tasks SET status = {WAITING_OR_READY}, consecutive_failures = 0, "
    "last_failure_error = NULL, "
    f"not_before_ms = NULL, {_OFF_RUNNING} WHERE {_AS_READ} RETURNING {TASK_COLUMNS}",
)
_UNBLOCK = Query(
    "unblock",
    f"UPDATE tasks SET status = {WAITING_OR_READY}, "
    "block_kind = NULL, consecutive_failures = 0, last_failure_error = NULL, not_before_ms = NULL, "
    f"{_OFF_RUNNING} WHERE id = :id AND status = 'blocked' RETURNING {TASK_COLUMNS}",
)
#: Statuses a person may complete from, and block from.
COMPLETABLE = (TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.BLOCKED)
BLOCKABLE = (TaskStatus.TRIAGE, TaskStatus.TODO, TaskStatus.READY, TaskStatus.RUNNING)
SUMMARY_EVENT_CHARS = 400


def complete(
    tx: Transaction,
    task_id: TaskId,
    *,
    proof: RunProof | None,
    result: str | None = None,
    summary: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Task:
    """Mark a task done, close its run with the handoff, notify, and promote its children."""
    if proof is not None and tx.dialect == "postgresql":
        return _pg_complete(tx, task_id, proof, result, summary, metadata)
    if proof is not None:
        params = fences.fence_params(task_id, proof) | {"result": result}
        row = tx.fetchone(_COMPLETE_FENCED, params)
        if row is None:
            fences.refuse_stale(tx, task_id, proof, "complete")
        run_id: RunId | None = proof.run_id
    else:
        status, run_id = fences.state(tx, task_id)
        if status not in COMPLETABLE:
            raise InvalidTransition(
                f"cannot complete {format_task_id(task_id)}: it is {status.value} "
                "(complete accepts ready, running or blocked tasks)"
            )
        row = tx.fetchone(
            _COMPLETE_AS_READ, _as_read_params(task_id, status, run_id) | {"result": result}
        )
        if row is None:
            raise InvalidTransition(f"{format_task_id(task_id)} changed meanwhile; try again")
    assert row is not None
    task = task_from_row(row)
    encoded = dump_json(metadata)
    if run_id is not None:
        close(tx, run_id, RunOutcome.COMPLETED, summary=summary or result, metadata=encoded)
    elif summary is not None or metadata is not None:
        run_id = _synthetic_run(tx, task, RunOutcome.COMPLETED, summary or result, encoded)
    subscribed, has_children = _follow_ups(tx, row)
    events.append(
        tx,
        task_id,
        EventKind.COMPLETED,
        _completed_payload(result, summary),
        run_id,
        fan_out=subscribed,
    )
    if subscribed:
        notify.end_subscriptions(tx, task_id)
    if has_children:
        links.promote_children(tx, task_id)
    return task


def _completed_payload(result: str | None, summary: str | None) -> dict[str, Any]:
    first_line = (summary or result or "").strip().splitlines()
    return {
        "summary": first_line[0][:SUMMARY_EVENT_CHARS] if first_line else None,
        "result_len": len(result or ""),
    }


def _pg_complete(
    tx: Transaction,
    task_id: TaskId,
    proof: RunProof,
    result: str | None,
    summary: str | None,
    metadata: dict[str, Any] | None,
) -> Task:
    params = fences.fence_params(task_id, proof) | {
        "result": result,
        "summary": summary or result,
        "metadata": dump_json(metadata),
        "payload": dump_json(_completed_payload(result, summary)),
        "promoted_payload": dump_json({"parent": format_task_id(task_id)}),
    }
    row = tx.fetchone(_PG_COMPLETE, params)
    if row is None:
        fences.refuse_stale(tx, task_id, proof, "complete")
    assert row is not None
    return task_from_row(row)


def _follow_ups(tx: Transaction, row: tuple[Any, ...]) -> tuple[bool, bool]:
    """(subscribed, has children) as the completing UPDATE saw them.

    Trusted on SQLite, whose single writer lets nothing subscribe or link before this commits.
    On PostgreSQL a link or a subscription may commit meanwhile, so there both follow-ups always
    run, each statement seeing whatever committed before it.
    """
    if tx.dialect != "sqlite":
        return True, True
    return bool(row[-2]), bool(row[-1])


def block(
    tx: Transaction,
    task_id: TaskId,
    *,
    proof: RunProof | None,
    reason: str,
    kind: BlockKind = BlockKind.HUMAN,
    by: str | None = None,
    reason_given: bool = True,
    detail: dict[str, Any] | None = None,
) -> Task:
    """Park a task for a human; only an explicit unblock lifts it.

    ``by`` names the person who blocked it (an operator, not the task's agent). The reason is
    kept on the run: the open one is closed with it, and a task blocked before any claim gets a
    zero-length closed run, as a completion's handoff does — unless the reason is only the
    default one (``reason_given=False``). ``detail`` adds to the blocked event's payload.
    """
    params: dict[str, Any]
    if proof is not None:
        params = fences.fence_params(task_id, proof) | {"block_kind": kind.value}
        row = tx.fetchone(_BLOCK_FENCED, params)
        if row is None:
            fences.refuse_stale(tx, task_id, proof, "block")
        run_id: RunId | None = proof.run_id
    else:
        status, run_id = fences.state(tx, task_id)
        if status not in BLOCKABLE:
            raise InvalidTransition(f"cannot block {format_task_id(task_id)}: it is {status.value}")
        params = _as_read_params(task_id, status, run_id) | {"block_kind": kind.value}
        row = tx.fetchone(_BLOCK_AS_READ, params)
        if row is None:
            raise InvalidTransition(f"{format_task_id(task_id)} changed meanwhile; try again")
    assert row is not None
    task = task_from_row(row)
    outcome = RunOutcome.GAVE_UP if kind is BlockKind.GAVE_UP else RunOutcome.BLOCKED
    if run_id is not None:
        close(tx, run_id, outcome, summary=reason)
    elif reason_given:
        run_id = _synthetic_run(tx, task, outcome, reason, None)
    event = EventKind.GAVE_UP if kind is BlockKind.GAVE_UP else EventKind.BLOCKED
    payload: dict[str, Any] = {"reason": reason, "kind": kind.value}
    if by is not None:
        payload["by"] = by
    events.append(tx, task_id, event, payload | (detail or {}), run_id)
    return task


def unblock(tx: Transaction, task_id: TaskId) -> Task:
    """Lift a block (human or gave-up): back to ready, or to todo while parents are unfinished."""
    row = tx.fetchone(_UNBLOCK, {"id": task_id})
    if row is None:
        status, _ = fences.state(tx, task_id)
        raise InvalidTransition(f"cannot unblock {format_task_id(task_id)}: it is {status.value}")
    task = task_from_row(row)
    events.append(tx, task_id, EventKind.UNBLOCKED, {"status": task.status.value})
    return task


def reclaim(tx: Transaction, task_id: TaskId, *, reason: str | None, actor: str) -> Task:
    """Operator requeue of a running task: its run is closed as reclaimed, failures reset."""
    status, run_id = fences.state(tx, task_id)
    if status is not TaskStatus.RUNNING:
        raise InvalidTransition(f"cannot reclaim {format_task_id(task_id)}: it is {status.value}")
    row = tx.fetchone(_RECLAIM_AS_READ, _as_read_params(task_id, status, run_id))
    if row is None:
        raise InvalidTransition(f"{format_task_id(task_id)} changed meanwhile; try again")
    if run_id is not None:
        close(tx, run_id, RunOutcome.RECLAIMED, error=f"reclaimed by {actor}: {reason or 'manual'}")
    events.append(
        tx, task_id, EventKind.RECLAIMED, {"manual": True, "reason": reason, "by": actor}, run_id
    )
    return task_from_row(row)


def close(
    tx: Transaction,
    run_id: RunId,
    outcome: RunOutcome,
    *,
    summary: str | None = None,
    metadata: str | None = None,
    error: str | None = None,
) -> None:
    """End an open run with its outcome and handoff (no-op on an already closed run)."""
    tx.execute(
        _CLOSE_RUN,
        {
            "run_id": run_id,
            "status": "done" if outcome is RunOutcome.COMPLETED else outcome.value,
            "outcome": outcome.value,
            "summary": summary,
            "metadata": metadata,
            "error": error,
        },
    )
    # A run that ends can no longer act on an answer: a button pressed later is refused.
    permissions.cancel_for_run(tx, run_id)


def _synthetic_run(
    tx: Transaction, task: Task, outcome: RunOutcome, summary: str | None, metadata: str | None
) -> RunId:
    # A handoff or a block reason given on a never-claimed task still gets a (zero-length) run,
    # so it is not lost.
    attempt = tx.scalar(_BUMP_ATTEMPTS, {"id": task.id})
    return RunId(
        tx.scalar(
            _INSERT_CLOSED_RUN,
            {
                "task_id": task.id,
                "attempt": attempt,
                "profile": task.assignee,
                "claimer": "manual",
                "status": "done" if outcome is RunOutcome.COMPLETED else outcome.value,
                "outcome": outcome.value,
                "summary": summary,
                "metadata": metadata,
            },
        )
    )


def _as_read_params(task_id: TaskId, status: TaskStatus, run_id: RunId | None) -> dict[str, Any]:
    return {"id": task_id, "status": status.value, "run_or_zero": run_id or 0}
