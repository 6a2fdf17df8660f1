"""Agents that ask: the permission requests a profile's policy sends to a person.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "permission_requests",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("task_id", ID, sa.ForeignKey("tasks.id"), nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("tool_kind", sa.String(32), nullable=False),
        sa.Column("tool_name", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("paths", sa.Text),
        # pending | allowed | denied | expired | cancelled
        sa.Column("status", sa.String(16), nullable=False),
        # allow_once | allow_run | deny, once answered
        sa.Column("decision", sa.String(16)),
        sa.Column("answered_by", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("answered_ms", sa.BigInteger),
    )
    op.create_index("ix_permission_requests_task", "permission_requests", ["task_id", "id"])
    op.create_index("ix_permission_requests_run", "permission_requests", ["run_id", "status"])
    op.create_index(
        "ix_permission_requests_pending",
        "permission_requests",
        ["expires_ms"],
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index("ix_permission_requests_pending", table_name="permission_requests")
    op.drop_index("ix_permission_requests_run", table_name="permission_requests")
    op.drop_index("ix_permission_requests_task", table_name="permission_requests")
    op.drop_table("permission_requests")
