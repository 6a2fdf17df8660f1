"""Persistence of workspaces, repos, sessions, messages, turns, the queue and chat bindings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kanban_core.domain import TaskId
from kanban_core.rows import dump_json
from kanban_core.storage import Query, Transaction
from kanban_core.workspace.records import (
    ChatPlace,
    QueuedMessage,
    Session,
    SessionMessage,
    Turn,
    TurnStatus,
    Workspace,
    WorkspaceRepo,
    WorkspaceStatus,
)

_WS_COLUMNS = (
    "id, task_id, name, status, archived, pinned, container_path, branch_name, executor, "
    "active_repo, active_session_id, created_by, error, created_ms, updated_ms"
)
_REPO_COLUMNS = (
    "slug, position, source_path, common_dir, worktree_path, branch, base_ref, base_oid, "
    "branch_created, enabled, pr_number, pr_url, pr_state"
)
_SESSION_COLUMNS = (
    "id, workspace_id, position, name, executor, agent_session_id, turns, queue_paused, "
    "pause_reason, created_ms"
)
_TURN_COLUMNS = (
    "id, workspace_id, session_id, task_id, run_id, prompt, status, error, requested_by, "
    "created_ms, started_ms, ended_ms, before_heads, after_heads"
)

_INSERT_WS = Query(
    "ws_insert",
    "INSERT INTO workspaces (id, task_id, name, status, container_path, branch_name, executor, "
    "active_repo, created_by, idempotency_key, journal, created_ms, updated_ms) VALUES "
    "(:id, :task_id, :name, :status, :container, :branch, :executor, :active_repo, :created_by, "
    ":key, '[]', {now}, {now})",
)
_INSERT_REPO = Query(
    "ws_insert_repo",
    f"INSERT INTO workspace_repos ({_REPO_COLUMNS}, workspace_id) VALUES (:slug, :position, "
    ":source, :common, :worktree, :branch, :base_ref, :base_oid, :created, :enabled, NULL, NULL, "
    "NULL, :ws)",
)
_GET_WS = Query("ws_get", f"SELECT {_WS_COLUMNS} FROM workspaces WHERE id = :id")
_LOCK_WS = Query("ws_lock", "SELECT id FROM workspaces WHERE id = :id {for_update}")
_WS_BY_TASK = Query("ws_by_task", f"SELECT {_WS_COLUMNS} FROM workspaces WHERE task_id = :task_id")
_WS_BY_KEY = Query(
    "ws_by_key", f"SELECT {_WS_COLUMNS} FROM workspaces WHERE idempotency_key = :key"
)
_REPOS = Query(
    "ws_repos",
    f"SELECT {_REPO_COLUMNS} FROM workspace_repos WHERE workspace_id = :ws ORDER BY position",
)
_LIST_WS = Query(
    "ws_list",
    f"SELECT {_WS_COLUMNS} FROM workspaces WHERE archived = :archived "
    "ORDER BY pinned DESC, updated_ms DESC, id LIMIT :limit",
)
_ALL_IDS = Query("ws_all_ids", "SELECT id FROM workspaces")
_SET_STATUS = Query(
    "ws_set_status",
    "UPDATE workspaces SET status = :status, error = :error, updated_ms = {now} WHERE id = :id",
)
_SET_FIELD: dict[str, Query] = {
    name: Query(
        f"ws_set_{name}",
        f"UPDATE workspaces SET {name} = :value, updated_ms = {{now}} WHERE id = :id",
    )
    for name in ("name", "pinned", "active_repo", "active_session_id", "journal")
}
_SET_ARCHIVED = Query(
    "ws_set_archived",
    "UPDATE workspaces SET archived = :archived, archived_ms = CASE WHEN :archived = 1 "
    "THEN {now} ELSE NULL END, updated_ms = {now} WHERE id = :id",
)
_JOURNAL = Query("ws_journal", "SELECT journal FROM workspaces WHERE id = :id")
_INITIALIZING = Query("ws_initializing", "SELECT id FROM workspaces WHERE status = 'initializing'")
_DELETE_WS = Query("ws_delete", "DELETE FROM workspaces WHERE id = :id")
_DELETE_CHILDREN = tuple(
    Query(f"ws_delete_{table}", f"DELETE FROM {table} WHERE {where}")
    for table, where in (
        (
            "session_messages",
            "session_id IN (SELECT id FROM workspace_sessions WHERE workspace_id = :id)",
        ),
        (
            "queued_messages",
            "session_id IN (SELECT id FROM workspace_sessions WHERE workspace_id = :id)",
        ),
        ("workspace_turns", "workspace_id = :id"),
        ("workspace_sessions", "workspace_id = :id"),
        ("workspace_repos", "workspace_id = :id"),
        ("chat_bindings", "workspace_id = :id"),
    )
)
_SET_PR = Query(
    "ws_set_pr",
    "UPDATE workspace_repos SET pr_number = :number, pr_url = :url, pr_state = :state "
    "WHERE workspace_id = :ws AND slug = :slug",
)

# The workspace id is bound twice under two names: PostgreSQL deduces one type per parameter,
# and a select-list value (text) and a comparison with the column (varchar) disagree.
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
_COUNT_TURN = Query(
    "session_count_turn", "UPDATE workspace_sessions SET turns = turns + 1 WHERE id = :id"
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
_STARTED_TURNS = Query(
    "turns_started_in_session",
    "SELECT count(*) FROM workspace_turns WHERE session_id = :session AND started_ms IS NOT NULL",
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
    "WHERE q.state = 'queued' AND s.queue_paused = 0",
)

_BIND = Query(
    "chat_bind",
    "INSERT INTO chat_bindings (platform, chat_id, thread_id, workspace_id, updated_ms) "
    "VALUES (:platform, :chat_id, :thread_id, :ws, {now}) "
    "ON CONFLICT (platform, chat_id, thread_id) DO UPDATE SET workspace_id = :ws, "
    "updated_ms = {now}",
)
_BOUND = Query(
    "chat_bound",
    "SELECT workspace_id FROM chat_bindings WHERE platform = :platform AND chat_id = :chat_id "
    "AND thread_id = :thread_id",
)
_BOUND_PLACES = Query(
    "chat_places",
    "SELECT platform, chat_id, thread_id FROM chat_bindings WHERE workspace_id = :ws",
)


# -- workspaces ------------------------------------------------------------------------------


def insert_workspace(tx: Transaction, values: dict[str, Any]) -> None:
    """Insert a workspace row (status initializing) and its planned repos."""
    repos = values.pop("repos")
    tx.execute(_INSERT_WS, values)
    for position, repo in enumerate(repos, start=1):
        tx.execute(_INSERT_REPO, {**repo, "position": position, "ws": values["id"]})


def get(tx: Transaction, ws_id: str) -> Workspace | None:
    """A workspace with its repos, or None."""
    row = tx.fetchone(_GET_WS, {"id": ws_id})
    return None if row is None else _workspace(tx, row)


def lock(tx: Transaction, ws_id: str) -> bool:
    """Lock the workspace row for this transaction (PostgreSQL); False when it does not exist."""
    return tx.fetchone(_LOCK_WS, {"id": ws_id}) is not None


def by_task(tx: Transaction, task_id: TaskId) -> Workspace | None:
    """The workspace of a task, if it has one."""
    row = tx.fetchone(_WS_BY_TASK, {"task_id": task_id})
    return None if row is None else _workspace(tx, row)


def by_key(tx: Transaction, key: str) -> Workspace | None:
    """The workspace created under an idempotency key."""
    row = tx.fetchone(_WS_BY_KEY, {"key": key})
    return None if row is None else _workspace(tx, row)


def listing(tx: Transaction, *, archived: bool, limit: int = 50) -> list[Workspace]:
    """Workspaces, pinned first then most recently updated."""
    rows = tx.fetchall(_LIST_WS, {"archived": int(archived), "limit": limit})
    return [_workspace(tx, row) for row in rows]


def all_ids(tx: Transaction) -> set[str]:
    """Every workspace id (for orphan reconciliation)."""
    return {str(row[0]) for row in tx.fetchall(_ALL_IDS)}


def initializing(tx: Transaction) -> list[str]:
    """Workspaces whose creation never finished."""
    return [str(row[0]) for row in tx.fetchall(_INITIALIZING)]


def set_status(
    tx: Transaction, ws_id: str, status: WorkspaceStatus, error: str | None = None
) -> None:
    """Move a workspace to ``status``."""
    tx.execute(_SET_STATUS, {"id": ws_id, "status": status.value, "error": error})


def set_field(tx: Transaction, ws_id: str, name: str, value: object) -> None:
    """Set one of name, pinned, active_repo, active_session_id, journal."""
    tx.execute(_SET_FIELD[name], {"id": ws_id, "value": value})


def set_archived(tx: Transaction, ws_id: str, archived: bool) -> None:
    """Set or clear the archived flag."""
    tx.execute(_SET_ARCHIVED, {"id": ws_id, "archived": int(archived)})


def journal(tx: Transaction, ws_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The creation journal: the steps done so far."""
    raw = tx.scalar(_JOURNAL, {"id": ws_id})
    return [(str(step), dict(info)) for step, info in json.loads(raw or "[]")]


