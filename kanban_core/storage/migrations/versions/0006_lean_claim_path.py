"""Fewer pages per claim and complete: partial status indexes, no AUTOINCREMENT on runs/events.

A task's status used to sit in two indexes over every task (status; assignee + status), so
each transition rewrote two pages in each. Now waiting, ready and running tasks each have a
partial index and the assignee index holds no status: done tasks leave every status index.
The per-assignee run history skips runs without an assignee. On SQLite, task_runs and
task_events are rebuilt without AUTOINCREMENT (same rows, same ids), which saves the
sqlite_sequence page on every claim and complete.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WAITING = "status = 'triage' OR status = 'todo' OR status = 'ready' OR status = 'blocked'"
_RUNNING = "status = 'running'"
_COMPLETED = "outcome = 'completed'"
_COMPLETED_BY_PROFILE = "outcome = 'completed' AND profile IS NOT NULL"


def _partial(name: str, table: str, columns: list[sa.TextClause | str], where: str) -> None:
    op.create_index(
        name, table, columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where)
    )


def _status_index(where: str | None) -> None:
    columns: list[sa.TextClause | str] = ["status", sa.text("priority DESC"), "created_ms", "id"]
    op.drop_index("ix_tasks_status", table_name="tasks")
    if where is None:
        op.create_index("ix_tasks_status", "tasks", columns)
    else:
        _partial("ix_tasks_status", "tasks", columns, where)


def _profile_index(where: str) -> None:
    op.drop_index("ix_task_runs_profile", table_name="task_runs")
    _partial("ix_task_runs_profile", "task_runs", ["profile", "ended_ms"], where)


def _sqlite_autoincrement(enabled: bool) -> None:
    # Rebuilds the tables (rows and ids copied as they are); the migration runs with foreign
    # keys off and checks them before committing, as SQLite's table-rebuild recipe asks.
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in ("task_runs", "task_events"):
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": enabled}
        ):
            pass


def upgrade() -> None:
    _sqlite_autoincrement(False)  # first: a rebuild recreates the indexes it reflects
    _status_index(_WAITING)
    op.drop_index("ix_tasks_assignee_status", table_name="tasks")
    op.create_index("ix_tasks_assignee", "tasks", ["assignee"])
    _partial("ix_tasks_running", "tasks", ["assignee"], _RUNNING)
    _profile_index(_COMPLETED_BY_PROFILE)


def downgrade() -> None:
    _sqlite_autoincrement(True)
    _profile_index(_COMPLETED)
    op.drop_index("ix_tasks_running", table_name="tasks")
    op.drop_index("ix_tasks_assignee", table_name="tasks")
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee", "status"])
    _status_index(None)
