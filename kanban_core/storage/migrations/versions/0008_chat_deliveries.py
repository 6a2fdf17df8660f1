"""Chat deliveries already handled, so a redelivery after a gateway restart runs nothing twice.

One row per (platform, delivery id) a gateway has accepted, inserted before the command runs;
rows older than the gateway's dedupe window are deleted as new ones arrive.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chat_deliveries",
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("platform", "delivery_id"),
    )
    op.create_index("ix_chat_deliveries_created", "chat_deliveries", ["created_ms"])


def downgrade() -> None:
    op.drop_index("ix_chat_deliveries_created", table_name="chat_deliveries")
    op.drop_table("chat_deliveries")
