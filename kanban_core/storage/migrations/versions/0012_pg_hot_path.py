"""PostgreSQL claims and completes a run in one round trip: server-side functions.

A claim (pick, caps, lease, run row, events) and a worker's fenced completion (run closed,
requests cancelled, event and deliveries, subscriptions ended, waiting children promoted) were
five and ten round trips; each is now one call, run in autocommit. The functions are PL/pgSQL,
not one data-modifying CTE, because their steps must see each other: every statement of a
VOLATILE function takes a fresh snapshot, so the cap count after the cap lock sees every claim
committed before it, and the children's promotion sees this completion and any other parent's
completion committed while their row locks were awaited. SQLite is untouched: one writer makes
its few statements as exact, and it has no round trips to save.

The functions' bodies are in ``pg_functions`` (``CLAIM_0012``, ``COMPLETE_0012``).

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

from kanban_core.storage.migrations import pg_functions

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(pg_functions.CLAIM_0012)
    op.execute(pg_functions.COMPLETE_0012)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {pg_functions.COMPLETE_SIGNATURE}")
    op.execute(f"DROP FUNCTION {pg_functions.CLAIM_0012_SIGNATURE}")
