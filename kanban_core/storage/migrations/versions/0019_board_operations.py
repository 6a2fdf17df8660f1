"""Several hosts' operations: the board's identity, lease owners' hosts, maintenance runs.

``board_identity`` holds one row, the board's id, written the first time something needs it
(the first enrollment): a host's enrollment file names it, so a file from another board is
refused even when the database URL changes. ``leases.host_id`` records the enrolled host whose
gateway holds a lease (NULL: the implicit host). ``maintenance_runs`` records when each leader
job (gc) last ran, by the database clock, so it runs once per interval across leader changes.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "board_identity",
        # One row only: the primary key is always 1.
        sa.Column("singleton", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("board_id", sa.String(64), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.CheckConstraint("singleton = 1", name="ck_board_identity_single"),
    )
    op.add_column("leases", sa.Column("host_id", sa.BigInteger, nullable=True))
    op.create_table(
        "maintenance_runs",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("last_ms", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("runs", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.Text, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("maintenance_runs")
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("host_id")
    op.drop_table("board_identity")
