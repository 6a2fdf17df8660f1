"""Agent turns: pending, bound to a run, ended exactly once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kanban_core.board.domain import TaskId
from kanban_core.board.rows import dump_json
from kanban_core.storage import Query, Transaction
from kanban_core.workspaces.interactive.records import Turn, TurnStatus, Workspace

_TURN_COLUMNS = (
    "id, workspace_id, session_id, task_id, run_id, prompt, status, error, requested_by, "
    "created_ms, started_ms, ended_ms, before_heads, after_heads"
)
_COUNT_TURN = Query(
    "session_count_turn", "UPDATE workspace_sessions SET turns = turns + 1 WHERE id = :id"
)
_INSERT_TURN = Query(
    "turn_insert",
    "INSERT INTO workspace_turns (id, workspace_id, session_id, task_id, prompt, status, "
    "requested_by, source_key, created_ms) VALUES (:id, :ws, :session, :task_id, :prompt, "
    "'pending', :requested_by, :source_key, {now})",
)
_TURN = Query("turn_get", f"SELECT {_TURN_COLUMNS} FROM workspace_turns WHERE id = :id")
_TURN_BY_KEY = Query(
    "turn_by_key", f"SELECT {_TURN_COLUMNS} FROM workspace_turns WHERE source_key = :key"
)
_TURN_BY_RUN = Query(
    "turn_by_run", f"SELECT {_TURN_COLUMNS} FROM workspace_turns WHERE run_id = :run_id"
)
_ACTIVE_TURN = Query(
    "turn_active",
    f"SELECT {_TURN_COLUMNS} FROM workspace_turns WHERE workspace_id = :ws "
    "AND status IN ('pending', 'running') ORDER BY created_ms, id LIMIT 1",
)
_SESSION_TURNS = Query(
    "turns_of_session",
    f"SELECT {_TURN_COLUMNS} FROM workspace_turns WHERE session_id = :session "
    "ORDER BY created_ms DESC, id DESC LIMIT :limit",
)
# A turn whose run failed to start the agent (spawn_failed) never reached it either.
_STARTED_TURNS = Query(
    "turns_started_in_session",
    "SELECT count(*) FROM workspace_turns t WHERE t.session_id = :session "
    "AND t.started_ms IS NOT NULL AND NOT EXISTS (SELECT 1 FROM task_runs r "
    "WHERE r.id = t.run_id AND r.outcome = 'spawn_failed')",
)
_START_TURN = Query(
    "turn_start",
    "UPDATE workspace_turns SET status = 'running', run_id = :run_id, started_ms = {now}, "
    "before_heads = :heads WHERE id = :id AND status = 'pending'",
)
# Terminal state is written once: a replayed or late verdict finds the row already ended.
_END_TURN = Query(
    "turn_end",
    "UPDATE workspace_turns SET status = :status, error = :error, ended_ms = {now}, "
    "after_heads = COALESCE(:heads, after_heads) "
    "WHERE id = :id AND status IN ('pending', 'running')",
)
_ENDED_RUN_TURNS = Query(
    "turns_with_ended_runs",
    f"SELECT {', '.join('t.' + c.strip() for c in _TURN_COLUMNS.split(','))} "
    "FROM workspace_turns t JOIN task_runs r ON r.id = t.run_id "
    "WHERE t.status = 'running' AND r.ended_ms IS NOT NULL LIMIT :limit",
)
# A pending turn whose task left the ready queue some other way (blocked by a spawn failure,
# completed or archived by hand) can never start; it is ended so the queue does not wait on it.
_STRANDED = Query(
    "turns_stranded",
    f"SELECT {', '.join('t.' + c.strip() for c in _TURN_COLUMNS.split(','))} "
    "FROM workspace_turns t JOIN tasks k ON k.id = t.task_id "
    "WHERE t.status = 'pending' AND k.status IN ('blocked', 'done', 'archived') LIMIT :limit",
)


# -- turns -----------------------------------------------------------------------------------


def insert_turn(
    tx: Transaction,
    *,
    turn_id: str,
    ws: Workspace,
    session_id: str,
    prompt: str,
    requested_by: str,
    source_key: str | None,
) -> None:
    """Add a pending turn."""
    tx.execute(
        _INSERT_TURN,
        {
            "id": turn_id,
            "ws": ws.id,
            "session": session_id,
            "task_id": ws.task_id,
            "prompt": prompt,
            "requested_by": requested_by,
            "source_key": source_key,
        },
    )
    tx.execute(_COUNT_TURN, {"id": session_id})


def turn(tx: Transaction, turn_id: str) -> Turn | None:
    """One turn."""
    row = tx.fetchone(_TURN, {"id": turn_id})
    return None if row is None else _turn(row)


def turn_by_key(tx: Transaction, key: str) -> Turn | None:
    """The turn a chat message started (redeliveries find it)."""
    row = tx.fetchone(_TURN_BY_KEY, {"key": key})
    return None if row is None else _turn(row)


def turn_by_run(tx: Transaction, run_id: int) -> Turn | None:
    """The turn a run carries out."""
    row = tx.fetchone(_TURN_BY_RUN, {"run_id": run_id})
    return None if row is None else _turn(row)


def active_turn(tx: Transaction, ws_id: str) -> Turn | None:
    """The workspace's pending or running turn (at most one at a time)."""
    row = tx.fetchone(_ACTIVE_TURN, {"ws": ws_id})
    return None if row is None else _turn(row)


