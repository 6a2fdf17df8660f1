"""PostgreSQL's claim and completion functions plan their statements once per session, and a
capped claim counts running tasks only up to its cap (the assignee's through their index).

Same signatures, same results: ``CREATE OR REPLACE`` of 0014's functions (bodies in
``pg_functions``). SQLite is untouched.

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-06
"""

from alembic import op

from kanban_core.storage.migrations import pg_functions

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(pg_functions.CLAIM_0018)
    op.execute(pg_functions.COMPLETE_0018)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(pg_functions.REPLACE_CLAIM_0014)
    op.execute(pg_functions.REPLACE_COMPLETE_0014)
