"""PostgreSQL claims a batch in one call: ``kanban_claim_batch`` (body in ``pg_functions``).

The dispatcher claims a pass's candidates with it, and a worker loop may take several ready
tasks at once; caps, placement and events are the single claim's. SQLite is untouched.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06
"""

from alembic import op

from kanban_core.storage.migrations import pg_functions

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(pg_functions.CLAIM_BATCH_0020)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {pg_functions.CLAIM_BATCH_SIGNATURE}")
