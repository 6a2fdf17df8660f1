"""Agents that report: per-run usage, budgets, usage-limit pauses, and the progress message each
chat edits in place.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("input_tokens", sa.BigInteger))
        batch.add_column(sa.Column("output_tokens", sa.BigInteger))
        # Millionths of a dollar: exact sums, no floating point in the database.
        batch.add_column(sa.Column("cost_micro_usd", sa.BigInteger))
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("max_cost_micro_usd", sa.BigInteger))
        batch.add_column(sa.Column("max_tokens", sa.BigInteger))
        # Why a ready task waits for not_before_ms (a usage limit's reset), shown by list/show.
        batch.add_column(sa.Column("pause_reason", sa.Text))
    with op.batch_alter_table("notify_subscriptions") as batch:
        batch.add_column(sa.Column("progress", sa.Integer, nullable=False, server_default="1"))
    op.create_table(
        "progress_messages",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("chat_id", sa.String(200), nullable=False),
        sa.Column("thread_id", sa.String(200), nullable=False, server_default=""),
        sa.Column("task_id", ID, nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("event_id", ID, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "platform", "chat_id", "thread_id"),
    )


def downgrade() -> None:
    op.drop_table("progress_messages")
    with op.batch_alter_table("notify_subscriptions") as batch:
        batch.drop_column("progress")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("max_tokens")
        batch.drop_column("max_cost_micro_usd")
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("cost_micro_usd")
        batch.drop_column("output_tokens")
        batch.drop_column("input_tokens")