def delete(tx: Transaction, ws_id: str) -> None:
    """Remove a workspace and everything that belongs to it (audit rows stay)."""
    for query in _DELETE_CHILDREN:
        tx.execute(query, {"id": ws_id})
    tx.execute(_DELETE_WS, {"id": ws_id})


def set_pr(tx: Transaction, ws_id: str, slug: str, number: int, url: str, state: str) -> None:
    """Record the pull request of one repo."""
    params = {"ws": ws_id, "slug": slug, "number": number, "url": url, "state": state}
    tx.execute(_SET_PR, params)


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
    """How many of a session's turns reached a worker (a stopped pending turn never did)."""
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
    """Workspaces with queued follow-ups in an unpaused session."""
    return [str(row[0]) for row in tx.fetchall(_WORKSPACES_WITH_QUEUE)]


# -- chat bindings ---------------------------------------------------------------------------


def bind(tx: Transaction, place: ChatPlace, ws_id: str) -> None:
    """Make ``ws_id`` the workspace of a chat (or thread)."""
    params = {
        "platform": place.platform,
        "chat_id": place.chat_id,
        "thread_id": place.thread_id,
        "ws": ws_id,
    }
    tx.execute(_BIND, params)


def bound(tx: Transaction, place: ChatPlace) -> str | None:
    """The workspace a chat (or thread) is bound to."""
    params = {"platform": place.platform, "chat_id": place.chat_id, "thread_id": place.thread_id}
    value = tx.scalar(_BOUND, params)
    return None if value is None else str(value)