def session_turns(tx: Transaction, session_id: str, *, limit: int = 5) -> list[Turn]:
    """A session's latest turns, newest first."""
    return [
        _turn(row) for row in tx.fetchall(_SESSION_TURNS, {"session": session_id, "limit": limit})
    ]


def started_turns(tx: Transaction, session_id: str) -> int:
    """How many of a session's turns reached the agent (not a turn stopped while pending, nor
    one whose agent could not be started)."""
    return int(tx.scalar(_STARTED_TURNS, {"session": session_id}))


def start_turn(tx: Transaction, turn_id: str, run_id: int, heads: dict[str, str]) -> bool:
    """Bind a pending turn to the run that carries it out; False if it is no longer pending."""
    params = {"id": turn_id, "run_id": run_id, "heads": dump_json(heads)}
    return bool(tx.execute(_START_TURN, params))


def end_turn(
    tx: Transaction,
    turn_id: str,
    status: TurnStatus,
    error: str | None,
    heads: dict[str, str] | None,
) -> bool:
    """Write a turn's terminal state once; False when it had already ended."""
    params = {
        "id": turn_id,
        "status": status.value,
        "error": error,
        "heads": dump_json(heads) if heads is not None else None,
    }
    return bool(tx.execute(_END_TURN, params))


def turns_with_ended_runs(tx: Transaction, *, limit: int = 100) -> list[Turn]:
    """Running turns whose run already ended (their supervisor died before settling them)."""
    return [_turn(row) for row in tx.fetchall(_ENDED_RUN_TURNS, {"limit": limit})]


def stranded_turns(tx: Transaction, *, limit: int = 100) -> list[Turn]:
    """Pending turns that can no longer start."""
    return [_turn(row) for row in tx.fetchall(_STRANDED, {"limit": limit})]


def _turn(row: Sequence[Any]) -> Turn:
    return Turn(
        id=row[0],
        workspace_id=row[1],
        session_id=row[2],
        task_id=TaskId(int(row[3])),
        run_id=None if row[4] is None else int(row[4]),
        prompt=row[5],
        status=TurnStatus(row[6]),
        error=row[7],
        requested_by=row[8],
        created_ms=int(row[9]),
        started_ms=row[10],
        ended_ms=row[11],
        before_heads=json.loads(row[12] or "{}"),
        after_heads=json.loads(row[13] or "{}"),
    )
