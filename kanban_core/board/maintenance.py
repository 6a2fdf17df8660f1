"""Garbage collection: old events and deliveries of finished tasks, and old worker logs."""

from __future__ import annotations

import re
import time
from pathlib import Path

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