def places(tx: Transaction, ws_id: str) -> list[ChatPlace]:
    """The chats bound to a workspace."""
    return [ChatPlace(r[0], r[1], r[2]) for r in tx.fetchall(_BOUND_PLACES, {"ws": ws_id})]


# -- rows ------------------------------------------------------------------------------------


def _workspace(tx: Transaction, row: Sequence[Any]) -> Workspace:
    repos = tuple(
        WorkspaceRepo(
            slug=r[0],
            position=int(r[1]),
            source=Path(r[2]),
            common_dir=Path(r[3]),
            worktree=Path(r[4]),
            branch=r[5],
            base_ref=r[6],
            base_oid=r[7],
            branch_created=bool(r[8]),
            enabled=bool(r[9]),
            pr_number=r[10],
            pr_url=r[11],
            pr_state=r[12],
        )
        for r in tx.fetchall(_REPOS, {"ws": row[0]})
    )
    return Workspace(
        id=row[0],
        task_id=TaskId(int(row[1])),
        name=row[2],
        status=WorkspaceStatus(row[3]),
        archived=bool(row[4]),
        pinned=bool(row[5]),
        container=Path(row[6]),
        branch=row[7],
        executor=row[8],
        active_repo=row[9],
        active_session_id=row[10],
        created_by=row[11],
        error=row[12],
        created_ms=int(row[13]),
        updated_ms=int(row[14]),
        repos=repos,
    )


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
    )


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


def _queued(row: Sequence[Any]) -> QueuedMessage:
    return QueuedMessage(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]))
