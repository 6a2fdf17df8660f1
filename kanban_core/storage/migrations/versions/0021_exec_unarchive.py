"""Execution requests may carry ``unarchive``: it recreates worktrees on the workspace's disk.

The CHECK on ``exec_requests.command`` is widened by one name. PostgreSQL alters the constraint
in place. SQLite rebuilds the table from its own stored definition with the CHECK replaced (a
batch rebuild from reflection would order the constraints differently from run to run), copies
rows, ids and the id sequence as they are, and makes the partial index again.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

import re

import sqlalchemy as sa
from alembic import op

from kanban_core.errors import StorageError

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_CHECK = "ck_exec_requests_command"
_INDEX = "ix_exec_requests_open"
_NEW = "exec_requests_0021"
_BEFORE = (
    "'status', 'diff', 'commit', 'push', 'pr', 'attach', 'run', 'delete', 'follow-up', "
    "'new-session', 'approve', 'deny'"
)
_AFTER = f"{_BEFORE}, 'unarchive'"


def _commands(was: str, allowed: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(_CHECK, "exec_requests", type_="check")
        op.create_check_constraint(_CHECK, "exec_requests", f"command IN ({allowed})")
        return
    bind = op.get_bind()
    stored = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'exec_requests'")
    ).scalar_one()
    check = f"CHECK (command IN ({was}))"
    if stored.count(check) != 1:
        raise StorageError(f"exec_requests is not as 0017 made it: it has no single {check}")
    ddl = re.sub(r'^CREATE TABLE "?exec_requests"? \(', f"CREATE TABLE {_NEW} (", stored)
    ddl = ddl.replace(check, f"CHECK (command IN ({allowed}))")
    columns = [str(row[1]) for row in bind.execute(sa.text("PRAGMA table_info(exec_requests)"))]
    listed = ", ".join(columns)
    # SQLite's table-rebuild recipe; the sequence is carried over, so no id is ever reused.
    op.drop_index(_INDEX, table_name="exec_requests")
    op.execute(ddl)
    op.execute(f"INSERT INTO {_NEW} ({listed}) SELECT {listed} FROM exec_requests")
    op.execute(f"DELETE FROM sqlite_sequence WHERE name = '{_NEW}'")
    op.execute(
        f"INSERT INTO sqlite_sequence (name, seq) SELECT '{_NEW}', seq FROM sqlite_sequence "
        "WHERE name = 'exec_requests'"
    )
    op.drop_table("exec_requests")
    op.rename_table(_NEW, "exec_requests")
    op.create_index(
        _INDEX,
        "exec_requests",
        ["target_host_id", "state"],
        sqlite_where=sa.text("state IN ('pending', 'running')"),
    )


def upgrade() -> None:
    _commands(_BEFORE, _AFTER)


def downgrade() -> None:
    # A stored unarchive request would break the narrower CHECK: those rows go first.
    op.execute("DELETE FROM exec_requests WHERE command = 'unarchive'")
    _commands(_AFTER, _BEFORE)
