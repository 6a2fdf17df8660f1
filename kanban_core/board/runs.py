"""Claims and attempts: fenced runs with secret tokens, DB-clock leases and every way a run ends.

Every worker-side write (heartbeat, complete, block) names its run and proves the token handed
out at claim; the UPDATE is guarded by "still running, still this run, token matches", so a write
from a stale attempt changes nothing and is refused.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from kanban_core.board import events, hosts, links, notify, permissions
from kanban_core.board.domain import (
    BlockKind,
    Claim,
    EventKind,
    RunId,
    RunOutcome,
    RunProof,
    Task,
    TaskId,
    TaskStatus,
    format_run_id,
    format_task_id,
)
from kanban_core.board.rows import (
    TASK_COLUMNS,
    dump_json,
    hash_token as hash_token,  # callers hash tokens through runs
    task_from_row,
)
from kanban_core.errors import InvalidTransition, PermissionDenied, StaleRun, TaskNotFound
from kanban_core.storage import Query, Transaction

# The run's id is allocated here, so the run row is inserted with it and the task needs no
# second UPDATE to point at its run.
_CLAIM_SET = (
    "status = 'running', attempts = attempts + 1, current_run_id = {next_id:task_runs}, "
    "lease_owner = :claimer, "
    "lease_expires_ms = {now} + :ttl_ms, heartbeat_ms = {now}, "
    "started_ms = COALESCE(started_ms, {now}), updated_ms = {now}, "
    "deadline_ms = CASE WHEN max_runtime_s IS NULL THEN NULL "
    "ELSE {now} + max_runtime_s * 1000 END"
)
_READY_PICK = (
    "SELECT id FROM tasks %s WHERE status = 'ready' "
    "AND (not_before_ms IS NULL OR not_before_ms <= {now}) %s"
    "ORDER BY priority DESC, created_ms, id LIMIT 1 {skip_locked}"
)
# Caps, checked by the claiming UPDATE itself (SQLite: the one writer makes the counts exact).
# An absent cap is passed as a number no count reaches.
_CAPS = (
    " AND (SELECT count(*) FROM tasks c WHERE c.status = 'running') < :max_running"
    " AND (SELECT count(*) FROM tasks c WHERE c.status = 'running' "
    "AND c.assignee IS tasks.assignee) < :max_running_assignee"
)


def _claim_queries(tag: str, placement: str) -> dict[tuple[str, bool], Query]:
    """The SQLite claim statements (by id, next, next for an assignee; capped or not) for one
    placement predicate, which sits in the ready pick itself so a host picks only its work."""
    by_id = f"UPDATE tasks SET {_CLAIM_SET} WHERE id = :id AND status = 'ready'{placement}"
    pick = _READY_PICK % ("{index:ix_tasks_status}", placement.strip() + " ")
    pick_for = _READY_PICK % (
        "{index:ix_tasks_ready_assignee}",
        f"AND assignee = :assignee {placement.strip()} ",
    )
    heads = {
        "by_id": by_id,
        "next": f"UPDATE tasks SET {_CLAIM_SET} WHERE id = ({pick}) AND status = 'ready'",
        "next_for": f"UPDATE tasks SET {_CLAIM_SET} WHERE id = ({pick_for}) AND status = 'ready'",
    }
    return {
        (form, capped): Query(
            f"claim_{form}_{tag}{'_capped' if capped else ''}",
            f"{head}{_CAPS if capped else ''} RETURNING {TASK_COLUMNS}",
        )
        for form, head in heads.items()
        for capped in (False, True)
    }


# The implicit host (no enrollment: every SQLite board by default) runs unplaced work only.
_CLAIMS_IMPLICIT = _claim_queries("implicit", hosts.IMPLICIT_PLACEMENT)
_CLAIMS_HOST = _claim_queries("host", hosts.HOST_PLACEMENT)
_NO_CAP = 2**62


# PostgreSQL: the whole claim, placement included, is one call of a function (migrations 0012
# and 0014), in autocommit: one round trip.
_PG_CLAIM = Query(
    "pg_claim",
    f"SELECT {TASK_COLUMNS} FROM kanban_claim(CAST(:claimer AS TEXT), "
    "CAST(:ttl_ms AS BIGINT), CAST(:token_hash AS TEXT), CAST(:id AS BIGINT), "
    "CAST(:assignee AS TEXT), CAST(:max_running AS INTEGER), "
    "CAST(:max_running_assignee AS INTEGER), CAST(:host_id AS BIGINT), "
    "CAST(:host_secret AS TEXT))",
)
# PostgreSQL: a worker's fenced completion, with everything it sets off, in one call.
_PG_COMPLETE = Query(
    "pg_complete",
    f"SELECT {TASK_COLUMNS} FROM kanban_complete(CAST(:id AS BIGINT), "
    "CAST(:run_id AS BIGINT), CAST(:token_hash AS TEXT), CAST(:result AS TEXT), "
    "CAST(:summary AS TEXT), CAST(:metadata AS TEXT), CAST(:payload AS TEXT), "
    "CAST(:promoted_payload AS TEXT))",
)
_INSERT_RUN = Query(
    "insert_run",
    "INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status, "
    "started_ms, lease_ttl_ms, heartbeat_ms, max_runtime_s, host_id) VALUES (:id, :task_id, "
    ":attempt, :profile, :claimer, :token_hash, 'running', {now}, :ttl_ms, {now}, "
    ":max_runtime_s, :host_id)",
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

# The fence: the task is running this very run, the caller knows the run's secret, and the
# run's host (if enrolled) is not revoked.
_FENCE = (
    "id = :id AND status = 'running' AND current_run_id = :run_id AND EXISTS ("
    "SELECT 1 FROM task_runs r WHERE r.id = :run_id AND r.task_id = :id "
    f"AND r.token_hash = :token_hash AND r.ended_ms IS NULL{hosts.HOST_NOT_REVOKED})"
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
    f"UPDATE tasks SET {_DONE_SET} WHERE {_FENCE} RETURNING {TASK_COLUMNS}, {_FOLLOW_UPS}",
)
_COMPLETE_AS_READ = Query(
    "complete_as_read",
    f"UPDATE tasks SET {_DONE_SET} WHERE {_AS_READ} RETURNING {TASK_COLUMNS}, {_FOLLOW_UPS}",
)
_BLOCK_FENCED = Query(
    "block_fenced", f"UPDATE tasks SET {_BLOCK_SET} WHERE {_FENCE} RETURNING {TASK_COLUMNS}"
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
_HEARTBEAT = Query(
    "heartbeat",
    "UPDATE tasks SET heartbeat_ms = {now}, lease_expires_ms = {now} + "
    f"(SELECT lease_ttl_ms FROM task_runs WHERE id = :run_id) WHERE {_FENCE} "
    "RETURNING lease_expires_ms",
)
# Progress is fenced like a heartbeat but renews nothing: only the current attempt may speak.
_PROGRESS_FENCE = Query("progress_fence", f"SELECT 1 FROM tasks WHERE {_FENCE}")
_RUN_HEARTBEAT = Query(
    "run_heartbeat", "UPDATE task_runs SET heartbeat_ms = {now} WHERE id = :run_id"
)
_CLEAR_PAUSE = Query("clear_pause", "UPDATE tasks SET pause_reason = NULL WHERE id = :id")
_TASK_STATE = Query("task_state", "SELECT status, current_run_id FROM tasks WHERE id = :id")
_GET = Query("get_task_for_run", f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = :id")

#: Statuses a person may complete from, and block from.
COMPLETABLE = (TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.BLOCKED)
BLOCKABLE = (TaskStatus.TRIAGE, TaskStatus.TODO, TaskStatus.READY, TaskStatus.RUNNING)
SUMMARY_EVENT_CHARS = 400


def claim(
    tx: Transaction,
    *,
    claimer: str,
    ttl_ms: int,
    task_id: TaskId | None = None,
    assignee: str | None = None,
    max_running: int | None = None,
    max_running_assignee: int | None = None,
    host: hosts.HostIdentity | None = None,
) -> Claim | None:
    """Claim a ready task (a given one, or the next by priority); None if nothing was claimable.

    ``host`` is the claiming machine's enrollment (None: the implicit host): only work it may
    run is claimed, and nothing if it is revoked.

    ``max_running`` caps the running tasks of the whole board, ``max_running_assignee`` those
    of the claimed task's assignee: a claim that would exceed either claims nothing. Both are
    checked in the claim itself, so they hold for several claimers racing.
    """
    token = secrets.token_urlsafe(24)
    if tx.dialect == "postgresql":
        return _pg_claim(
            tx, token, claimer, ttl_ms, task_id, assignee, (max_running, max_running_assignee), host
        )
    params: dict[str, Any] = {"claimer": claimer, "ttl_ms": ttl_ms}
    queries = _CLAIMS_IMPLICIT
    if host is not None:
        queries = _CLAIMS_HOST
        params |= {"host_id": host.host_id, "host_secret": host.secret_hash}
    capped = max_running is not None or max_running_assignee is not None
    if capped:
        params["max_running"] = _NO_CAP if max_running is None else max_running
        params["max_running_assignee"] = (
            _NO_CAP if max_running_assignee is None else max_running_assignee
        )
    if task_id is not None:
        params["id"] = task_id
        row = tx.fetchone(queries["by_id", capped], params)
    elif assignee is not None:
        params["assignee"] = assignee
        row = tx.fetchone(queries["next_for", capped], params)
    else:
        row = tx.fetchone(queries["next", capped], params)
    if row is None:
        return None
    task = task_from_row(row)
    run_id, lease = task.current_run_id, task.lease_expires_ms
    assert run_id is not None
    assert lease is not None
    tx.execute(
        _INSERT_RUN,
        {
            "id": run_id,
            "task_id": task.id,
            "attempt": task.attempts,
            "profile": task.assignee,
            "claimer": claimer,
            "token_hash": hash_token(token),
            "ttl_ms": ttl_ms,
            "max_runtime_s": task.max_runtime_s,
            "host_id": None if host is None else host.host_id,
        },
    )
    events.append(
        tx, task.id, EventKind.CLAIMED, {"claimer": claimer, "lease_expires_ms": lease}, run_id
    )
    if task.pause_reason is not None:
        # Only a task paused at a usage limit pays for this statement; its chats hear it resumed.
        tx.execute(_CLEAR_PAUSE, {"id": task.id})
        events.append(tx, task.id, EventKind.QUOTA_RESUMED, {"after": task.pause_reason}, run_id)
        task = dataclasses.replace(task, pause_reason=None)
    return Claim(task, run_id, task.attempts, token, lease)


def _pg_claim(
    tx: Transaction,
    token: str,
    claimer: str,
    ttl_ms: int,
    task_id: TaskId | None,
    assignee: str | None,
    caps: tuple[int | None, int | None],
    host: hosts.HostIdentity | None,
) -> Claim | None:
    row = tx.fetchone(
        _PG_CLAIM,
        {
            "claimer": claimer,
            "ttl_ms": ttl_ms,
            "token_hash": hash_token(token),
            "id": task_id,
            "assignee": None if task_id is not None else assignee,
            "max_running": caps[0],
            "max_running_assignee": caps[1],
            "host_id": None if host is None else host.host_id,
            "host_secret": None if host is None else host.secret_hash,
        },
    )
    if row is None:
        return None
    task = task_from_row(row)
    assert task.current_run_id is not None
    assert task.lease_expires_ms is not None
    return Claim(task, task.current_run_id, task.attempts, token, task.lease_expires_ms)


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
        row = tx.fetchone(_COMPLETE_FENCED, _fence_params(task_id, proof) | {"result": result})
        if row is None:
            _refuse_stale(tx, task_id, proof, "complete")
        run_id: RunId | None = proof.run_id
    else:
        status, run_id = _state(tx, task_id)
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
    params = _fence_params(task_id, proof) | {
        "result": result,
        "summary": summary or result,
        "metadata": dump_json(metadata),
        "payload": dump_json(_completed_payload(result, summary)),
        "promoted_payload": dump_json({"parent": format_task_id(task_id)}),
    }
    row = tx.fetchone(_PG_COMPLETE, params)
    if row is None:
        _refuse_stale(tx, task_id, proof, "complete")
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
) -> Task:
    """Park a task for a human; only an explicit unblock lifts it.

    ``by`` names the person who blocked it (an operator, not the task's agent). The reason is
    kept on the run: the open one is closed with it, and a task blocked before any claim gets a
    zero-length closed run, as a completion's handoff does — unless the reason is only the
    default one (``reason_given=False``).
    """
    params: dict[str, Any]
    if proof is not None:
        params = _fence_params(task_id, proof) | {"block_kind": kind.value}
        row = tx.fetchone(_BLOCK_FENCED, params)
        if row is None:
            _refuse_stale(tx, task_id, proof, "block")
        run_id: RunId | None = proof.run_id
    else:
        status, run_id = _state(tx, task_id)
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
    events.append(tx, task_id, event, payload, run_id)
    return task


def unblock(tx: Transaction, task_id: TaskId) -> Task:
    """Lift a block (human or gave-up): back to ready, or to todo while parents are unfinished."""
    row = tx.fetchone(_UNBLOCK, {"id": task_id})
    if row is None:
        status, _ = _state(tx, task_id)
        raise InvalidTransition(f"cannot unblock {format_task_id(task_id)}: it is {status.value}")
    task = task_from_row(row)
    events.append(tx, task_id, EventKind.UNBLOCKED, {"status": task.status.value})
    return task


def heartbeat(tx: Transaction, task_id: TaskId, *, proof: RunProof, note: str | None) -> int:
    """Renew the worker's lease from the database clock; returns the new expiry (epoch ms)."""
    expires = tx.scalar(_HEARTBEAT, _fence_params(task_id, proof))
    if expires is None:
        _refuse_stale(tx, task_id, proof, "heartbeat")
    tx.execute(_RUN_HEARTBEAT, {"run_id": proof.run_id})
    if note:
        events.append(tx, task_id, EventKind.HEARTBEAT, {"note": note}, proof.run_id)
    return int(expires)


def progress(tx: Transaction, task_id: TaskId, *, proof: RunProof, snapshot: dict[str, Any]) -> int:
    """Append the current run's progress snapshot (already bounded); returns the event id."""
    if tx.fetchone(_PROGRESS_FENCE, _fence_params(task_id, proof)) is None:
        _refuse_stale(tx, task_id, proof, "report progress on")
    return events.append(tx, task_id, EventKind.PROGRESS, snapshot, proof.run_id)


def reclaim(tx: Transaction, task_id: TaskId, *, reason: str | None, actor: str) -> Task:
    """Operator requeue of a running task: its run is closed as reclaimed, failures reset."""
    status, run_id = _state(tx, task_id)
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


def check_scope(proof: RunProof | None, task_id: TaskId) -> None:
    """A worker may change only its own task."""
    if proof is not None and proof.task_id != task_id:
        raise PermissionDenied(
            f"this worker is scoped to {format_task_id(proof.task_id)}; "
            f"refusing to change {format_task_id(task_id)}"
        )


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


def _state(tx: Transaction, task_id: TaskId) -> tuple[TaskStatus, RunId | None]:
    row = tx.fetchone(_TASK_STATE, {"id": task_id})
    if row is None:
        raise TaskNotFound(format_task_id(task_id))
    return TaskStatus(row[0]), (RunId(row[1]) if row[1] is not None else None)


def _fence_params(task_id: TaskId, proof: RunProof) -> dict[str, Any]:
    check_scope(proof, task_id)
    return {"id": task_id, "run_id": proof.run_id, "token_hash": hash_token(proof.token)}


def _as_read_params(task_id: TaskId, status: TaskStatus, run_id: RunId | None) -> dict[str, Any]:
    return {"id": task_id, "status": status.value, "run_or_zero": run_id or 0}


def _refuse_stale(tx: Transaction, task_id: TaskId, proof: RunProof, verb: str) -> None:
    status, current = _state(tx, task_id)
    revoked = hosts.revoked_host_of_run(tx, proof.run_id)
    if revoked is not None and current == proof.run_id:
        raise StaleRun(
            f"refused to {verb} {format_task_id(task_id)}: run {format_run_id(proof.run_id)} "
            f"belongs to host {revoked!r}, which was revoked; nothing was changed"
        )
    now = f"the task is {status.value}"
    if current is not None:
        now += f", current run {format_run_id(current)}"
    raise StaleRun(
        f"refused to {verb} {format_task_id(task_id)}: run {format_run_id(proof.run_id)} is not "
        f"its current attempt or its token does not match ({now}); nothing was changed"
    )


def get_task(tx: Transaction, task_id: TaskId) -> Task:
    """The task, or TaskNotFound (used after fenced writes)."""
    row = tx.fetchone(_GET, {"id": task_id})
    if row is None:
        raise TaskNotFound(format_task_id(task_id))
    return task_from_row(row)


_WORKER_PROFILE = Query(
    "worker_profile",
    "SELECT profile FROM task_runs WHERE id = :run_id AND task_id = :task_id "
    "AND token_hash = :token_hash AND ended_ms IS NULL",
)


def worker_name(tx: Transaction, proof: RunProof) -> str:
    """The identity a worker writes under, derived from its proven run (never from an argument)."""
    row = tx.fetchone(
        _WORKER_PROFILE,
        {"run_id": proof.run_id, "task_id": proof.task_id, "token_hash": hash_token(proof.token)},
    )
    if row is None:
        _refuse_stale(tx, proof.task_id, proof, "act for")
    assert row is not None
    return f"{row[0] or 'worker'}@{format_run_id(proof.run_id)}"


# A worktree or dir workspace lives on the disk of the host whose run made it: the task is
# bound to that host from then on (a scratch workspace is remade anywhere).
_SET_WORKSPACE = Query(
    "set_workspace",
    "UPDATE tasks SET workspace_path = :path, branch_name = :branch, host_id = CASE "
    "WHEN workspace_kind IN ('worktree', 'dir') THEN COALESCE(host_id, "
    "(SELECT r.host_id FROM task_runs r WHERE r.id = :run_id)) ELSE host_id END "
    f"WHERE {_FENCE}",
)
_SET_RUN_WORKSPACE = Query(
    "set_run_workspace", "UPDATE task_runs SET workspace_path = :path WHERE id = :run_id"
)


def set_workspace(
    tx: Transaction, task_id: TaskId, *, proof: RunProof, path: str, branch: str | None
) -> None:
    """Record where the worker runs, so retries reuse it and people can find it."""
    params = _fence_params(task_id, proof) | {"path": path, "branch": branch}
    if not tx.execute(_SET_WORKSPACE, params):
        _refuse_stale(tx, task_id, proof, "set the workspace of")
    tx.execute(_SET_RUN_WORKSPACE, {"run_id": proof.run_id, "path": path})
