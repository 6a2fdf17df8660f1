"""Fewer indexes written on every claim and complete (each costs a WAL page per transaction).

The ready queue is ordered by the status index (no separate ready index); the deadline index
holds only runs with a max runtime; a task's runs are found through the unique (task, attempt)
constraint; the per-assignee history index holds completed runs only; events are no longer
indexed by time (only gc reads them that way, rarely, and can scan).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_tasks_ready", table_name="tasks")
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.create_index(
        "ix_tasks_status", "tasks", ["status", sa.text("priority DESC"), "created_ms", "id"]
    )
    op.drop_index("ix_tasks_deadline", table_name="tasks")
    where = "status = 'running' AND deadline_ms IS NOT NULL"
    op.create_index(
        "ix_tasks_deadline",
        "tasks",
        ["deadline_ms"],
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )
    op.drop_index("ix_task_runs_task", table_name="task_runs")
    op.drop_index("ix_task_runs_profile", table_name="task_runs")
    op.create_index(
        "ix_task_runs_profile",
        "task_runs",
        ["profile", "ended_ms"],
        sqlite_where=sa.text("outcome = 'completed'"),
        postgresql_where=sa.text("outcome = 'completed'"),
    )
    op.drop_index("ix_task_events_created", table_name="task_events")


def downgrade() -> None:
    op.create_index("ix_task_events_created", "task_events", ["created_ms"])
    op.drop_index("ix_task_runs_profile", table_name="task_runs")
    op.create_index("ix_task_runs_profile", "task_runs", ["profile", "outcome", "ended_ms"])
    op.create_index("ix_task_runs_task", "task_runs", ["task_id", "id"])
    op.drop_index("ix_tasks_deadline", table_name="tasks")
    op.create_index(
        "ix_tasks_deadline",
        "tasks",
        ["deadline_ms"],
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.create_index("ix_tasks_status", "tasks", ["status", "priority", "created_ms"])
    op.create_index(
        "ix_tasks_ready",
        "tasks",
        [sa.text("priority DESC"), "created_ms", "id"],
        sqlite_where=sa.text("status = 'ready'"),
        postgresql_where=sa.text("status = 'ready'"),
    )
