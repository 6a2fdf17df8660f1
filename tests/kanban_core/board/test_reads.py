"""board.reads: list, show, stats, the event stream, and the rule that reads never write."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from kanban_core import (
    Actor,
    Kanban,
    KernelSettings,
    Task,
    TaskFilter,
    TaskId,
    TaskNotFound,
    TaskStatus,
)
from kanban_core.board.reads import SORTS
from tests.kanban_core.support import db_now, set_columns, snapshot, worker


def ids(tasks: Iterable[Task]) -> list[TaskId]:
    return [task.id for task in tasks]


@pytest.fixture
def populated(board, operator, make_task):
    """A small board with every status, two assignees and two tenants; returns tasks by name."""
    tasks = {
        "ready_a": make_task(title="bravo", assignee="ann", tenant="acme", priority=1),
        "ready_b": make_task(title="alpha", assignee="bob", tenant="beta", priority=5),
        "todo": make_task(title="charlie", assignee="ann", tenant="acme", priority=0),
        "triage": make_task(title="delta", triage=True, priority=2),
        "running": make_task(title="echo", assignee="bob", tenant="acme", priority=3),
        "blocked": make_task(title="foxtrot", assignee="ann", priority=-1),
        "done": make_task(title="golf", assignee="bob", priority=4),
        "archived": make_task(title="hotel", assignee="ann", tenant="acme", priority=9),
    }
    board.link(operator, tasks["ready_a"].id, tasks["todo"].id)
    board.claim(operator, tasks["running"].id)
    board.block(operator, tasks["blocked"].id, "hold")
    board.complete(operator, tasks["done"].id)
    board.archive(operator, tasks["archived"].id)
    # Distinct, known timestamps so every sort order is deterministic.
    for n, name in enumerate(tasks):
        set_columns(board, tasks[name].id, created_ms=1_000_000 + n, updated_ms=9_000_000 - n)
    return {name: board.get(task.id) for name, task in tasks.items()}


# -- list -------------------------------------------------------------------------------------


def test_list_hides_archived_and_sorts_by_priority(board, populated):
    listed = board.list()
    expected = ["ready_b", "done", "running", "triage", "ready_a", "todo", "blocked"]
    assert ids(listed) == [populated[name].id for name in expected]
    assert listed[0] == populated["ready_b"]


def test_list_archived(board, populated):
    everything = board.list(TaskFilter(include_archived=True))
    assert len(everything) == 8
    assert everything[0].id == populated["archived"].id
    only = board.list(TaskFilter(status=TaskStatus.ARCHIVED))
    assert ids(only) == [populated["archived"].id]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (TaskFilter(assignee="ann"), ["ready_a", "todo", "blocked"]),
        (
            TaskFilter(assignee="ann", include_archived=True),
            ["archived", "ready_a", "todo", "blocked"],
        ),
        (TaskFilter(assignee="nobody"), []),
        (TaskFilter(status=TaskStatus.READY), ["ready_b", "ready_a"]),
        (TaskFilter(status=TaskStatus.RUNNING), ["running"]),
        (TaskFilter(status=TaskStatus.DONE), ["done"]),
        (TaskFilter(tenant="acme"), ["running", "ready_a", "todo"]),
        (TaskFilter(tenant="acme", assignee="ann"), ["ready_a", "todo"]),
        (TaskFilter(tenant="acme", status=TaskStatus.TODO), ["todo"]),
        (TaskFilter(limit=2), ["ready_b", "done"]),
        (TaskFilter(assignee="bob", limit=1), ["ready_b"]),
        (TaskFilter(limit=0), []),
    ],
)
def test_list_filters(board, populated, flt, expected):
    assert ids(board.list(flt)) == [populated[name].id for name in expected]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("created", ["ready_a", "ready_b", "todo", "triage", "running", "blocked", "done"]),
        ("created-desc", ["done", "blocked", "running", "triage", "todo", "ready_b", "ready_a"]),
        ("updated", ["ready_a", "ready_b", "todo", "triage", "running", "blocked", "done"]),
        ("status", ["blocked", "done", "ready_b", "ready_a", "running", "todo", "triage"]),
        ("title", ["ready_b", "ready_a", "todo", "triage", "running", "blocked", "done"]),
    ],
)
def test_list_sorts(board, populated, sort, expected):
    assert ids(board.list(TaskFilter(sort=sort))) == [populated[name].id for name in expected]


def test_list_sort_by_assignee(board, populated):
    listed = board.list(TaskFilter(sort="assignee"))
    assigned = [task for task in listed if task.assignee is not None]
    names = [(task.assignee, task.priority) for task in assigned]
    assert names == [("ann", 1), ("ann", 0), ("ann", -1), ("bob", 5), ("bob", 4), ("bob", 3)]


def test_every_sort_is_known():
    assert set(SORTS) == {
        "priority",
        "created",
        "created-desc",
        "updated",
        "status",
        "assignee",
        "title",
    }


def test_unassigned_tasks_sort_the_same_on_both_databases(tmp_path, pg_database_url, operator):
    # `list --sort assignee` must not depend on the database: SQLite sorts NULL first, PostgreSQL
    # last, unless the query says where unassigned tasks go.
    orders = {}
    for name, url in (("sqlite", "sqlite://"), ("postgresql", pg_database_url)):
        with Kanban.open(KernelSettings(home=tmp_path / name, db_url=url)) as kanban:
            made = [
                kanban.create(operator, title=title, assignee=assignee).task.id
                for title, assignee in (("a", "zed"), ("b", None), ("c", "amy"))
            ]
            listed = kanban.list(TaskFilter(sort="assignee"))
            orders[name] = [made.index(task.id) for task in listed if task.id in made]
    assert [i for i in orders["sqlite"] if i != 1] == [2, 0]
    assert orders["postgresql"] == orders["sqlite"]


# -- show -------------------------------------------------------------------------------------


def test_detail_orders_everything_oldest_first(board, operator, make_task):
    p2, p1 = make_task(), make_task()
    task = make_task(assignee="coder", parents=[p1.id, p2.id])
    c2, c1 = make_task(), make_task()
    board.link(operator, task.id, c1.id)
    board.link(operator, task.id, c2.id)
    first = board.comment(operator, task.id, "one")
    second = board.comment(Actor(name="bob"), task.id, "two")
    board.complete(operator, p1.id)
    board.complete(operator, p2.id)
    claim1 = board.claim(operator, task.id)
    assert claim1 is not None
    board.reclaim(operator, task.id)
    claim2 = board.claim(operator, task.id)
    assert claim2 is not None

    detail = board.detail(task.id)
    assert detail.task == board.get(task.id)
    assert detail.parents == tuple(sorted((p1.id, p2.id)))
    assert detail.children == tuple(sorted((c1.id, c2.id)))
    assert [c.id for c in detail.comments] == [first, second]
    assert [e.id for e in detail.events] == sorted(e.id for e in detail.events)
    assert [e.kind for e in detail.events] == [
        "created",
        "commented",
        "commented",
        "promoted",
        "claimed",
        "reclaimed",
        "claimed",
    ]
    assert [r.id for r in detail.runs] == [claim1.run_id, claim2.run_id]
    # Only the open run carries the task's lease.
    assert detail.runs[0].lease_expires_ms is None
    assert detail.runs[1].lease_expires_ms == claim2.lease_expires_ms
    assert board.runs(task.id) == list(detail.runs)


def test_detail_and_get_of_an_unknown_task(board):
    with pytest.raises(TaskNotFound, match="no such task: t404"):
        board.detail(TaskId(404))
    with pytest.raises(TaskNotFound):
        board.get(TaskId(404))
    with pytest.raises(TaskNotFound):
        board.runs(TaskId(404))


# -- stats ------------------------------------------------------------------------------------


def test_stats_counts(board, populated):
    stats = board.stats()
    assert stats.by_status == {
        "triage": 1,
        "todo": 1,
        "ready": 2,
        "running": 1,
        "blocked": 1,
        "done": 1,
    }
    assert stats.by_assignee == {
        "ann": {"ready": 1, "todo": 1, "blocked": 1},
        "bob": {"ready": 1, "running": 1, "done": 1},
    }
    assert list(stats.by_assignee) == ["ann", "bob"]


def test_stats_of_an_empty_board(board):
    stats = board.stats()
    assert stats.by_status == dict.fromkeys(
        ("triage", "todo", "ready", "running", "blocked", "done"), 0
    )
    assert stats.by_assignee == {}
    assert stats.oldest_ready_age_seconds is None


def test_stats_oldest_ready_age(board, operator, make_task):
    old, young, running = make_task(), make_task(), make_task()
    now = db_now(board)
    set_columns(board, old.id, created_ms=now - 90_000)
    set_columns(board, young.id, created_ms=now - 10_000)
    set_columns(board, running.id, created_ms=now - 500_000)
    board.claim(operator, running.id)  # not ready: does not count
    stats = board.stats()
    assert stats.now_ms >= now
    assert stats.oldest_ready_age_seconds == (stats.now_ms - (now - 90_000)) / 1000
    assert 90.0 <= stats.oldest_ready_age_seconds < 150.0


def test_stats_age_is_never_negative(board, make_task):
    task = make_task()
    set_columns(board, task.id, created_ms=db_now(board) + 3_600_000)  # a clock in the future
    assert board.stats().oldest_ready_age_seconds == 0.0


# -- the event stream -------------------------------------------------------------------------


def test_events_after_and_recent_events(board, operator, make_task):
    assert board.max_event_id() == 0
    assert board.events_after(0) == []
    a = make_task()
    b = make_task()
    board.comment(operator, a.id, "x")
    board.comment(operator, b.id, "y")
    everything = board.events_after(0)
    assert [(e.task_id, e.kind) for e in everything] == [
        (a.id, "created"),
        (b.id, "created"),
        (a.id, "commented"),
        (b.id, "commented"),
    ]
    cursor = everything[1].id
    assert board.max_event_id() == everything[-1].id
    assert board.events_after(cursor) == everything[2:]
    assert board.events_after(cursor, limit=1) == everything[2:3]
    assert board.events_after(0, task_id=a.id) == [everything[0], everything[2]]
    assert board.events_after(everything[0].id, task_id=a.id) == [everything[2]]
    assert board.events_after(everything[-1].id) == []
    assert board.recent_events() == everything
    assert board.recent_events(limit=2) == everything[2:]
    assert board.recent_events(task_id=b.id, limit=1) == [everything[3]]
    assert board.recent_events(task_id=b.id) == [everything[1], everything[3]]


def test_event_stream_of_an_unknown_task(board):
    with pytest.raises(TaskNotFound):
        board.events_after(0, task_id=TaskId(404))
    with pytest.raises(TaskNotFound):
        board.recent_events(task_id=TaskId(404))


def test_task_tags(board, make_task):
    a = make_task(tenant="acme", assignee="ann")
    b = make_task()
    assert board.task_tags([a.id, b.id, TaskId(404)]) == {a.id: ("acme", "ann"), b.id: (None, None)}


# -- reads never write ------------------------------------------------------------------------


def every_read(board: Kanban, task_id: TaskId) -> None:
    """Call every read of the facade, including the ones that fail."""
    board.get(task_id)
    board.list()
    for sort in SORTS:
        board.list(TaskFilter(sort=sort, include_archived=True, limit=3))
    board.list(TaskFilter(assignee="ann", status=TaskStatus.READY, tenant="acme"))
    board.detail(task_id)
    board.runs(task_id)
    board.stats()
    board.max_event_id()
    board.events_after(0)
    board.events_after(0, task_id=task_id)
    board.recent_events()
    board.recent_events(task_id=task_id, limit=5)
    board.subscriptions()
    board.subscriptions(task_id)
    board.task_tags([task_id, TaskId(404)])
    for failing in (board.get, board.detail, board.runs, board.subscriptions):
        with pytest.raises(TaskNotFound):
            failing(TaskId(404))


def test_reads_never_write(board, operator, populated):
    # Leave work for a read that wrote to find: a todo child whose parent is done but that was
    # not promoted, a running task whose lease has expired, and a pending notification.
    running = populated["running"]
    set_columns(board, populated["todo"].id, status="todo")
    set_columns(board, populated["ready_a"].id, status="done")
    set_columns(board, running.id, lease_expires_ms=1)
    board.subscribe(operator, running.id, platform="telegram", chat_id="1")
    board.subscribe(operator, populated["ready_b"].id, platform="telegram", chat_id="1")
    claim = board.claim(operator, populated["ready_b"].id)
    assert claim is not None
    board.block(worker(claim), claim.task.id, "help")
    before = snapshot(board)
    shared = board.db._shared  # in-memory SQLite: one connection, which counts every change
    changes = None if shared is None else shared.total_changes
    for task in populated.values():
        every_read(board, task.id)
    assert snapshot(board) == before
    if shared is not None:
        assert shared.total_changes == changes
