"""Fences: a worker's write proves its run (current, token matching, host not revoked).

Every worker-side write names its run and proves the token handed out at claim; the UPDATE is
guarded by "still running, still this run, token matches", so a write from a stale attempt
changes nothing and is refused with a message saying why.
"""

from __future__ import annotations

from typing import Any

from kanban_core.board import events, hosts
from kanban_core.board.domain import (
    EventKind,
    RunId,
    RunProof,
    Task,
    TaskId,
    TaskStatus,
    format_run_id,
    format_task_id,
)
from kanban_core.board.rows import TASK_COLUMNS, hash_token, task_from_row
from kanban_core.errors import PermissionDenied, StaleRun, TaskNotFound
from kanban_core.storage import Query, Transaction

# The fence: the task is running this very run, the caller knows the run's secret, and the
# run's host (if enrolled) is not revoked.
FENCE = (
    "id = :id AND status = 'running' AND current_run_id = :run_id AND EXISTS ("
    "SELECT 1 FROM task_runs r WHERE r.id = :run_id AND r.task_id = :id "
    f"AND r.token_hash = :token_hash AND r.ended_ms IS NULL{hosts.HOST_NOT_REVOKED})"
)
_HEARTBEAT = Query(
    "heartbeat",
    "UPDATE tasks SET heartbeat_ms = {now}, lease_expires_ms = {now} + "
    f"(SELECT lease_ttl_ms FROM task_runs WHERE id = :run_id) WHERE {FENCE} "
    "RETURNING lease_expires_ms",
)
# Progress is fenced like a heartbeat but renews nothing: only the current attempt may speak.
_PROGRESS_FENCE = Query("progress_fence", f"SELECT 1 FROM tasks WHERE {FENCE}")
_RUN_HEARTBEAT = Query(
    "run_heartbeat", "UPDATE task_runs SET heartbeat_ms = {now} WHERE id = :run_id"
)
_TASK_STATE = Query("task_state", "SELECT status, current_run_id FROM tasks WHERE id = :id")
_GET = Query("get_task_for_run", f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = :id")


def heartbeat(tx: Transaction, task_id: TaskId, *, proof: RunProof, note: str | None) -> int:
    """Renew the worker's lease from the database clock; returns the new expiry (epoch ms)."""
    expires = tx.scalar(_HEARTBEAT, fence_params(task_id, proof))
    if expires is None:
        refuse_stale(tx, task_id, proof, "heartbeat")
    tx.execute(_RUN_HEARTBEAT, {"run_id": proof.run_id})
    if note:
        events.append(tx, task_id, EventKind.HEARTBEAT, {"note": note}, proof.run_id)
    return int(expires)


def progress(tx: Transaction, task_id: TaskId, *, proof: RunProof, snapshot: dict[str, Any]) -> int:
    """Append the current run's progress snapshot (already bounded); returns the event id."""
    if tx.fetchone(_PROGRESS_FENCE, fence_params(task_id, proof)) is None:
        refuse_stale(tx, task_id, proof, "report progress on")
    return events.append(tx, task_id, EventKind.PROGRESS, snapshot, proof.run_id)


def check_scope(proof: RunProof | None, task_id: TaskId) -> None:
    """A worker may change only its own task."""
    if proof is not None and proof.task_id != task_id:
        raise PermissionDenied(
            f"this worker is scoped to {format_task_id(proof.task_id)}; "
            f"refusing to change {format_task_id(task_id)}"
        )


def state(tx: Transaction, task_id: TaskId) -> tuple[TaskStatus, RunId | None]:
    """The task's status and current run, or TaskNotFound."""
    row = tx.fetchone(_TASK_STATE, {"id": task_id})
    if row is None:
        raise TaskNotFound(format_task_id(task_id))
    return TaskStatus(row[0]), (RunId(row[1]) if row[1] is not None else None)


def fence_params(task_id: TaskId, proof: RunProof) -> dict[str, Any]:
    """The fence's parameters (the worker's scope checked first)."""
    check_scope(proof, task_id)
    return {"id": task_id, "run_id": proof.run_id, "token_hash": hash_token(proof.token)}


def refuse_stale(tx: Transaction, task_id: TaskId, proof: RunProof, verb: str) -> None:
    """Raise StaleRun for a fenced write that changed nothing, saying why."""
    status, current = state(tx, task_id)
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


# A run of a revoked host proves nothing: whatever its worker or supervisor would write under
# it (a comment, a failure it records for itself) is refused like a stale attempt's.
_WORKER_PROFILE = Query(
    "worker_profile",
    "SELECT r.profile FROM task_runs r WHERE r.id = :run_id AND r.task_id = :task_id "
    f"AND r.token_hash = :token_hash AND r.ended_ms IS NULL{hosts.HOST_NOT_REVOKED}",
)


def worker_name(tx: Transaction, proof: RunProof) -> str:
    """The identity a worker writes under, derived from its proven run (never from an argument)."""
    row = tx.fetchone(
        _WORKER_PROFILE,
        {"run_id": proof.run_id, "task_id": proof.task_id, "token_hash": hash_token(proof.token)},
    )
    if row is None:
        refuse_stale(tx, proof.task_id, proof, "act for")
    assert row is not None
    return f"{row[0] or 'worker'}@{format_run_id(proof.run_id)}"


# A worktree or dir workspace lives on the disk of the host whose run made it: the task is
# bound to that host from then on (a scratch workspace is remade anywhere).
_SET_WORKSPACE = Query(
    "set_workspace",
    "UPDATE tasks SET workspace_path = :path, branch_name = :branch, host_id = CASE "
    "WHEN workspace_kind IN ('worktree', 'dir') THEN COALESCE(host_id, "
    "(SELECT r.host_id FROM task_runs r WHERE r.id = :run_id)) ELSE host_id END "
    f"WHERE {FENCE}",
)
_SET_RUN_WORKSPACE = Query(
    "set_run_workspace", "UPDATE task_runs SET workspace_path = :path WHERE id = :run_id"
)


def set_workspace(
    tx: Transaction, task_id: TaskId, *, proof: RunProof, path: str, branch: str | None
) -> None:
    """Record where the worker runs, so retries reuse it and people can find it."""
    params = fence_params(task_id, proof) | {"path": path, "branch": branch}
    if not tx.execute(_SET_WORKSPACE, params):
        refuse_stale(tx, task_id, proof, "set the workspace of")
    tx.execute(_SET_RUN_WORKSPACE, {"run_id": proof.run_id, "path": path})
