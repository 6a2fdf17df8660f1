"""How agent turns move the workspace's task: reopen it for a turn, park it, stop its run."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from kanban_core.board import events, runs
from kanban_core.board.domain import EventKind, RunId, RunOutcome, TaskId
from kanban_core.errors import InvalidTransition
from kanban_core.storage import Query, Transaction

_STATUS = Query("turn_task_status", "SELECT status FROM tasks WHERE id = :id {for_update}")
# A turn is one attempt: a failure blocks the task at once (max_retries = 1) instead of being
# retried with the same prompt behind the person's back; their next message is the retry.
_REOPEN = Query(
    "turn_reopen_task",
    f"UPDATE tasks SET status = {runs.WAITING_OR_READY}, block_kind = NULL, "
    "assignee = :assignee, max_retries = 1, consecutive_failures = 0, "
    "last_failure_error = NULL, not_before_ms = NULL, updated_ms = {now} "
    "WHERE id = :id AND status IN ('triage', 'todo', 'ready', 'done', 'blocked')",
)
_PARK = Query(
    "turn_park_task",
    "UPDATE tasks SET status = 'blocked', block_kind = 'human', updated_ms = {now} "
    "WHERE id = :id AND status IN ('ready', 'todo')",
)
_STOP = Query(
    "turn_stop_task",
    "UPDATE tasks SET status = 'blocked', block_kind = 'human', current_run_id = NULL, "
    "lease_owner = NULL, lease_expires_ms = NULL, heartbeat_ms = NULL, deadline_ms = NULL, "
    "updated_ms = {now} WHERE id = :id AND status = 'running' AND current_run_id = :run_id",
)
_CURRENT_RUN = Query(
    "turn_current_run",
    "SELECT t.current_run_id, r.worker_pid, r.worker_host, r.host_id FROM tasks t "
    "LEFT JOIN task_runs r ON r.id = t.current_run_id WHERE t.id = :id AND t.status = 'running'",
)
_RUN_END = Query(
    "turn_run_end",
    "SELECT outcome, summary, error, ended_ms FROM task_runs WHERE id = :run_id",
)


def task_status(tx: Transaction, task_id: TaskId) -> str | None:
    """The task's status (locked for this transaction on PostgreSQL)."""
    value = tx.scalar(_STATUS, {"id": task_id})
    return None if value is None else str(value)


def reopen_for_turn(tx: Transaction, task_id: TaskId, assignee: str) -> None:
    """Make the task dispatchable for one more agent turn."""
    before = task_status(tx, task_id)
    if before in ("archived", None):
        raise InvalidTransition(f"t{task_id} is archived; unarchive the task to continue")
    if before == "running":
        raise InvalidTransition(f"t{task_id} is running")
    tx.execute(_REOPEN, {"id": task_id, "assignee": assignee})
    if before == "blocked":
        events.append(tx, task_id, EventKind.UNBLOCKED, {"reason": "a new agent turn"})
    elif before in ("done", "triage"):
        events.append(tx, task_id, EventKind.REOPENED, {"from": before})


def park(tx: Transaction, task_id: TaskId, notice: dict[str, Any]) -> bool:
    """Take a not-yet-claimed task out of the ready queue (a stopped pending turn)."""
    if tx.execute(_PARK, {"id": task_id}):
        events.append(tx, task_id, EventKind.BLOCKED, notice)
        return True
    return False


@dataclass(frozen=True, slots=True)
class CurrentRun:
    """A running task's run: its supervisor's pid and machine, and the host that claimed it."""

    run_id: RunId
    pid: int | None
    machine: str | None  # the supervisor's hostname
    host_id: int | None  # the enrolled host that claimed it; None: the implicit host

    def signalable(self, here: int | None) -> bool:
        """Whether a process of enrolled host ``here`` may signal the supervisor's pid.

        A pid means something only on its own machine; two enrolled hosts may share a
        hostname, so the claiming host must be this one too (elsewhere, the supervisor's next
        heartbeat finds its run ended and stops the agent itself).
        """
        return bool(self.pid) and self.host_id == here and self.machine == socket.gethostname()


def current_run(tx: Transaction, task_id: TaskId) -> CurrentRun | None:
    """The running task's run, or None."""
    row = tx.fetchone(_CURRENT_RUN, {"id": task_id})
    if row is None or row[0] is None:
        return None
    host_id = None if row[3] is None else int(row[3])
    return CurrentRun(RunId(int(row[0])), row[1], row[2], host_id)


def stop_run(tx: Transaction, task_id: TaskId, run_id: RunId, notice: dict[str, Any]) -> bool:
    """End a running turn's run as cancelled and hold the task for a person; False if it ended.

    ``notice`` is the blocked event's payload: who stopped it and what the chat may do next.
    """
    if not tx.execute(_STOP, {"id": task_id, "run_id": run_id}):
        return False
    runs.close(tx, run_id, RunOutcome.CANCELLED, error=str(notice["reason"]))
    events.append(tx, task_id, EventKind.BLOCKED, notice, run_id)
    return True


def stop_notice(reason: str, *, by: str, ws_id: str, queued: int) -> dict[str, Any]:
    """The blocked event of a stopped turn: the operator's, with the paused queue's size."""
    return {
        "reason": reason,
        "kind": "human",
        "by": by,
        "stopped": True,
        "workspace": ws_id,
        "queued": queued,
    }


def run_end(tx: Transaction, run_id: int) -> tuple[str | None, str | None, str | None] | None:
    """(outcome, summary, error) of an ended run; None while it is still open."""
    row = tx.fetchone(_RUN_END, {"run_id": run_id})
    if row is None or row[3] is None:
        return None
    return row[0], row[1], row[2]
