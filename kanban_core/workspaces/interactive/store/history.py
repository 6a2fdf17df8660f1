"""Sessions (conversations with the agent) and their message history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kanban_core.storage import Query, Transaction
from kanban_core.workspaces.interactive.records import Session, SessionMessage

_SESSION_COLUMNS = (
    "id, workspace_id, position, name, executor, agent_session_id, turns, queue_paused, "
    "pause_reason, created_ms, acp_session_id"
)
_INSERT_SESSION = Query(
    "session_insert",
    "INSERT INTO workspace_sessions (id, workspace_id, position, name, executor, "
    "agent_session_id, created_ms) SELECT :id, :ws, COALESCE(MAX(position), 0) + 1, :name, "
    ":executor, :agent_session_id, {now} FROM workspace_sessions WHERE workspace_id = :of_ws "
    "RETURNING position",
)
_SESSIONS = Query(
    "sessions_of",
    f"SELECT {_SESSION_COLUMNS} FROM workspace_sessions WHERE workspace_id = :ws ORDER BY position",
)
_SESSION = Query("session_get", f"SELECT {_SESSION_COLUMNS} FROM workspace_sessions WHERE id = :id")
_SET_PAUSED = Query(
    "session_pause",
    "UPDATE workspace_sessions SET queue_paused = :paused, pause_reason = :reason WHERE id = :id",
)
_SET_ACP_SESSION = Query(
    "session_set_acp", "UPDATE workspace_sessions SET acp_session_id = :acp WHERE id = :id"
)
_INSERT_MESSAGE = Query(
    "message_insert",
    "INSERT INTO session_messages (session_id, role, author, text, turn_id, created_ms) "
    "VALUES (:session, :role, :author, :text, :turn, {now})",
)
_MESSAGES = Query(
    "messages_of",
    "SELECT id, session_id, role, author, text, turn_id, created_ms FROM ("
    "SELECT * FROM session_messages WHERE session_id = :session ORDER BY id DESC LIMIT :limit"
    ") recent ORDER BY id",
)
_MESSAGE_COUNT = Query(
    "messages_count", "SELECT count(*) FROM session_messages WHERE session_id = :session"
)


# -- sessions and messages -------------------------------------------------------------------


def insert_session(
    tx: Transaction,
    *,
    session_id: str,
    ws_id: str,
    name: str | None,
    executor: str,
    agent_session_id: str,
) -> int:
    """Add a session; returns its position (1, 2, …)."""
    position: int = tx.scalar(
        _INSERT_SESSION,
        {
            "id": session_id,
            "ws": ws_id,
            "of_ws": ws_id,
            "name": name or "",
            "executor": executor,
            "agent_session_id": agent_session_id,
        },
    )
    return position


def sessions(tx: Transaction, ws_id: str) -> list[Session]:
    """A workspace's sessions in order."""
    return [_session(row) for row in tx.fetchall(_SESSIONS, {"ws": ws_id})]


def session(tx: Transaction, session_id: str) -> Session | None:
    """One session."""
    row = tx.fetchone(_SESSION, {"id": session_id})
    return None if row is None else _session(row)


def set_paused(tx: Transaction, session_id: str, reason: str | None) -> None:
    """Pause a session's queue with a reason, or resume it (None)."""
    params = {"id": session_id, "paused": int(reason is not None), "reason": reason}
    tx.execute(_SET_PAUSED, params)


def set_acp_session(tx: Transaction, session_id: str, acp_session_id: str) -> None:
    """Keep the ACP agent's id of a session, for the next turn to resume."""
    tx.execute(_SET_ACP_SESSION, {"id": session_id, "acp": acp_session_id})


def add_message(
    tx: Transaction, session_id: str, role: str, author: str, text: str, turn_id: str | None
) -> None:
    """Append a line to a session's history."""
    params = {"session": session_id, "role": role, "author": author, "text": text, "turn": turn_id}
    tx.execute(_INSERT_MESSAGE, params)


def messages(tx: Transaction, session_id: str, *, limit: int = 20) -> list[SessionMessage]:
    """The last ``limit`` lines of a session's history, oldest first."""
    rows = tx.fetchall(_MESSAGES, {"session": session_id, "limit": limit})
    return [SessionMessage(int(r[0]), r[1], r[2], r[3], r[4], r[5], int(r[6])) for r in rows]


def message_count(tx: Transaction, session_id: str) -> int:
    """How many lines a session's history has."""
    return int(tx.scalar(_MESSAGE_COUNT, {"session": session_id}))


def _session(row: Sequence[Any]) -> Session:
    return Session(
        id=row[0],
        workspace_id=row[1],
        position=int(row[2]),
        name=row[3],
        executor=row[4],
        agent_session_id=row[5],
        turns=int(row[6]),
        queue_paused=bool(row[7]),
        pause_reason=row[8],
        created_ms=int(row[9]),
        acp_session_id=row[10],
    )
