"""Pure reads of the board: list, show, stats, runs, the event stream. Reads never write."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from kanban_core.board.domain import (
    BoardStats,
    Event,
    Run,
    Task,
    TaskDetail,
    TaskId,
    TaskStatus,
    format_task_id,
)
from kanban_core.board.rows import (
    COMMENT_COLUMNS,
    EVENT_COLUMNS,
    RUN_COLUMNS,
    TASK_COLUMNS,
    comment_from_row,
    event_from_row,
    run_from_row,
    task_from_row,
)
from kanban_core.errors import TaskNotFound
from kanban_core.storage import Query, Transaction

_GET = Query("read_task", f"SELECT {TASK_COLUMNS} FROM tasks WHERE id = :id")
_PARENTS = Query(
    "parents", "SELECT parent_id FROM task_links WHERE child_id = :id ORDER BY parent_id"
)
_CHILDREN = Query(
    "children", "SELECT child_id FROM task_links WHERE parent_id = :id ORDER BY child_id"
)
_COMMENTS = Query(
    "comments", f"SELECT {COMMENT_COLUMNS} FROM task_comments WHERE task_id = :id ORDER BY id"
)
_EVENTS = Query(
    "task_events", f"SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = :id ORDER BY id"
)
_EVENT_COUNT = Query("task_event_count", "SELECT count(*) FROM task_events WHERE task_id = :id")
_RUNS = Query("task_runs", f"SELECT {RUN_COLUMNS} FROM task_runs WHERE task_id = :id ORDER BY id")
_LEASE = Query("task_lease", "SELECT lease_expires_ms FROM tasks WHERE id = :id")
# One pass over the table for both tallies: no index holds every task's status (each one would
# be rewritten by every claim and complete), so counting done tasks means reading the table.
_COUNT_BY_ASSIGNEE_AND_STATUS = Query(
    "count_by_assignee_and_status",
    "SELECT assignee, status, count(*) FROM tasks WHERE status <> 'archived' "
    "GROUP BY assignee, status",
)
_USAGE_TOTALS = Query(
    "usage_totals",
    "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(cost_micro_usd), 0) FROM task_runs",
)
_OLDEST_READY = Query(
    "oldest_ready", "SELECT min(created_ms), {now} FROM tasks WHERE status = 'ready'"
)
_NOW = Query("db_now", "SELECT {now}")
MAX_EVENT = Query("max_event_id", "SELECT COALESCE(max(id), 0) FROM task_events")
EVENTS_AFTER = Query(
    "events_after",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE id > :after ORDER BY id LIMIT :limit",
)
_TASK_EVENTS_AFTER = Query(
    "task_events_after",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = :task_id AND id > :after "
    "ORDER BY id LIMIT :limit",
)
_TASK_EVENTS_TAIL = Query(
    "task_events_tail",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE task_id = :task_id "
    "ORDER BY id DESC LIMIT :limit",
)
_EVENTS_TAIL = Query(
    "events_tail", f"SELECT {EVENT_COLUMNS} FROM task_events ORDER BY id DESC LIMIT :limit"
)
_TENANT_AND_ASSIGNEE = Query(
    "tenant_and_assignee", "SELECT id, tenant, assignee FROM tasks WHERE id = :id"
)

#: Sort orders ``list`` accepts, as SQL.
SORTS = {
    "priority": "priority DESC, created_ms, id",
    "created": "created_ms, id",
    "created-desc": "created_ms DESC, id DESC",
    "updated": "updated_ms DESC, id DESC",
    "status": "status, priority DESC, created_ms, id",
    # NULLs last on both databases (they disagree by default).
    "assignee": "assignee IS NULL, assignee, priority DESC, created_ms, id",
    "title": "title, id",
}


class TaskSummary(NamedTuple):
    """The columns the ``list`` table shows: a cheap row for boards of many thousand tasks."""

    id: TaskId
    status: TaskStatus
    block_kind: str | None
    assignee: str | None
    tenant: str | None
    title: str
    pause_reason: str | None = None  # a ready task waiting for a usage limit's reset

    @property
    def ref(self) -> str:
        """The id as people type it."""
        return format_task_id(self.id)


_SUMMARY_COLUMNS = "id, status, block_kind, assignee, tenant, title, pause_reason"
_STATUSES = {s.value: s for s in TaskStatus}


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What ``list`` selects."""

    assignee: str | None = None
    status: TaskStatus | None = None
    tenant: str | None = None
    include_archived: bool = False
    sort: str = "priority"
    limit: int | None = None


def get(tx: Transaction, task_id: TaskId) -> Task:
    """One task, or TaskNotFound."""
    row = tx.fetchone(_GET, {"id": task_id})
    if row is None:
        raise TaskNotFound(format_task_id(task_id))
    return task_from_row(row)


def list_summaries(tx: Transaction, flt: TaskFilter) -> list[TaskSummary]:
    """The ``list`` table's rows for the tasks matching the filter."""
    query = _list_query(*_shape(flt), _SUMMARY_COLUMNS)
    return [
        TaskSummary(TaskId(r[0]), _STATUSES[r[1]], r[2], r[3], r[4], r[5], r[6])
        for r in tx.fetchall(query, _params(flt))
    ]


def _shape(flt: TaskFilter) -> tuple[bool, TaskStatus | None, bool, bool, str, bool]:
    return (
        flt.assignee is not None,
        flt.status,
        flt.tenant is not None,
        flt.include_archived or flt.status is TaskStatus.ARCHIVED,
        flt.sort,
        flt.limit is not None,
    )


def _params(flt: TaskFilter) -> dict[str, object]:
    return {
        "assignee": flt.assignee,
        "tenant": flt.tenant,
        "limit": flt.limit,
    }


