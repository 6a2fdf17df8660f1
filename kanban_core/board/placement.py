"""Placement after a revocation: tasks bound to a revoked host are blocked, and re-placed.

A task bound to a host (named by ``--host``, or where its worktree or ``dir:`` workspace was
made) can be claimed by that host only. Once the host is revoked nobody can claim it, so it is
blocked with kind ``placement`` and a reason saying what to do — never left silently in ready.
Only an admin's re-placement (``edit T --host/--label/--any-host``) clears the binding;
until then ``unblock`` is refused, and nothing lifts the block by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kanban_core.board import events, runs, tasks
from kanban_core.board.domain import (
    BlockKind,
    EventKind,
    Task,
    TaskId,
    TaskStatus,
    WorkspaceKind,
    format_task_id,
)
from kanban_core.errors import InvalidTransition
from kanban_core.storage import Query, Transaction

# Driven from the waiting tasks (ready and todo), which the claim reads anyway.
_STRANDED = Query(
    "stranded_tasks",
    "SELECT t.id, h.name, w.id FROM tasks t JOIN hosts h ON h.id = t.host_id "
    "LEFT JOIN workspaces w ON w.task_id = t.id "
    "WHERE t.status IN ('ready', 'todo') AND h.revoked_ms IS NOT NULL ORDER BY t.id LIMIT :limit",
)
_BINDING = Query(
    "task_binding",
    "SELECT h.name, h.revoked_ms, t.host_label, w.id FROM tasks t "
    "LEFT JOIN hosts h ON h.id = t.host_id LEFT JOIN workspaces w ON w.task_id = t.id "
    "WHERE t.id = :id",
)
_REPLACE = Query(
    "replace_task",
    "UPDATE tasks SET host_id = :host_id, host_label = :label, workspace_path = :path, "
    "branch_name = :branch, updated_ms = {now} WHERE id = :id AND status = :status",
)
#: Where a task may be re-placed from: anything but running (its run is on the old host) and
#: archived (nothing runs it any more).
_REPLACEABLE = frozenset(
    {TaskStatus.TRIAGE, TaskStatus.TODO, TaskStatus.READY, TaskStatus.BLOCKED, TaskStatus.DONE}
)


@dataclass(frozen=True, slots=True)
class Binding:
    """Where a task is placed now: its host (and whether revoked), label, and workspace row."""

    host: str | None
    revoked: bool
    label: str | None
    workspace_id: str | None

    def describe(self) -> str:
        """``host 'alpha'``, ``label 'gpu'`` or ``any host``."""
        if self.host is not None:
            return f"host {self.host!r}"
        return f"label {self.label!r}" if self.label is not None else "any host"


@dataclass(frozen=True, slots=True)
class Replaced:
    """What a re-placement did: the task now, where it was, and the worktree left behind."""

    task: Task
    before: Binding
    after: Binding
    #: The worktree (path, branch) that stays on the old host's disk; None when there was none.
    left_behind: tuple[str, str | None] | None


def stranded_reason(task_id: TaskId, host: str, workspace_id: str | None) -> str:
    """Why a task bound to a revoked host is blocked, and what to do about it.

    Stored once (the block's reason) and read in a terminal, in chat and on the web board, so
    the commands are named by their verbs alone: ``kanban edit`` in one, ``/kanban edit`` in
    another.
    """
    ref = format_task_id(task_id)
    if workspace_id is not None:
        return (
            f"its workspace {workspace_id} is on host {host!r}'s disk, and that host was "
            f"revoked; it cannot run anywhere else: archive the task (`archive {ref}`) and the "
            f"workspace (`ws archive {workspace_id}`), and start a new workspace on another host"
        )
    return f"bound to host {host!r}, which was revoked; {replace_hint(ref)}, then unblock it"


def replace_hint(ref: str) -> str:
    """How an admin re-places a task, by the verb alone (every surface reads it)."""
    return f"re-place it (`edit {ref} --host H`, --label L or --any-host)"


def stranded(tx: Transaction, *, limit: int = 100) -> list[tuple[TaskId, str, str | None]]:
    """Ready or waiting tasks bound to a revoked host: (task, host name, workspace id)."""
    return [
        (TaskId(int(r[0])), str(r[1]), None if r[2] is None else str(r[2]))
        for r in tx.fetchall(_STRANDED, {"limit": limit})
    ]


def block_stranded(tx: Transaction, *, limit: int = 100) -> list[TaskId]:
    """Block every ready or waiting task bound to a revoked host (kind placement); their ids.

    The blocked event reaches the task's chats like any block. A task the caller saw ready may
    have been claimed meanwhile by nobody (its host is revoked), so the guard never misses.
    """
    blocked = []
    for task_id, host, workspace_id in stranded(tx, limit=limit):
        runs.block(
            tx,
            task_id,
            proof=None,
            reason=stranded_reason(task_id, host, workspace_id),
            kind=BlockKind.PLACEMENT,
            detail={"host": host},
        )
        blocked.append(task_id)
    return blocked


def binding(tx: Transaction, task_id: TaskId) -> Binding:
    """Where a task is placed now."""
    row = tx.fetchone(_BINDING, {"id": task_id})
    if row is None:
        tasks.get(tx, task_id)  # raises TaskNotFound
        raise AssertionError("unreachable")
    return Binding(row[0], row[1] is not None, row[2], row[3])


def check_unblockable(tx: Transaction, task_id: TaskId) -> None:
    """Refuse to unblock a task still bound to a revoked host: it would sit in ready unrun."""
    bound = binding(tx, task_id)
    if bound.host is not None and bound.revoked:
        ref = format_task_id(task_id)
        if bound.workspace_id is not None:
            raise InvalidTransition(
                f"cannot unblock {ref}: its workspace {bound.workspace_id} is on host "
                f"{bound.host!r}'s disk, which was revoked"
            )
        raise InvalidTransition(
            f"cannot unblock {ref}: it is bound to host {bound.host!r}, which was revoked; "
            f"{replace_hint(ref)} first"
        )


def unblock(tx: Transaction, task_id: TaskId) -> Task:
    """Lift a block, unless the task is still bound to a revoked host."""
    check_unblockable(tx, task_id)
    return runs.unblock(tx, task_id)


def replace(
    tx: Transaction, task_id: TaskId, *, host_id: int | None, label: str | None, by: str
) -> Replaced:
    """Re-place a task: only the new host (or label, or any host) claims it from now on.

    A worktree made on the old host stays on its disk: the task is detached from it (its path
    and branch cleared, so the next run makes a new one), and the event and a comment keep
    where it was. A workspace made by ``ws new`` cannot move (its sessions live in it): refused.
    """
    task = tasks.get(tx, task_id)
    ref = task.ref
    if task.status not in _REPLACEABLE:
        hint = "; reclaim it first" if task.status is TaskStatus.RUNNING else ""
        raise InvalidTransition(f"cannot re-place {ref}: it is {task.status.value}{hint}")
    before = binding(tx, task_id)
    if before.workspace_id is not None:
        where = f" on host {before.host!r}'s disk" if before.host is not None else ""
        raise InvalidTransition(
            f"cannot re-place {ref}: it is workspace {before.workspace_id}'s task, whose "
            f"worktrees are{where} and cannot move; archive it and start a new workspace"
        )
    moves_off_host = before.host is not None and _named(tx, host_id) != before.host
    left_behind: tuple[str, str | None] | None = None
    path, branch = task.workspace_path, task.branch_name
    if moves_off_host and task.workspace_kind is WorkspaceKind.WORKTREE and path:
        left_behind, path, branch = (path, branch), None, None
    if not tx.execute(
        _REPLACE,
        {
            "id": task_id,
            "status": task.status.value,
            "host_id": host_id,
            "label": label,
            "path": path,
            "branch": branch,
        },
    ):
        raise InvalidTransition(f"{ref} changed meanwhile; try again")
    after = binding(tx, task_id)
    payload: dict[str, Any] = {
        "fields": ["placement"],
        "placement": after.describe(),
        "previous": before.describe(),
        "by": by,
    }
    if left_behind is not None:
        payload["left_behind"] = {"host": before.host, "path": left_behind[0]}
        if left_behind[1]:
            payload["left_behind"]["branch"] = left_behind[1]
    events.append(tx, task_id, EventKind.EDITED, payload)
    return Replaced(tasks.get(tx, task_id), before, after, left_behind)


_HOST_NAME = Query("host_name", "SELECT name FROM hosts WHERE id = :id")


def _named(tx: Transaction, host_id: int | None) -> str | None:
    if host_id is None:
        return None
    value = tx.scalar(_HOST_NAME, {"id": host_id})
    return None if value is None else str(value)
