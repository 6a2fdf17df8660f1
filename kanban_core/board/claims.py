"""Claims: the next ready task (or a given one) taken under a lease, within the caps, for a host.

SQLite claims with one guarded UPDATE and its few follow-up statements (its single writer makes
the caps exact); PostgreSQL with one call of the ``kanban_claim`` function, in autocommit.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from kanban_core.board import events, hosts
from kanban_core.board.domain import Claim, EventKind, TaskId
from kanban_core.board.rows import TASK_COLUMNS, hash_token, task_from_row
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
_INSERT_RUN = Query(
    "insert_run",
    "INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status, "
    "started_ms, lease_ttl_ms, heartbeat_ms, max_runtime_s, host_id) VALUES (:id, :task_id, "
    ":attempt, :profile, :claimer, :token_hash, 'running', {now}, :ttl_ms, {now}, "
    ":max_runtime_s, :host_id)",
)
_CLEAR_PAUSE = Query("clear_pause", "UPDATE tasks SET pause_reason = NULL WHERE id = :id")


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
