"""Dispatcher health: when each dispatcher last ran a pass, how long it took, its last error."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from kanban_core.board.kanban import Kanban
from kanban_core.storage import Query

#: A dispatcher that has not passed for this long is forgotten: hidden by reads and deleted by
#: the next pass of any dispatcher on the board (reads never write).
FORGET_AFTER_S = 3600
#: Shown as stopped after this many dispatch intervals of silence (and never sooner than 2 min).
STALE_INTERVALS = 3
MIN_STALE_S = 120.0

_UPSERT = Query(
    "record_pass",
    "INSERT INTO dispatcher_health (name, host, pid, last_pass_ms, last_pass_duration_ms, "
    "last_error, last_error_ms, passes, counts) VALUES (:name, :host, :pid, {now}, :duration, "
    ":error, CASE WHEN CAST(:error AS TEXT) IS NULL THEN NULL ELSE {now} END, 1, :counts) "
    "ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
    "last_pass_ms = excluded.last_pass_ms, last_pass_duration_ms = excluded.last_pass_duration_ms, "
    "last_error = COALESCE(excluded.last_error, dispatcher_health.last_error), "
    "last_error_ms = COALESCE(excluded.last_error_ms, dispatcher_health.last_error_ms), "
    "passes = dispatcher_health.passes + 1, counts = excluded.counts",
)
_ALL = Query(
    "dispatcher_health",
    "SELECT name, host, pid, last_pass_ms, last_pass_duration_ms, last_error, last_error_ms, "
    "passes, counts, {now} FROM dispatcher_health WHERE last_pass_ms >= {now} - :forget_ms "
    "ORDER BY last_pass_ms DESC",
)
_FORGET = Query(
    "forget_dispatchers",
    "DELETE FROM dispatcher_health WHERE last_pass_ms < {now} - :forget_ms",
)
_FORGET_MS = FORGET_AFTER_S * 1000


@dataclass(frozen=True, slots=True)
class DispatcherHealth:
    """One dispatcher's latest pass."""

    name: str
    host: str
    pid: int
    last_pass_ms: int
    last_pass_duration_ms: int
    last_error: str | None
    last_error_ms: int | None
    passes: int
    counts: dict[str, int]
    age_s: float
    #: Silent for longer than its dispatch interval allows: the process is gone (or stuck).
    stopped: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``status --json`` entry."""
        return {
            "name": self.name,
            "state": "stopped" if self.stopped else "running",
            "host": self.host,
            "pid": self.pid,
            "last_pass_at": self.last_pass_ms // 1000,
            "last_pass_age_seconds": round(self.age_s, 1),
            "last_pass_duration_ms": self.last_pass_duration_ms,
            "last_error": self.last_error,
            "last_error_at": None if self.last_error_ms is None else self.last_error_ms // 1000,
            "passes": self.passes,
            "counts": self.counts,
        }


def record_pass(
    board: Kanban,
    name: str,
    host: str,
    duration_ms: float,
    error: str | None,
    counts: dict[str, int],
) -> None:
    """Upsert this dispatcher's health row."""
    params = {
        "name": name,
        "host": host,
        "pid": os.getpid(),
        "duration": int(duration_ms),
        "error": error,
        "counts": json.dumps(counts, sort_keys=True),
    }
    with board.db.transaction(write=True) as tx:
        tx.execute(_UPSERT, params)
        tx.execute(_FORGET, {"forget_ms": _FORGET_MS})


def stale_after_s(interval_s: float) -> float:
    """How long a dispatcher passing every ``interval_s`` may be silent before it counts as
    stopped."""
    return max(MIN_STALE_S, STALE_INTERVALS * interval_s)


def read(board: Kanban, *, stale_after: float = MIN_STALE_S) -> list[DispatcherHealth]:
    """Dispatchers that passed within the last hour, newest first; those silent for longer
    than ``stale_after`` seconds are marked stopped."""
    with board.db.transaction(write=False) as tx:
        rows = tx.fetchall(_ALL, {"forget_ms": _FORGET_MS})
    return [
        DispatcherHealth(
            name=r[0],
            host=r[1],
            pid=r[2],
            last_pass_ms=r[3],
            last_pass_duration_ms=r[4],
            last_error=r[5],
            last_error_ms=r[6],
            passes=r[7],
            counts=json.loads(r[8]) if r[8] else {},
            age_s=max(0.0, (r[9] - r[3]) / 1000),
            stopped=(r[9] - r[3]) / 1000 > stale_after,
        )
        for r in rows
    ]
