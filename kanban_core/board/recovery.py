"""Runs that end without a verdict: expired leases, overdue runs, crashes and spawn failures.

Each counts toward the task's failure limit. Below it the task goes back to ready with an
exponential backoff (``not_before_ms``); at it the task is blocked with kind ``gave_up`` and the
last error as the reason. Every write is fenced on the run id, so a failure reported for a run
that already ended (the agent completed a moment earlier) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kanban_core.board import events, runs
from kanban_core.board.domain import EventKind, RunId, RunOutcome, TaskId, format_task_id
from kanban_core.errors import StaleRun
from kanban_core.storage import Query, Transaction

MAX_ERROR_CHARS = 500
MAX_EVIDENCE_CHARS = 4000

_RUNNING = Query(
    "running_for_failure",
    "SELECT t.consecutive_failures, t.max_retries FROM tasks t "
    "WHERE t.id = :id AND t.status = 'running' AND t.current_run_id = :run_id",
)
_FAIL = Query(
    "record_failure",
    "UPDATE tasks SET status = CASE WHEN :gave_up = 1 THEN 'blocked' ELSE "
    f"{runs.WAITING_OR_READY} END, block_kind = :block_kind, "
    "consecutive_failures = :failures, last_failure_error = :error, "
    "not_before_ms = CASE WHEN :backoff_ms > 0 THEN {now} + :backoff_ms ELSE NULL END, "
    "current_run_id = NULL, lease_owner = NULL, lease_expires_ms = NULL, heartbeat_ms = NULL, "
    "deadline_ms = NULL, updated_ms = {now} "
    "WHERE id = :id AND status = 'running' AND current_run_id = :run_id",
)
_EXPIRED = Query(
    "expired_leases",
    "SELECT id, current_run_id, lease_owner FROM tasks {index:ix_tasks_lease} "
    "WHERE status = 'running' "
    "AND lease_expires_ms < {now} ORDER BY lease_expires_ms LIMIT :limit",
)
_OVERDUE = Query(
    "overdue_runs",
    "SELECT t.id, t.current_run_id, r.worker_pid, r.worker_host, r.max_runtime_s "
    "FROM tasks t {index:ix_tasks_deadline} JOIN task_runs r ON r.id = t.current_run_id "
    "WHERE t.status = 'running' AND t.deadline_ms < {now} - :grace_ms "
    "ORDER BY t.deadline_ms LIMIT :limit",
)
_SET_WORKER = Query(
    "set_worker",
    "UPDATE task_runs SET worker_pid = :pid, worker_host = :host WHERE id = :run_id "
    "AND ended_ms IS NULL",
)


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    """How many consecutive failures a task gets, and how long to wait between attempts."""

    limit: int = 3
    backoff_base_s: int = 30
    backoff_cap_s: int = 1800

    def backoff_ms(self, failures: int) -> int:
        """Exponential: base, twice base, four times base, and so on up to the cap."""
        delay_s: int = self.backoff_base_s * 2 ** max(0, failures - 1)
        return min(delay_s, self.backoff_cap_s) * 1000


@dataclass(frozen=True, slots=True)
class FailureVerdict:
    """What recording a failure did."""

    task_id: TaskId
    failures: int
    limit: int
    gave_up: bool
    backoff_ms: int


@dataclass(frozen=True, slots=True)
class OverdueRun:
    """A running task past its max runtime (plus grace)."""

    task_id: TaskId
    run_id: RunId
    pid: int | None
    host: str | None
    max_runtime_s: int | None


_OUTCOME_EVENT = {
    RunOutcome.CRASHED: EventKind.CRASHED,
    RunOutcome.TIMED_OUT: EventKind.TIMED_OUT,
    RunOutcome.SPAWN_FAILED: EventKind.SPAWN_FAILED,
}


def record_failure(
    tx: Transaction,
    task_id: TaskId,
    run_id: RunId,
    outcome: RunOutcome,
    error: str,
    policy: FailurePolicy,
    *,
    evidence: str | None = None,
) -> FailureVerdict:
    """Close the run with ``outcome`` and requeue with backoff, or give up at the limit."""
    row = tx.fetchone(_RUNNING, {"id": task_id, "run_id": run_id})
    if row is None:
        raise StaleRun(
            f"{format_task_id(task_id)} is no longer running run {run_id}; "
            "its verdict was already recorded"
        )
    failures = int(row[0]) + 1
    limit = int(row[1]) if row[1] else policy.limit
    gave_up = failures >= limit
    backoff = 0 if gave_up else policy.backoff_ms(failures)
    short = error.strip()[:MAX_ERROR_CHARS]
    tx.execute(
        _FAIL,
        {
            "id": task_id,
            "run_id": run_id,
            "gave_up": int(gave_up),
            "block_kind": "gave_up" if gave_up else None,
            "failures": failures,
            "error": short,
            "backoff_ms": backoff,
        },
    )
    detail = (
        short if not evidence else f"{short}\n--- log tail ---\n{evidence[-MAX_EVIDENCE_CHARS:]}"
    )
    runs.close(tx, run_id, outcome, error=detail)
    payload = {"error": short, "failures": failures, "limit": limit}
    events.append(tx, task_id, _OUTCOME_EVENT[outcome], payload | {"backoff_ms": backoff}, run_id)
    if gave_up:
        events.append(tx, task_id, EventKind.GAVE_UP, payload | {"trigger": outcome.value}, run_id)
    return FailureVerdict(task_id, failures, limit, gave_up, backoff)


def expired_leases(tx: Transaction, *, limit: int = 100) -> list[tuple[TaskId, RunId, str | None]]:
    """Running tasks whose lease ran out by the database clock: (task, run, holder)."""
    return [
        (TaskId(row[0]), RunId(row[1]), row[2])
        for row in tx.fetchall(_EXPIRED, {"limit": limit})
        if row[1] is not None
    ]


def overdue_runs(tx: Transaction, *, grace_ms: int, limit: int = 100) -> list[OverdueRun]:
    """Running tasks past their deadline by more than ``grace_ms``."""
    return [
        OverdueRun(TaskId(r[0]), RunId(r[1]), r[2], r[3], r[4])
        for r in tx.fetchall(_OVERDUE, {"grace_ms": grace_ms, "limit": limit})
    ]


def set_worker(tx: Transaction, task_id: TaskId, run_id: RunId, *, pid: int, host: str) -> None:
    """Record which process supervises a run (for local kills and for people reading show)."""
    if tx.execute(_SET_WORKER, {"run_id": run_id, "pid": pid, "host": host}):
        events.append(tx, task_id, EventKind.SPAWNED, {"pid": pid, "host": host}, run_id)
