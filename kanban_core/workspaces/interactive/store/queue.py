"""The durable queue of follow-ups waiting for the running turn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kanban_core.storage import Query, Transaction
from kanban_core.workspaces.interactive.records import QueuedMessage

_ENQUEUE = Query(
    "queue_insert",
    "INSERT INTO queued_messages (session_id, text, principal, source_key, state, created_ms) "
    "VALUES (:session, :text, :principal, :source_key, 'queued', {now}) RETURNING id",
)
_QUEUED = Query(
    "queue_of",
    "SELECT id, session_id, text, principal, state, created_ms FROM queued_messages "
    "WHERE session_id = :session AND state = 'queued' ORDER BY id",
)
_QUEUED_WS = Query(
    "queue_of_workspace",
    "SELECT q.id, q.session_id, q.text, q.principal, q.state, q.created_ms "
    "FROM queued_messages q JOIN workspace_sessions s ON s.id = q.session_id "
    "WHERE s.workspace_id = :ws AND q.state = 'queued' ORDER BY q.id",
)
_QUEUED_BY_KEY = Query(
    "queue_by_key",
    "SELECT id, session_id, text, principal, state, created_ms FROM queued_messages "
    "WHERE source_key = :key",
)
_SET_QUEUED_STATE = Query(
    "queue_set_state",
    "UPDATE queued_messages SET state = :state WHERE id = :id AND state = 'queued'",
)
_WORKSPACES_WITH_QUEUE = Query(
    "queue_workspaces",
    "SELECT DISTINCT s.workspace_id FROM queued_messages q "
    "JOIN workspace_sessions s ON s.id = q.session_id "
    "WHERE q.state = 'queued' AND s.queue_paused = 0 "
    # A workspace whose turn is still running has nothing to start yet: no write lock per tick.
    "AND NOT EXISTS (SELECT 1 FROM workspace_turns t WHERE t.workspace_id = s.workspace_id "
    "AND t.status IN ('pending', 'running'))",
)


# -- queue -----------------------------------------------------------------------------------


def enqueue(
    tx: Transaction, session_id: str, text: str, principal: str, source_key: str | None
) -> int:
    """Queue a follow-up; returns its id."""
    params = {"session": session_id, "text": text, "principal": principal, "source_key": source_key}
    queued_id: int = tx.scalar(_ENQUEUE, params)
    return queued_id


def queued(tx: Transaction, session_id: str) -> list[QueuedMessage]:
    """A session's queued follow-ups in order."""
    return [_queued(row) for row in tx.fetchall(_QUEUED, {"session": session_id})]


def queued_in_workspace(tx: Transaction, ws_id: str) -> list[QueuedMessage]:
    """Every queued follow-up of a workspace, oldest first."""
    return [_queued(row) for row in tx.fetchall(_QUEUED_WS, {"ws": ws_id})]


def queued_by_key(tx: Transaction, key: str) -> QueuedMessage | None:
    """The queued follow-up a chat message created."""
    row = tx.fetchone(_QUEUED_BY_KEY, {"key": key})
    return None if row is None else _queued(row)


def set_queued_state(tx: Transaction, queued_id: int, state: str) -> bool:
    """Mark a queued follow-up started or cancelled (once)."""
    return bool(tx.execute(_SET_QUEUED_STATE, {"id": queued_id, "state": state}))


def workspaces_with_queue(tx: Transaction) -> list[str]:
    """Idle workspaces with queued follow-ups in an unpaused session."""
    return [str(row[0]) for row in tx.fetchall(_WORKSPACES_WITH_QUEUE)]


def _queued(row: Sequence[Any]) -> QueuedMessage:
    return QueuedMessage(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]))
