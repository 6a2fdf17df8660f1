"""Garbage collection (old events and deliveries of finished tasks, finished execution requests
and spent nonces, old worker logs) and the record of scheduled maintenance runs that keeps each
job to one run per interval."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from kanban_core.board import exec_requests
from kanban_core.board.domain import GcReport
from kanban_core.storage import Query, Transaction

_DAY_MS = 86_400_000
# Events of live tasks are never collected: they are the audit of work still in flight.
_DELETE_DELIVERIES = Query(
    "gc_deliveries",
    "DELETE FROM notify_deliveries WHERE status IN ('sent', 'dead') AND created_ms < :cutoff",
)
_DELETE_EVENTS = Query(
    "gc_events",
    "DELETE FROM task_events WHERE created_ms < :cutoff "
    "AND task_id IN (SELECT id FROM tasks WHERE status IN ('done', 'archived')) "
    "AND id NOT IN (SELECT event_id FROM notify_deliveries) "
    # The newest event stays: event ids are max + 1 (no AUTOINCREMENT), so deleting it would
    # hand its id out again, and a cursor already past it would miss the new event.
    "AND id < (SELECT max(id) FROM task_events)",
)
_NOW = Query("gc_now", "SELECT {now}")
#: Only files the worker supervisor writes (``t42.log``, ``t42.log.1``) are ever deleted.
LOG_NAME = re.compile(r"t[0-9]+\.log(?:\.[0-9]+)?")


def collect(tx: Transaction, *, event_retention_days: int) -> GcReport:
    """Delete old deliveries and events of done/archived tasks, finished execution requests as
    old (the audit log keeps their ends), and spent nonces past use; no log files."""
    cutoff = int(tx.scalar(_NOW)) - event_retention_days * _DAY_MS
    deliveries = tx.execute(_DELETE_DELIVERIES, {"cutoff": cutoff})
    removed_events = tx.execute(_DELETE_EVENTS, {"cutoff": cutoff})
    requests, nonces = exec_requests.collect(tx, finished_before_ms=cutoff)
    return GcReport(
        events=removed_events,
        deliveries=deliveries,
        log_files=0,
        exec_requests=requests,
        exec_nonces=nonces,
    )


def collect_logs(logs_dir: Path, *, retention_days: int) -> int:
    """Delete our worker logs older than the retention; anything else in the folder is left."""
    if not logs_dir.is_dir():
        return 0
    cutoff = time.time() - retention_days * 86400
    removed = 0
    for path in logs_dir.iterdir():
        ours = LOG_NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink()
        if ours and path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    return removed


# A job runs at most once per interval across every gateway: the row's update is the claim
# (a concurrent claimer waits on the row lock, then finds it fresh and gets nothing).
_CLAIM_RUN = Query(
    "claim_maintenance_run",
    "INSERT INTO maintenance_runs (job, last_ms, owner, runs) VALUES (:job, {now}, :owner, 1) "
    "ON CONFLICT (job) DO UPDATE SET last_ms = {now}, owner = excluded.owner, "
    "runs = maintenance_runs.runs + 1 "
    "WHERE maintenance_runs.last_ms <= {now} - :interval_ms RETURNING runs",
)
_SUMMARY = Query(
    "maintenance_summary", "UPDATE maintenance_runs SET summary = :summary WHERE job = :job"
)
_LAST_RUNS = Query(
    "maintenance_runs",
    "SELECT job, last_ms, owner, runs, summary FROM maintenance_runs ORDER BY job",
)


@dataclass(frozen=True, slots=True)
class MaintenanceRun:
    """When a scheduled job last ran, by whom, and what it did."""

    job: str
    last_ms: int
    owner: str
    runs: int
    summary: str | None

    def to_json(self) -> dict[str, object]:
        """The stable JSON form."""
        return {
            "job": self.job,
            "last_ms": self.last_ms,
            "owner": self.owner,
            "runs": self.runs,
            "summary": self.summary,
        }


def claim_run(tx: Transaction, job: str, *, owner: str, interval_ms: int) -> bool:
    """Take this interval's run of ``job``; False when it ran within the interval already.

    Done in the job's own write transaction, so a job that fails leaves the interval unclaimed."""
    params = {"job": job, "owner": owner, "interval_ms": interval_ms}
    return tx.fetchone(_CLAIM_RUN, params) is not None


def note_run(tx: Transaction, job: str, summary: str) -> None:
    """Record what this run of ``job`` did."""
    tx.execute(_SUMMARY, {"job": job, "summary": summary})


def last_runs(tx: Transaction) -> list[MaintenanceRun]:
    """Every scheduled job's last run."""
    return [
        MaintenanceRun(str(r[0]), int(r[1]), str(r[2]), int(r[3]), r[4])
        for r in tx.fetchall(_LAST_RUNS)
    ]
