"""Dispatcher support: per-assignee ready index, run deadlines, task repo and branch, health.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

READY = sa.text("status = 'ready'")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("repo", sa.Text))
        batch.add_column(sa.Column("branch_name", sa.String(200)))
        batch.add_column(sa.Column("deadline_ms", sa.BigInteger))
    op.create_index(
        "ix_tasks_ready_assignee",
        "tasks",
        ["assignee", sa.text("priority DESC"), "created_ms", "id"],
        sqlite_where=READY,
        postgresql_where=READY,
    )
    op.create_index(
        "ix_tasks_deadline",
        "tasks",
        ["deadline_ms"],
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("workspace_path", sa.Text))
    op.create_table(
        "dispatcher_health",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("last_pass_ms", sa.BigInteger, nullable=False),
        sa.Column("last_pass_duration_ms", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_ms", sa.BigInteger),
        sa.Column("passes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("counts", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("dispatcher_health")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("workspace_path")
    op.drop_index("ix_tasks_ready_assignee", table_name="tasks")
    op.drop_index("ix_tasks_deadline", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("deadline_ms")
        batch.drop_column("branch_name")
        batch.drop_column("repo")
