"""The board's identity: a random id stored in the board itself, so a host's enrollment file
names the board it belongs to, whatever URL reaches it."""

from __future__ import annotations

import secrets

from kanban_core.storage import Query, Transaction

_GET = Query("board_id", "SELECT board_id FROM board_identity WHERE singleton = 1")
# Concurrent first enrollments on one board: one insert wins, the others read its id.
_CREATE = Query(
    "create_board_id",
    "INSERT INTO board_identity (singleton, board_id, created_ms) VALUES (1, :id, {now}) "
    "ON CONFLICT (singleton) DO NOTHING",
)


def board_id(tx: Transaction) -> str | None:
    """The board's id, or None when nothing has needed one yet (reads never write)."""
    row = tx.fetchone(_GET)
    return None if row is None else str(row[0])


def ensure_board_id(tx: Transaction) -> str:
    """The board's id, made now (in a write transaction) if it has none."""
    tx.execute(_CREATE, {"id": f"b-{secrets.token_hex(8)}"})
    found = board_id(tx)
    assert found is not None  # inserted above, or by a concurrent first enrollment
    return found
