"""Task authoring: create (idempotent), edit, assign, comment and archive."""

from __future__ import annotations

from dataclasses import dataclass

from kanban_core.board import events, links, notify, runs
from kanban_core.board.domain import (
    CreateResult,
    EventKind,
    RunOutcome,
    Task,
    TaskId,
    TaskStatus,
    WorkspaceKind,
    format_task_id,
)
from kanban_core.board.rows import TASK_COLUMNS, dump_json, task_from_row
from kanban_core.board.validation import WorkspaceSpec
from kanban_core.errors import InvalidTransition, TaskNotFound
from kanban_core.storage import Query, Transaction

_GET = Query("get_task", f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = :id")
_BY_KEY = Query(
    "task_by_idempotency_key",
    f"SELECT {TASK_COLUMNS} FROM tasks WHERE idempotency_key = :key AND status <> 'archived'",
)
_INSERT = Query(
    "insert_task",
    "INSERT INTO tasks (title, body, assignee, status, priority, tenant, workspace_kind, "
    "workspace_path, created_by, created_ms, updated_ms, skills, max_runtime_s, idempotency_key, "
    "repo, max_cost_micro_usd, max_tokens) "
    "VALUES (:title, :body, :assignee, :status, :priority, :tenant, :workspace_kind, "
    ":workspace_path, :created_by, {now}, {now}, :skills, :max_runtime_s, :idempotency_key, "
    ":repo, :max_cost_micro_usd, :max_tokens) "
    f"RETURNING {TASK_COLUMNS}",
)
_INSERT_LINK = Query(
    "insert_parent_link",
    "INSERT INTO task_links (parent_id, child_id, created_ms) "
    "VALUES (:parent_id, :child_id, {now})",
)
_INSERT_COMMENT = Query(
    "insert_comment",
    "INSERT INTO task_comments (task_id, author, body, created_ms) "
    "VALUES (:task_id, :author, :body, {now}) RETURNING id",
)
_ASSIGN = Query(
    "assign_task",
    "UPDATE tasks SET assignee = :assignee, updated_ms = {now}, "
    "consecutive_failures = CASE WHEN :changed = 1 THEN 0 ELSE consecutive_failures END "
    "WHERE id = :id AND status <> 'running'",
)
_EDIT = Query(
    "edit_task",
    "UPDATE tasks SET title = :title, body = :body, priority = :priority, tenant = :tenant, "
    "updated_ms = {now} WHERE id = :id",
)
_ACCEPT = Query(
    "accept",
    f"UPDATE tasks SET status = {runs.WAITING_OR_READY} "
    f"WHERE id = :id AND status = 'triage' RETURNING {TASK_COLUMNS}",
)
_ARCHIVE = Query(
    "archive_task",
    "UPDATE tasks SET status = 'archived', block_kind = NULL, current_run_id = NULL, "
    "lease_owner = NULL, lease_expires_ms = NULL, heartbeat_ms = NULL, deadline_ms = NULL, "
    "updated_ms = {now} "
    "WHERE id = :id AND status <> 'archived'",
)


@dataclass(frozen=True, slots=True)
class NewTask:
    """A validated request to create a task."""

    title: str
    created_by: str
    body: str | None = None
    assignee: str | None = None
    parents: tuple[TaskId, ...] = ()
    workspace: WorkspaceSpec | None = None
    tenant: str | None = None
    priority: int = 0
    triage: bool = False
    idempotency_key: str | None = None
    max_runtime_s: int | None = None
    skills: tuple[str, ...] = ()
    repo: str | None = None
    max_cost_micro_usd: int | None = None
    max_tokens: int | None = None


def get(tx: Transaction, task_id: TaskId) -> Task:
    """The task, or TaskNotFound."""
    row = tx.fetchone(_GET, {"id": task_id})
    if row is None:
        raise TaskNotFound(format_task_id(task_id))
    return task_from_row(row)


def create(tx: Transaction, new: NewTask) -> CreateResult:
    """Insert a task (or return the live task holding the same idempotency key)."""
    if new.idempotency_key is not None:
        row = tx.fetchone(_BY_KEY, {"key": new.idempotency_key})
        if row is not None:
            return CreateResult(task_from_row(row), created=False)
    parents = tuple(dict.fromkeys(new.parents))
    missing: list[str] = []
    waiting = False
    for parent_id in parents:
        try:
            status = links.status_of(tx, parent_id)
        except TaskNotFound:
            missing.append(format_task_id(parent_id))
            continue
        waiting = waiting or status not in (TaskStatus.DONE, TaskStatus.ARCHIVED)
    if missing:
        raise TaskNotFound(", ".join(missing)) from None
    status = TaskStatus.TODO if waiting else TaskStatus.READY
    if new.triage:
        status = TaskStatus.TRIAGE
    workspace = new.workspace or WorkspaceSpec(WorkspaceKind.SCRATCH)
    row = tx.fetchone(
        _INSERT,
        {
            "title": new.title,
            "body": new.body,
            "assignee": new.assignee,
            "status": status.value,
            "priority": new.priority,
            "tenant": new.tenant,
            "workspace_kind": workspace.kind.value,
            "workspace_path": workspace.path,
            "created_by": new.created_by,
            "skills": dump_json(list(new.skills)) if new.skills else None,
            "max_runtime_s": new.max_runtime_s,
            "idempotency_key": new.idempotency_key,
            "repo": new.repo,
            "max_cost_micro_usd": new.max_cost_micro_usd,
            "max_tokens": new.max_tokens,
        },
    )
    assert row is not None
    task = task_from_row(row)
    if parents:
        tx.executemany(_INSERT_LINK, [{"parent_id": p, "child_id": task.id} for p in parents])
    events.append(
        tx,
        task.id,
        EventKind.CREATED,
        {
            "assignee": task.assignee,
            "status": status.value,
            "parents": [format_task_id(p) for p in parents],
            "tenant": task.tenant,
            "skills": list(task.skills),
            "created_by": task.created_by,
        },
    )
    return CreateResult(task, created=True)


def comment(tx: Transaction, task_id: TaskId, author: str, body: str) -> int:
    """Add a comment; returns its id."""
    links.status_of(tx, task_id)
    comment_id: int = tx.scalar(
        _INSERT_COMMENT, {"task_id": task_id, "author": author, "body": body}
    )
    events.append(tx, task_id, EventKind.COMMENTED, {"author": author, "len": len(body)})
    return comment_id


def assign(tx: Transaction, task_id: TaskId, assignee: str | None) -> Task:
    """Change the assignee; refused while the task is running."""
    task = get(tx, task_id)
    changed = task.assignee != assignee
    if not tx.execute(_ASSIGN, {"id": task_id, "assignee": assignee, "changed": int(changed)}):
        raise InvalidTransition(
            f"cannot assign {task.ref}: it is running (reclaim it first, then assign)"
        )
    events.append(
        tx, task_id, EventKind.ASSIGNED, {"assignee": assignee, "previous": task.assignee}
    )
    return get(tx, task_id)


def edit(
    tx: Transaction,
    task_id: TaskId,
    *,
    title: str | None = None,
    body: str | None = None,
    clear_body: bool = False,
    priority: int | None = None,
    tenant: str | None = None,
    clear_tenant: bool = False,
) -> Task:
    """Change title, body, priority or tenant; records edited/reprioritized events."""
    task = get(tx, task_id)
    new_title = title if title is not None else task.title
    new_body = None if clear_body else (body if body is not None else task.body)
    new_priority = priority if priority is not None else task.priority
    new_tenant = None if clear_tenant else (tenant if tenant is not None else task.tenant)
    changed = [
        name
        for name, old, new in (
            ("title", task.title, new_title),
            ("body", task.body, new_body),
            ("tenant", task.tenant, new_tenant),
        )
        if old != new
    ]
    if not changed and new_priority == task.priority:
        return task
    tx.execute(
        _EDIT,
        {
            "id": task_id,
            "title": new_title,
            "body": new_body,
            "priority": new_priority,
            "tenant": new_tenant,
        },
    )
    if new_priority != task.priority:
        events.append(
            tx,
            task_id,
            EventKind.REPRIORITIZED,
            {"priority": new_priority, "previous": task.priority},
        )
    if changed:
        events.append(tx, task_id, EventKind.EDITED, {"fields": changed})
    return get(tx, task_id)


def accept(tx: Transaction, task_id: TaskId) -> Task:
    """Take a triaged task onto the board: ready, or todo while parents are unfinished."""
    row = tx.fetchone(_ACCEPT, {"id": task_id})
    if row is None:
        status = get(tx, task_id).status
        raise InvalidTransition(
            f"cannot accept {format_task_id(task_id)}: it is {status.value} (accept takes triage)"
        )
    task = task_from_row(row)
    events.append(tx, task_id, EventKind.ACCEPTED, {"status": task.status.value})
    return task


def archive(tx: Transaction, task_id: TaskId) -> Task:
    """Hide a task; an open run is closed as reclaimed and waiting children are promoted."""
    task = get(tx, task_id)
    if task.status is TaskStatus.ARCHIVED:
        raise InvalidTransition(f"{task.ref} is already archived")
    tx.execute(_ARCHIVE, {"id": task_id})
    run_id = task.current_run_id
    if run_id is not None:
        runs.close(tx, run_id, RunOutcome.RECLAIMED, error="task archived while running")
    events.append(tx, task_id, EventKind.ARCHIVED, {"previous": task.status.value}, run_id=run_id)
    notify.end_subscriptions(tx, task_id)
    links.promote_children(tx, task_id)
    return get(tx, task_id)
