"""Runs that end without a verdict: expired leases, overdue runs, crashes and spawn failures.

Each counts toward the task's failure limit. Below it the task goes back to ready with an
exponential backoff (``not_before_ms``); at it the task is blocked with kind ``gave_up`` and the
last error as the reason. Every write is fenced on the run id, so a failure reported for a run
that already ended (the agent completed a moment earlier) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from kanban_core.board import events, runs
from kanban_core.board.domain import (
    EventKind,
    RunId,
    RunOutcome,
    RunProof,
    TaskId,
    format_run_id,
    format_task_id,
    format_usd,
)
from kanban_core.board.rows import hash_token
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
    "SELECT t.id, t.current_run_id, r.worker_pid, r.worker_host, r.max_runtime_s, r.host_id "
    "FROM tasks t {index:ix_tasks_deadline} JOIN task_runs r ON r.id = t.current_run_id "
    "WHERE t.status = 'running' AND t.deadline_ms < {now} - :grace_ms "
    "ORDER BY t.deadline_ms LIMIT :limit",
)
# Driven from the running tasks (few: the caps bound them), never from the runs' history.
_REVOKED_HOSTS_RUNS = Query(
    "revoked_hosts_runs",
    "SELECT t.id, t.current_run_id, h.name FROM tasks t "
    "JOIN task_runs r ON r.id = t.current_run_id JOIN hosts h ON h.id = r.host_id "
    "WHERE t.status = 'running' AND h.revoked_ms IS NOT NULL ORDER BY t.id LIMIT :limit",
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
    #: The enrolled host that claimed it (None: the implicit host).
    host_id: int | None = None


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


def revoked_hosts_runs(tx: Transaction, *, limit: int = 100) -> list[tuple[TaskId, RunId, str]]:
    """Running tasks whose run belongs to a revoked host: (task, run, host name). Such a run is
    fenced (it can write nothing more), so it is reclaimed at once, not when its lease runs out."""
    return [
        (TaskId(r[0]), RunId(r[1]), str(r[2]))
        for r in tx.fetchall(_REVOKED_HOSTS_RUNS, {"limit": limit})
    ]


def overdue_runs(tx: Transaction, *, grace_ms: int, limit: int = 100) -> list[OverdueRun]:
    """Running tasks past their deadline by more than ``grace_ms``."""
    return [
        OverdueRun(TaskId(r[0]), RunId(r[1]), r[2], r[3], r[4], r[5])
        for r in tx.fetchall(_OVERDUE, {"grace_ms": grace_ms, "limit": limit})
    ]


def set_worker(tx: Transaction, task_id: TaskId, run_id: RunId, *, pid: int, host: str) -> None:
    """Record which process supervises a run (for local kills and for people reading show)."""
    if tx.execute(_SET_WORKER, {"run_id": run_id, "pid": pid, "host": host}):
        events.append(tx, task_id, EventKind.SPAWNED, {"pid": pid, "host": host}, run_id)


_QUOTA = Query(
    "record_quota",
    f"UPDATE tasks SET status = {runs.WAITING_OR_READY}, not_before_ms = :resume_at_ms, "
    "pause_reason = :reason, "
    "current_run_id = NULL, lease_owner = NULL, lease_expires_ms = NULL, heartbeat_ms = NULL, "
    "deadline_ms = NULL, updated_ms = {now} "
    "WHERE id = :id AND status = 'running' AND current_run_id = :run_id",
)
_NOW = Query("now_ms", "SELECT {now}")
#: How long after its run ended the run's own worker may still report the run's usage: an
#: agent's final figures (Claude Code's result line, an ACP prompt's response) come after its
#: verdict, once its turn is over.
USAGE_GRACE_MS = 10 * 60 * 1000


def _grown(column: str, param: str) -> str:
    # Reports are cumulative: a figure only grows (a late or repeated report never undoes one).
    value = f"CAST(:{param} AS BIGINT)"
    return (
        f"{column} = CASE WHEN {column} IS NULL OR {value} > {column} "
        f"THEN COALESCE({value}, {column}) ELSE {column} END"
    )


_SET_USAGE = (
    "UPDATE task_runs SET "
    + ", ".join(
        (
            _grown("input_tokens", "input_tokens"),
            _grown("output_tokens", "output_tokens"),
            _grown("cost_micro_usd", "cost"),
        )
    )
    + " WHERE id = :run_id AND task_id = :id"
)
_USAGE = Query("record_usage", f"{_SET_USAGE} AND ended_ms IS NULL")
# The run's own worker, proven by its token, also just after the run ended (its last report).
_WORKER_USAGE = Query(
    "record_worker_usage",
    f"{_SET_USAGE} AND token_hash = :token_hash "
    "AND (ended_ms IS NULL OR ended_ms >= {now} - CAST(:grace_ms AS BIGINT))",
)
_TASK_USAGE = Query(
    "task_usage",
    "SELECT COALESCE(SUM(r.input_tokens), 0) + COALESCE(SUM(r.output_tokens), 0), "
    "COALESCE(SUM(r.cost_micro_usd), 0), MAX(t.max_tokens), MAX(t.max_cost_micro_usd) "
    "FROM tasks t LEFT JOIN task_runs r ON r.task_id = t.id WHERE t.id = :id",
)


@dataclass(frozen=True, slots=True)
class QuotaPause:
    """What recording a usage limit did: when the task may run again, and the visible reason."""

    task_id: TaskId
    resume_at_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """A task's usage over all its runs, and its budget (None where no budget is set)."""

    tokens: int
    cost_micro_usd: int
    max_tokens: int | None
    max_cost_micro_usd: int | None

    def over_budget(self) -> str | None:
        """The reason naming the figures when a budget is reached, else None."""
        if self.max_cost_micro_usd is not None and self.cost_micro_usd >= self.max_cost_micro_usd:
            return (
                f"budget reached: {format_usd(self.cost_micro_usd)} of "
                f"{format_usd(self.max_cost_micro_usd)} ({self.tokens} tokens)"
            )
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return (
                f"budget reached: {self.tokens} of {self.max_tokens} tokens "
                f"({format_usd(self.cost_micro_usd)})"
            )
        return None


