"""Helpers shared by the kernel unit tests: raw reads and writes, snapshots, worker actors."""

from __future__ import annotations

from typing import Any

from kanban_core import Actor, Claim, Kanban, TaskId
from kanban_core.board.domain import EventKind
from kanban_core.board.events import append as append_event
from kanban_core.board.hosts import HostIdentity
from kanban_core.storage import Database, Query

#: Every table the kernel writes, plus Alembic's version table.
TABLES = (
    "tasks",
    "task_links",
    "task_comments",
    "task_runs",
    "task_events",
    "notify_subscriptions",
    "notify_deliveries",
    "hosts",
    "host_labels",
    "alembic_version",
)
DAY_MS = 86_400_000

Snapshot = dict[str, list[tuple[Any, ...]]]


def rows(board: Kanban, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """All rows of a raw SELECT, in a read-only transaction."""
    with board.db.transaction(write=False) as tx:
        return [tuple(row) for row in tx.fetchall(Query("test_rows", sql), params)]


def scalar(board: Kanban, sql: str, **params: Any) -> Any:
    """The first column of the first row of a raw SELECT."""
    with board.db.transaction(write=False) as tx:
        return tx.scalar(Query("test_scalar", sql), params)


def execute(board: Kanban, sql: str, **params: Any) -> int:
    """Run a raw write (to set up states the API cannot reach); returns the changed row count."""
    with board.db.transaction(write=True) as tx:
        return tx.execute(Query("test_execute", sql), params)


def set_columns(board: Kanban, task_id: TaskId, **columns: Any) -> None:
    """Overwrite some columns of one task row."""
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    changed = execute(
        board, f"UPDATE tasks SET {assignments} WHERE id = :id", id=task_id, **columns
    )
    assert changed == 1


def snapshot(board: Kanban) -> Snapshot:
    """Every row of every table, in a stable order: compare two to prove nothing was written."""
    with board.db.transaction(write=False) as tx:
        return {
            table: sorted(
                (tuple(row) for row in tx.fetchall(Query("snapshot", f"SELECT * FROM {table}"))),
                key=repr,
            )
            for table in TABLES
        }


def count(board: Kanban, table: str) -> int:
    """Rows in a table."""
    return int(scalar(board, f"SELECT count(*) FROM {table}"))


def db_now(board: Kanban) -> int:
    """The database clock, in epoch milliseconds."""
    with board.db.transaction(write=False) as tx:
        return int(tx.scalar(Query("test_now", "SELECT {now}")))


def event_kinds(board: Kanban, task_id: TaskId) -> list[str]:
    """The kinds of a task's events, oldest first."""
    return [event.kind for event in board.detail(task_id).events]


def worker(claim: Claim, name: str = "claimer") -> Actor:
    """The actor of the worker holding ``claim``."""
    return Actor(name=name, run=claim.proof)


def as_host(board: Kanban, host: HostIdentity | None) -> Kanban:
    """The same board, seen by a claimer acting as ``host`` (None: the implicit host)."""
    board.host = host
    return board


class OpenWrite:
    """A write transaction on a connection of its own that inserted an event and stays open.

    On PostgreSQL its event has a smaller id than any committed after it, yet becomes visible
    only at ``commit``: the late commit that followers of the log must not miss.
    """

    def __init__(self, board: Kanban, task_id: TaskId, text: str = "late") -> None:
        self.db = Database(board.db.url)
        self._tx = self.db.transaction(write=True)
        tx = self._tx.__enter__()
        self.event_id = append_event(tx, task_id, EventKind.COMMENTED, {"text": text})

    def commit(self) -> None:
        self._tx.__exit__(None, None, None)
        self.db.close()

    def commit_after_next_read(self, board: Kanban) -> None:
        """Commit right after the next statement the board reads on its own (``Database.read``):
        where a reader that took two statements for one snapshot would see it between them."""
        db = board.db

        def read_then_commit(query: Query, params: Any = None) -> Any:
            del db.read  # the class's own again
            rows = db.read(query, params or {})
            self.commit()
            return rows

        db.read = read_then_commit  # type: ignore[method-assign]