def list_tasks(tx: Transaction, flt: TaskFilter) -> list[Task]:
    """Tasks matching the filter; archived ones only when asked for."""
    query = _list_query(*_shape(flt), TASK_COLUMNS)
    return [task_from_row(row) for row in tx.fetchall(query, _params(flt))]


def detail(tx: Transaction, task_id: TaskId, *, event_limit: int | None = None) -> TaskDetail:
    """Everything about one task, read in one transaction. ``event_limit`` keeps only the
    newest events (0: none): the event log is the bulk of a long-lived task, and a worker's
    context shows none of it."""
    task = get(tx, task_id)
    params = {"id": task_id}
    lease = task.lease_expires_ms
    events = _events_of(tx, task_id, event_limit)
    runs = tuple(
        run_from_row(row, lease if row[0] == task.current_run_id else None)
        for row in tx.fetchall(_RUNS, params)
    )
    return TaskDetail(
        task=task,
        parents=tuple(TaskId(r[0]) for r in tx.fetchall(_PARENTS, params)),
        children=tuple(TaskId(r[0]) for r in tx.fetchall(_CHILDREN, params)),
        comments=tuple(comment_from_row(r) for r in tx.fetchall(_COMMENTS, params)),
        events=events,
        runs=runs,
        event_count=len(events) if event_limit is None else int(tx.scalar(_EVENT_COUNT, params)),
    )


def _events_of(tx: Transaction, task_id: TaskId, limit: int | None) -> tuple[Event, ...]:
    if limit is None:
        return tuple(event_from_row(r) for r in tx.fetchall(_EVENTS, {"id": task_id}))
    if limit <= 0:
        return ()
    rows = tx.fetchall(_TASK_EVENTS_TAIL, {"task_id": task_id, "limit": limit})
    return tuple(event_from_row(r) for r in reversed(rows))


def runs_of(tx: Transaction, task_id: TaskId) -> list[Run]:
    """The task's attempts, oldest first."""
    task = get(tx, task_id)
    return [
        run_from_row(row, task.lease_expires_ms if row[0] == task.current_run_id else None)
        for row in tx.fetchall(_RUNS, {"id": task_id})
    ]


def stats(tx: Transaction) -> BoardStats:
    """Counts per status (archived excluded) and per assignee, and the oldest ready age."""
    by_status = {s.value: 0 for s in TaskStatus if s is not TaskStatus.ARCHIVED}
    by_assignee: dict[str, dict[str, int]] = {}
    for assignee, status, count in tx.fetchall(_COUNT_BY_ASSIGNEE_AND_STATUS):
        by_status[status] += count
        if assignee is not None:
            by_assignee.setdefault(assignee, {})[status] = count
    row = tx.fetchone(_OLDEST_READY)
    assert row is not None
    oldest, now = row
    age = None if oldest is None else max(0.0, (now - oldest) / 1000)
    usage = tx.fetchone(_USAGE_TOTALS)
    assert usage is not None
    return BoardStats(
        by_status,
        dict(sorted(by_assignee.items())),
        age,
        now,
        int(usage[0]),
        int(usage[1]),
        int(usage[2]),
    )


def now_ms(tx: Transaction) -> int:
    """The database clock."""
    return int(tx.scalar(_NOW))


def max_event_id(tx: Transaction) -> int:
    """The newest event id (0 on an empty board): the cursor a live follower starts from."""
    return int(tx.scalar(MAX_EVENT))


def max_event_id_of(rows: list[tuple[Any, ...]]) -> int:
    """max_event_id from the rows of MAX_EVENT read on their own (``Database.read``)."""
    return int(rows[0][0])


def events_after(
    tx: Transaction, after: int, *, task_id: TaskId | None = None, limit: int = 200
) -> list[Event]:
    """Events with id greater than the cursor, oldest first."""
    if task_id is None:
        rows = tx.fetchall(EVENTS_AFTER, {"after": after, "limit": limit})
    else:
        rows = tx.fetchall(_TASK_EVENTS_AFTER, {"task_id": task_id, "after": after, "limit": limit})
    return [event_from_row(row) for row in rows]


def recent_events(
    tx: Transaction, *, task_id: TaskId | None = None, limit: int = 20
) -> list[Event]:
    """The newest events, oldest first."""
    if task_id is None:
        rows = tx.fetchall(_EVENTS_TAIL, {"limit": limit})
    else:
        rows = tx.fetchall(_TASK_EVENTS_TAIL, {"task_id": task_id, "limit": limit})
    return [event_from_row(row) for row in reversed(rows)]


def task_tags(tx: Transaction, task_id: TaskId) -> tuple[str | None, str | None] | None:
    """(tenant, assignee) of a task, used to filter the event stream; None if it is gone."""
    row = tx.fetchone(_TENANT_AND_ASSIGNEE, {"id": task_id})
    return None if row is None else (row[1], row[2])


@lru_cache(maxsize=64)
def _list_query(
    by_assignee: bool,
    status: TaskStatus | None,
    by_tenant: bool,
    include_archived: bool,
    sort: str,
    limited: bool,
    columns: str,
) -> Query:
    where = []
    if by_assignee:
        where.append("assignee = :assignee")
    if status is not None:
        # A literal, not a parameter: the planner picks a partial index (waiting, ready,
        # running) only when it can see the status the query asks for.
        where.append(f"status = '{status.value}'")
    if by_tenant:
        where.append("tenant = :tenant")
    if not include_archived:
        where.append("status <> 'archived'")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    limit = " LIMIT :limit" if limited else ""
    return Query("list_tasks", f"SELECT {columns} FROM tasks{clause} ORDER BY {SORTS[sort]}{limit}")
