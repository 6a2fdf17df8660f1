"""Workspace rows, their repositories, and which chat talks to which workspace."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kanban_core.board.domain import TaskId
from kanban_core.storage import Database, Query, Transaction
from kanban_core.workspaces.interactive.records import (
    ChatPlace,
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


@contextmanager
def writing(db: Database, ws_id: str) -> Iterator[Transaction]:
    """A write transaction that locks the workspace row before touching anything else.

    The one lock order for every write that changes more than one row of a workspace: the
    workspace row, then its task and run, then turns, sessions and the queue. Two orders (a
    stop locking the workspace then the turn, a turn ending the other way round) deadlock on
    PostgreSQL. A transaction of one statement (an audit line, a PR link) holds nothing
    while it waits, so it needs no lock first.
    """
    with db.transaction(write=True) as tx:
        lock(tx, ws_id)
        yield tx


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
