"""Execution requests may carry ``unarchive``: it recreates worktrees on the workspace's disk.

The CHECK on ``exec_requests.command`` is widened by one name. PostgreSQL alters the constraint
in place; SQLite rebuilds the table (rows and ids copied as they are), its partial index made
again after the rebuild, which would not keep the index's WHERE.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_CHECK = "ck_exec_requests_command"
_INDEX = "ix_exec_requests_open"
_OPEN = "state IN ('pending', 'running')"
_BEFORE = (
    "'status', 'diff', 'commit', 'push', 'pr', 'attach', 'run', 'delete', 'follow-up', "
    "'new-session', 'approve', 'deny'"
)
_AFTER = f"{_BEFORE}, 'unarchive'"


def _commands(allowed: str) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.drop_index(_INDEX, table_name="exec_requests")
    with op.batch_alter_table("exec_requests", table_kwargs={"sqlite_autoincrement": True}) as b:
        b.drop_constraint(_CHECK, type_="check")
        b.create_check_constraint(_CHECK, sa.text(f"command IN ({allowed})"))
    if sqlite:
        op.create_index(
            _INDEX, "exec_requests", ["target_host_id", "state"], sqlite_where=sa.text(_OPEN)
        )


def upgrade() -> None:
    _commands(_AFTER)


def downgrade() -> None:
    # A stored unarchive request would break the narrower CHECK: those rows go first.
    op.execute("DELETE FROM exec_requests WHERE command = 'unarchive'")
    _commands(_BEFORE)
