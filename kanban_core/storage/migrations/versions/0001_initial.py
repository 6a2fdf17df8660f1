"""The initial board schema: tasks, links, comments, runs, events, subscriptions, deliveries.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
READY = sa.text("status = 'ready'")
RUNNING = sa.text("status = 'running'")
PENDING = sa.text("status = 'pending'")
LIVE_KEY = sa.text("idempotency_key IS NOT NULL AND status <> 'archived'")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("assignee", sa.String(64)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("block_kind", sa.String(16)),
        sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
        sa.Column("tenant", sa.String(64)),
        sa.Column("workspace_kind", sa.String(16), nullable=False, server_default="scratch"),
        sa.Column("workspace_path", sa.Text),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("started_ms", sa.BigInteger),
        sa.Column("completed_ms", sa.BigInteger),
        sa.Column("result", sa.Text),
        sa.Column("skills", sa.Text),
        sa.Column("max_runtime_s", sa.Integer),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("current_run_id", ID),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_expires_ms", sa.BigInteger),
        sa.Column("heartbeat_ms", sa.BigInteger),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_failure_error", sa.Text),
        sa.Column("not_before_ms", sa.BigInteger),
        sa.Column("max_retries", sa.Integer),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_tasks_ready",
        "tasks",
        [sa.text("priority DESC"), "created_ms", "id"],
        sqlite_where=READY,
        postgresql_where=READY,
    )
    op.create_index(
        "ix_tasks_lease",
        "tasks",
        ["lease_expires_ms"],
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    op.create_index("ix_tasks_status", "tasks", ["status", "priority", "created_ms"])
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee", "status"])
    op.create_index("ix_tasks_tenant", "tasks", ["tenant"])
    op.create_index(
        "ux_tasks_idempotency",
        "tasks",
        ["idempotency_key"],
        unique=True,
        sqlite_where=LIVE_KEY,
        postgresql_where=LIVE_KEY,
    )

    op.create_table(
        "task_links",
        sa.Column("parent_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("child_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("parent_id", "child_id"),
    )
    op.create_index("ix_task_links_child", "task_links", ["child_id", "parent_id"])

    op.create_table(
        "task_comments",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_comments_task", "task_comments", ["task_id", "id"])

    op.create_table(
        "task_runs",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("profile", sa.String(64)),
        sa.Column("claimer", sa.String(200), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16)),
        sa.Column("started_ms", sa.BigInteger, nullable=False),
        sa.Column("ended_ms", sa.BigInteger),
        sa.Column("lease_ttl_ms", sa.BigInteger, nullable=False),
        sa.Column("heartbeat_ms", sa.BigInteger),
        sa.Column("worker_pid", sa.Integer),
        sa.Column("worker_host", sa.String(200)),
        sa.Column("max_runtime_s", sa.Integer),
        sa.Column("summary", sa.Text),
        sa.Column("metadata", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.UniqueConstraint("task_id", "attempt", name="uq_task_runs_attempt"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_runs_task", "task_runs", ["task_id", "id"])
    op.create_index("ix_task_runs_profile", "task_runs", ["profile", "outcome", "ended_ms"])

    op.create_table(
        "task_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("run_id", ID),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_events_task", "task_events", ["task_id", "id"])
    op.create_index("ix_task_events_created", "task_events", ["created_ms"])

    op.create_table(
        "notify_subscriptions",
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("user_id", sa.String(200)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("task_id", "platform", "chat_id", "thread_id"),
    )

    op.create_table(
        "notify_deliveries",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", ID, sa.ForeignKey("task_events.id"), nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("claim_expires_ms", sa.BigInteger),
        sa.Column("sent_ms", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("event_id", "platform", "chat_id", "thread_id", name="uq_delivery"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_notify_deliveries_due",
        "notify_deliveries",
        ["platform", "next_try_ms"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    for table in (
        "notify_deliveries",
        "notify_subscriptions",
        "task_events",
        "task_runs",
        "task_comments",
        "task_links",
        "tasks",
    ):
        op.drop_table(table)
