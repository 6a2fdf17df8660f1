"""The ACP agent's own session id of each workspace session, resumed by the next turn.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspace_sessions") as batch:
        batch.add_column(sa.Column("acp_session_id", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("workspace_sessions") as batch:
        batch.drop_column("acp_session_id")
