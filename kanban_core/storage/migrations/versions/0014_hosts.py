"""Enrolled hosts, task placement (a host or a label) and host-aware claims and fences.

A host is a machine enrolled on the board: its secret is stored hashed, its labels in their own
table (the claim joins them), and ``last_seen_ms`` is the database clock's. A task may name a
host (``tasks.host_id``, also set when a run first makes its workspace there) or a label
(``tasks.host_label``); a run records the host that claimed it (``task_runs.host_id``).

PostgreSQL's claim gains the host (id and secret hash) and its placement predicate, so a host
claims only what it may run, and a revoked host claims nothing; the completion's fence refuses
a run whose host is revoked. Both stay one call. SQLite does the same in its claim statement.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from kanban_core.storage.migrations import pg_functions

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("enrolled_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger),
        sa.Column("revoked_ms", sa.BigInteger),
        sa.UniqueConstraint("name", name="uq_hosts_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "host_labels",
        sa.Column("host_id", ID, sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "label", name="pk_host_labels"),
    )
    op.create_index("ix_host_labels_label", "host_labels", ["label", "host_id"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("host_id", ID))
        batch.add_column(sa.Column("host_label", sa.String(64)))
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("host_id", ID))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {pg_functions.CLAIM_0012_SIGNATURE}")
    op.execute(pg_functions.CLAIM_0014)
    op.execute(pg_functions.REPLACE_COMPLETE_0014)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {pg_functions.CLAIM_SIGNATURE}")
        op.execute(pg_functions.CLAIM_0012)
        op.execute(pg_functions.REPLACE_COMPLETE_0012)
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("host_id")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("host_label")
        batch.drop_column("host_id")
    op.drop_index("ix_host_labels_label", "host_labels")
    op.drop_table("host_labels")
    op.drop_table("hosts")