def record_quota(
    tx: Transaction,
    task_id: TaskId,
    run_id: RunId,
    *,
    resume_at_ms: int | None,
    message: str,
    backoff_s: int,
) -> QuotaPause:
    """Close the run as quota and requeue until the reset; failures are not counted."""
    if tx.fetchone(_RUNNING, {"id": task_id, "run_id": run_id}) is None:
        raise StaleRun(
            f"{format_task_id(task_id)} is no longer running run {run_id}; "
            "its verdict was already recorded"
        )
    now_ms = int(tx.scalar(_NOW, {}))
    # A reset already past (clock skew, a stale message) still waits the backoff: retrying at
    # once would likely hit the limit again.
    resume = resume_at_ms if resume_at_ms is not None and resume_at_ms > now_ms else None
    resume = resume if resume is not None else now_ms + backoff_s * 1000
    reason = f"usage limit reached; resumes at {_utc_clock(resume)} UTC"
    tx.execute(_QUOTA, {"id": task_id, "run_id": run_id, "resume_at_ms": resume, "reason": reason})
    short = message.strip()[:MAX_ERROR_CHARS]
    runs.close(tx, run_id, RunOutcome.QUOTA, error=short or reason)
    events.append(
        tx,
        task_id,
        EventKind.QUOTA_PAUSED,
        {"message": short, "resume_at_ms": resume, "reason": reason},
        run_id,
    )
    return QuotaPause(task_id, resume, reason)


def record_usage(
    tx: Transaction,
    task_id: TaskId,
    run_id: RunId,
    *,
    input_tokens: int | None,
    output_tokens: int | None,
    cost_micro_usd: int | None,
    proof: RunProof | None = None,
) -> UsageTotals:
    """Store a run's cumulative usage; returns the task's totals and budget.

    An operator reports on an open run only. The run's worker (``proof``) may also report for
    ``USAGE_GRACE_MS`` after the run ended: its agent's final figures come after the verdict.
    """
    params = {
        "id": task_id,
        "run_id": run_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost": cost_micro_usd,
    }
    if proof is None:
        tx.execute(_USAGE, params)
    else:
        fenced = params | {"token_hash": hash_token(proof.token), "grace_ms": USAGE_GRACE_MS}
        if not tx.execute(_WORKER_USAGE, fenced):
            raise StaleRun(
                f"refused to record the usage of run {format_run_id(run_id)}: its token does "
                "not match, or it ended too long ago; nothing was changed"
            )
    return usage_totals(tx, task_id)


def usage_totals(tx: Transaction, task_id: TaskId) -> UsageTotals:
    """A task's usage summed over its runs, with its budget."""
    row = tx.fetchone(_TASK_USAGE, {"id": task_id})
    assert row is not None
    return UsageTotals(
        int(row[0]),
        int(row[1]),
        int(row[2]) if row[2] is not None else None,
        int(row[3]) if row[3] is not None else None,
    )


def _utc_clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M")
