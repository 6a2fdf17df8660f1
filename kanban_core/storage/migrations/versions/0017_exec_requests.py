"""Execution requests: a command that needs another enrolled host's disk, and spent nonces.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COMMANDS = (
    "'status', 'diff', 'commit', 'push', 'pr', 'attach', 'run', 'delete', 'follow-up', "
    "'new-session', 'approve', 'deny'"
)


def upgrade() -> None:
    op.create_table(
        "exec_requests",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("args", sa.Text, nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("target_host_id", ID, sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("requester_host_id", ID),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("user_id", sa.String(200), nullable=False),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("nonce", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(300), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("reply", sa.Text),
        sa.Column("claimed_by", sa.String(200)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("claimed_ms", sa.BigInteger),
        sa.Column("finished_ms", sa.BigInteger),
        sa.UniqueConstraint("nonce", name="uq_exec_requests_nonce"),
        # The fixed set of commands another host may be asked: nothing else can be stored.
        sa.CheckConstraint(f"command IN ({COMMANDS})", name="ck_exec_requests_command"),
        sa.UniqueConstraint("idempotency_key", name="uq_exec_requests_key"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_exec_requests_open",
        "exec_requests",
        ["target_host_id", "state"],
        sqlite_where=sa.text("state IN ('pending', 'running')"),
        postgresql_where=sa.text("state IN ('pending', 'running')"),
    )
    op.create_table(
        "exec_nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("used_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exec_nonces")
    op.drop_index("ix_exec_requests_open", table_name="exec_requests")
    op.drop_table("exec_requests")
