"""Garbage collection: old events and deliveries of finished tasks, and old worker logs."""

from __future__ import annotations

import re
import time
from pathlib import Path

from kanban_core import workspaces
from kanban_core.domain import GcReport, Task, WorkspaceKind
from kanban_core.storage import Query, Transaction
from kanban_core.workspaces import Removal

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


def collect(tx: Transaction, *, event_retention_days: int) -> tuple[int, int]:
    """Delete old deliveries and events of done/archived tasks; returns (events, deliveries)."""
    cutoff = int(tx.scalar(_NOW)) - event_retention_days * _DAY_MS
    deliveries = tx.execute(_DELETE_DELIVERIES, {"cutoff": cutoff})
    removed_events = tx.execute(_DELETE_EVENTS, {"cutoff": cutoff})
    return removed_events, deliveries


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


def collect_workspaces(archived: list[Task], home: Path) -> list[Removal]:
    """Remove the managed workspaces of archived tasks that are provably ours and hold no work.

    Scratch directories go when their marker names the task; worktrees only when clean, pushed
    or merged, and made by us; ``dir:`` workspaces are the user's and are never touched.
    """
    removals = []
    for task in archived:
        if task.workspace_kind is WorkspaceKind.SCRATCH:
            removal = workspaces.remove_scratch(task.id, home)
        elif task.workspace_kind is WorkspaceKind.WORKTREE and task.workspace_path:
            from kanban_core.worktrees import remove_worktree  # GitPython only when needed

            removal = remove_worktree(
                Path(task.workspace_path), root=workspaces.worktree_root(home), task_id=task.id
            )
        else:
            continue
        if removal.path is not None:
            removals.append(removal)
    return removals


def report(
    events: int, deliveries: int, log_files: int, removals: list[Removal] | None = None
) -> GcReport:
    """Bundle the counts; workspaces that were kept are explained in the notes."""
    removals = removals or []
    return GcReport(
        events=events,
        deliveries=deliveries,
        log_files=log_files,
        workspaces=sum(1 for r in removals if r.removed),
        notes=tuple(
            f"kept t{r.task_id} workspace {r.path}: {r.reason}" for r in removals if not r.removed
        ),
    )
