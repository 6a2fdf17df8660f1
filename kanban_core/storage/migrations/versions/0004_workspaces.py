"""Workspaces: worktree sets per task, agent sessions, turns, queued follow-ups, approvals.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
S = sa.String(40)
TABLES = (
    "workspaces",
    "workspace_repos",
    "workspace_sessions",
    "session_messages",
    "workspace_turns",
    "queued_messages",
    "approvals",
    "chat_bindings",
    "workspace_audit",
)


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", S, primary_key=True),
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("archived", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pinned", sa.Integer, nullable=False, server_default="0"),
        sa.Column("container_path", sa.Text, nullable=False),
        sa.Column("branch_name", sa.String(200), nullable=False),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("active_repo", sa.String(64)),
        sa.Column("active_session_id", S),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("idempotency_key", sa.String(200)),
        sa.Column("journal", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("archived_ms", sa.BigInteger),
        sa.UniqueConstraint("task_id", name="uq_workspaces_task"),
        sa.UniqueConstraint("idempotency_key", name="uq_workspaces_idempotency"),
    )
    op.create_index("ix_workspaces_listing", "workspaces", ["archived", "pinned", "updated_ms"])
    op.create_table(
        "workspace_repos",
        sa.Column(
            "workspace_id", S, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("source_path", sa.Text, nullable=False),
        sa.Column("common_dir", sa.Text, nullable=False),
        sa.Column("worktree_path", sa.Text, nullable=False),
        sa.Column("branch", sa.String(200), nullable=False),
        sa.Column("base_ref", sa.String(200), nullable=False),
        sa.Column("base_oid", sa.String(64), nullable=False),
        sa.Column("branch_created", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Integer, nullable=False, server_default="1"),
        sa.Column("pr_number", sa.Integer),
        sa.Column("pr_url", sa.Text),
        sa.Column("pr_state", sa.String(16)),
        sa.PrimaryKeyConstraint("workspace_id", "slug", name="pk_workspace_repos"),
    )
    op.create_table(
        "workspace_sessions",
        sa.Column("id", S, primary_key=True),
        sa.Column(
            "workspace_id", S, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("executor", sa.String(64), nullable=False),
        sa.Column("agent_session_id", sa.String(64), nullable=False),
        sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
        sa.Column("queue_paused", sa.Integer, nullable=False, server_default="0"),
        sa.Column("pause_reason", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("workspace_id", "position", name="uq_workspace_sessions_position"),
    )
    op.create_table(
        "session_messages",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            S,
            sa.ForeignKey("workspace_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.String(16), nullable=False),  # user | assistant | system
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("turn_id", S),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_session_messages_session", "session_messages", ["session_id", "id"])
    op.create_table(
        "workspace_turns",
        sa.Column("id", S, primary_key=True),
        sa.Column(
            "workspace_id", S, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "session_id",
            S,
            sa.ForeignKey("workspace_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("run_id", ID),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column(
            "status", sa.String(16), nullable=False
        ),  # pending running completed failed cancelled
        sa.Column("error", sa.Text),
        sa.Column("before_heads", sa.Text),
        sa.Column("after_heads", sa.Text),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("source_key", sa.String(200)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("started_ms", sa.BigInteger),
        sa.Column("ended_ms", sa.BigInteger),
        sa.UniqueConstraint("source_key", name="uq_workspace_turns_source"),
    )
    op.create_index("ix_workspace_turns_workspace", "workspace_turns", ["workspace_id", "status"])
    op.create_index("ix_workspace_turns_run", "workspace_turns", ["run_id"])
    op.create_index("ix_workspace_turns_session", "workspace_turns", ["session_id", "created_ms"])
    op.create_table(
        "queued_messages",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "session_id",
            S,
            sa.ForeignKey("workspace_sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("source_key", sa.String(200)),
        sa.Column("state", sa.String(16), nullable=False),  # queued | started | cancelled
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("source_key", name="uq_queued_messages_source"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_queued_messages_session", "queued_messages", ["session_id", "state", "id"])
    op.create_table(
        "approvals",
        sa.Column("id", S, primary_key=True),
        sa.Column(
            "kind", sa.String(16), nullable=False
        ),  # confirm (the requester) | approval (approver)
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("args_hash", sa.String(64), nullable=False),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("workspace_id", S, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requester_name", sa.String(200), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column(
            "status", sa.String(16), nullable=False
        ),  # pending approved denied expired failed
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("decided_by", sa.String(200)),
        sa.Column("decided_ms", sa.BigInteger),
        sa.Column("result", sa.Text),
    )
    op.create_index("ix_approvals_pending", "approvals", ["status", "expires_ms"])
    op.create_table(
        "chat_bindings",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column(
            "workspace_id", S, sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("platform", "chat_id", "thread_id", name="pk_chat_bindings"),
    )
    op.create_table(
        "workspace_audit",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("workspace_id", S, nullable=False),  # kept after the workspace is deleted
        sa.Column("repo", sa.String(64)),
        sa.Column("op", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("args", sa.Text),
        sa.Column("approval_id", S),
        sa.Column("outcome", sa.String(16), nullable=False),  # ok | refused | failed | requested
        sa.Column("detail", sa.Text),
        sa.Column("before_oid", sa.String(64)),
        sa.Column("after_oid", sa.String(64)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_workspace_audit_ws", "workspace_audit", ["workspace_id", "id"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
