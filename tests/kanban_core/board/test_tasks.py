"""board.tasks (through the Kanban facade): create, edit, assign, archive and comment."""

from __future__ import annotations

import threading

import pytest

from kanban_core import (
    Actor,
    InvalidTransition,
    PermissionDenied,
    RunOutcome,
    RunProof,
    StaleRun,
    TaskId,
    TaskNotFound,
    TaskStatus,
    ValidationError,
    WorkspaceKind,
)
from kanban_core.board.validation import WorkspaceSpec, parse_workspace
from tests.kanban_core.support import count, event_kinds, set_columns, snapshot, worker

# -- create -----------------------------------------------------------------------------------


def test_create_without_parents_is_ready(board, operator):
    result = board.create(operator, title="first")
    assert result.created is True
    task = result.task
    assert task.status is TaskStatus.READY
    assert task.title == "first"
    assert task.created_by == "alice"
    assert task.attempts == 0
    assert task.workspace_kind is WorkspaceKind.SCRATCH
    assert board.get(task.id) == task
    (created,) = board.detail(task.id).events
    assert created.kind == "created"
    assert created.payload == {
        "assignee": None,
        "status": "ready",
        "parents": [],
        "tenant": None,
        "skills": [],
        "created_by": "alice",
    }


def test_create_stores_every_field(board, operator):
    task = board.create(
        operator,
        title="  full  ",
        body=" the body ",
        assignee="coder",
        workspace=parse_workspace("dir:/srv/app"),
        tenant="acme",
        priority=-7,
        idempotency_key="k1",
        max_runtime_s=1800,
        skills=["py", "sql", "py"],
    ).task
    assert (task.title, task.body, task.assignee, task.tenant, task.priority) == (
        "full",
        "the body",
        "coder",
        "acme",
        -7,
    )
    assert task.workspace_kind is WorkspaceKind.DIR
    assert task.workspace_path == "/srv/app"
    assert task.idempotency_key == "k1"
    assert task.max_runtime_s == 1800
    assert task.skills == ("py", "sql")
    assert board.get(task.id) == task


@pytest.mark.parametrize("parent_status", ["ready", "todo", "running", "blocked", "triage"])
def test_create_with_an_unfinished_parent_is_todo(board, operator, make_task, parent_status):
    parent = make_task()
    set_columns(board, parent.id, status=parent_status)
    child = make_task(parents=[parent.id])
    assert child.status is TaskStatus.TODO
    assert board.detail(child.id).parents == (parent.id,)
    assert board.detail(parent.id).children == (child.id,)


def test_create_with_done_and_archived_parents_is_ready(board, operator, make_task):
    done, archived = make_task(), make_task()
    board.complete(operator, done.id)
    board.archive(operator, archived.id)
    child = make_task(parents=[done.id, archived.id])
    assert child.status is TaskStatus.READY
    assert board.detail(child.id).parents == (done.id, archived.id)


def test_create_with_one_unfinished_parent_among_finished_ones_is_todo(board, operator, make_task):
    done, waiting = make_task(), make_task()
    board.complete(operator, done.id)
    assert make_task(parents=[done.id, waiting.id]).status is TaskStatus.TODO


def test_create_deduplicates_parents(board, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id, parent.id])
    assert board.detail(child.id).parents == (parent.id,)
    (created,) = board.detail(child.id).events
    assert created.payload is not None
    assert created.payload["parents"] == [parent.ref]


@pytest.mark.parametrize("with_parent", [False, True])
def test_triage_is_triage_whatever_the_parents(board, make_task, with_parent):
    parents = [make_task().id] if with_parent else []
    task = make_task(triage=True, parents=parents)
    assert task.status is TaskStatus.TRIAGE


def test_unknown_parents_are_listed_and_nothing_is_created(board, operator, make_task):
    parent = make_task()
    before = snapshot(board)
    with pytest.raises(TaskNotFound) as info:
        board.create(operator, title="orphan", parents=[parent.id, TaskId(998), TaskId(999)])
    assert str(info.value) == "no such task: t998, t999"
    assert snapshot(board) == before


@pytest.mark.parametrize(
    "kwargs",
    [
        {"title": ""},
        {"title": "a\nb"},
        {"title": "ok", "body": "x" * (1024 * 1024)},
        {"title": "ok", "assignee": "two words"},
        {"title": "ok", "tenant": "bad/tenant"},
        {"title": "ok", "priority": 1_000_001},
        {"title": "ok", "max_runtime_s": 0},
        {"title": "ok", "skills": ["fine", "not fine"]},
        {"title": "ok", "idempotency_key": "k" * 201},
    ],
)
def test_invalid_create_changes_nothing(board, operator, kwargs):
    before = snapshot(board)
    with pytest.raises(ValidationError):
        board.create(operator, **kwargs)
    assert snapshot(board) == before


def test_worker_created_task_carries_the_run_identity(board, operator, make_task):
    task = make_task(assignee="coder")
    claim = board.claim(operator, task.id)
    assert claim is not None
    sub = board.create(worker(claim, name="anything-it-likes"), title="subtask").task
    assert sub.created_by == f"coder@r{claim.run_id}"


# -- idempotency ------------------------------------------------------------------------------


def test_idempotent_create_returns_the_same_task(board, operator):
    first = board.create(operator, title="deploy", idempotency_key="deploy-1")
    events_before = count(board, "task_events")
    again = board.create(operator, title="a different title", idempotency_key="deploy-1")
    assert first.created is True
    assert again.created is False
    assert again.task == first.task
    assert count(board, "tasks") == 1
    assert count(board, "task_events") == events_before


def test_distinct_keys_create_distinct_tasks(board, operator):
    a = board.create(operator, title="x", idempotency_key="a").task
    b = board.create(operator, title="x", idempotency_key="b").task
    c = board.create(operator, title="x").task
    d = board.create(operator, title="x").task
    assert len({a.id, b.id, c.id, d.id}) == 4


def test_archiving_frees_the_idempotency_key(board, operator):
    first = board.create(operator, title="deploy", idempotency_key="deploy-1").task
    board.archive(operator, first.id)
    second = board.create(operator, title="deploy again", idempotency_key="deploy-1")
    assert second.created is True
    assert second.task.id != first.id
    assert board.get(first.id).status is TaskStatus.ARCHIVED
    third = board.create(operator, title="and again", idempotency_key="deploy-1")
    assert third.created is False
    assert third.task.id == second.task.id


def test_completed_task_still_holds_its_key(board, operator):
    first = board.create(operator, title="deploy", idempotency_key="k").task
    board.complete(operator, first.id)
    again = board.create(operator, title="deploy", idempotency_key="k")
    assert again.created is False
    assert again.task.id == first.id
    assert again.task.status is TaskStatus.DONE


def test_concurrent_creates_with_one_key_make_one_task(board, operator):
    start = threading.Barrier(4)
    results = []
    errors: list[BaseException] = []

    def create() -> None:
        try:
            start.wait(timeout=30)
            results.append(board.create(operator, title="once", idempotency_key="race"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.created for r in results) == [False, False, False, True]
    assert len({r.task.id for r in results}) == 1
    assert count(board, "tasks") == 1


# -- edit -------------------------------------------------------------------------------------


def test_edit_priority_emits_reprioritized_only(board, operator, make_task):
    task = make_task(priority=1)
    edited = board.edit(operator, task.id, priority=9)
    assert edited.priority == 9
    last = board.detail(task.id).events[-1]
    assert last.kind == "reprioritized"
    assert last.payload == {"priority": 9, "previous": 1}
    assert event_kinds(board, task.id) == ["created", "reprioritized"]


def test_edit_fields_emit_edited_with_the_changed_fields(board, operator, make_task):
    task = make_task(title="old", body="old body", tenant="acme")
    edited = board.edit(operator, task.id, title="new", tenant="beta")
    assert (edited.title, edited.body, edited.tenant) == ("new", "old body", "beta")
    last = board.detail(task.id).events[-1]
    assert last.kind == "edited"
    assert last.payload == {"fields": ["title", "tenant"]}
    assert edited.updated_ms >= task.updated_ms


def test_edit_everything_emits_both_events(board, operator, make_task):
    task = make_task()
    board.edit(operator, task.id, title="t", body="b", priority=3, tenant="x")
    events = board.detail(task.id).events
    assert [e.kind for e in events] == ["created", "reprioritized", "edited"]
    assert events[-1].payload == {"fields": ["title", "body", "tenant"]}


def test_edit_empty_body_and_tenant_clear_them(board, operator, make_task):
    task = make_task(body="something", tenant="acme")
    edited = board.edit(operator, task.id, body="", tenant="none")
    assert edited.body is None
    assert edited.tenant is None
    assert board.detail(task.id).events[-1].payload == {"fields": ["body", "tenant"]}


def test_edit_without_changes_writes_nothing(board, operator, make_task):
    task = make_task(title="same", priority=2)
    before = snapshot(board)
    assert board.edit(operator, task.id, title="same", priority=2) == task
    assert board.edit(operator, task.id) == task
    assert snapshot(board) == before


def test_edit_refusals(board, operator, make_task):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    before = snapshot(board)
    with pytest.raises(TaskNotFound):
        board.edit(operator, TaskId(999), title="x")
    with pytest.raises(ValidationError):
        board.edit(operator, task.id, title="two\nlines")
    with pytest.raises(ValidationError):
        board.edit(operator, task.id, priority=-1_000_001)
    with pytest.raises(PermissionDenied):
        board.edit(worker(claim), task.id, title="mine now")
    assert snapshot(board) == before


# -- assign -----------------------------------------------------------------------------------


def test_assign_and_unassign(board, operator, make_task):
    task = make_task()
    assert board.assign(operator, task.id, "coder").assignee == "coder"
    assert board.detail(task.id).events[-1].payload == {"assignee": "coder", "previous": None}
    assert board.assign(operator, task.id, "-").assignee is None
    assert board.detail(task.id).events[-1].payload == {"assignee": None, "previous": "coder"}
    assert event_kinds(board, task.id) == ["created", "assigned", "assigned"]


def test_assign_is_refused_while_running(board, operator, make_task):
    task = make_task(assignee="coder")
    assert board.claim(operator, task.id) is not None
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match="it is running"):
        board.assign(operator, task.id, "other")
    assert snapshot(board) == before


def test_reassigning_resets_the_failure_count(board, operator, make_task):
    task = make_task(assignee="coder")
    set_columns(board, task.id, consecutive_failures=3)
    assert board.get(task.id).consecutive_failures == 3
    assert board.assign(operator, task.id, "coder").consecutive_failures == 3
    assert board.assign(operator, task.id, "reviewer").consecutive_failures == 0


def test_assign_refusals(board, operator, make_task):
    task = make_task()
    with pytest.raises(TaskNotFound):
        board.assign(operator, TaskId(404), "coder")
    with pytest.raises(ValidationError):
        board.assign(operator, task.id, "not a name")
    claim = board.claim(operator, task.id)
    assert claim is not None
    with pytest.raises(PermissionDenied):
        board.assign(worker(claim), task.id, "me")


# -- archive ----------------------------------------------------------------------------------


def test_archive_a_ready_task(board, operator, make_task):
    task = make_task()
    archived = board.archive(operator, task.id)
    assert archived.status is TaskStatus.ARCHIVED
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.payload, event.run_id) == ("archived", {"previous": "ready"}, None)
    with pytest.raises(InvalidTransition, match="already archived"):
        board.archive(operator, task.id)


def test_archive_closes_an_open_run_as_reclaimed(board, operator, make_task):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    archived = board.archive(operator, task.id)
    assert archived.status is TaskStatus.ARCHIVED
    assert archived.current_run_id is None
    assert archived.lease_expires_ms is None
    (run,) = board.runs(task.id)
    assert run.outcome is RunOutcome.RECLAIMED
    assert run.status == "reclaimed"
    assert run.ended_ms is not None
    assert run.error == "task archived while running"
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.payload, event.run_id) == (
        "archived",
        {"previous": "running"},
        claim.run_id,
    )
    with pytest.raises(StaleRun, match="refused to complete"):
        board.complete(worker(claim), task.id, summary="too late")


def test_archive_ends_subscriptions_without_notifying(board, operator, make_task):
    task = make_task()
    board.subscribe(operator, task.id, platform="telegram", chat_id="1")
    board.archive(operator, task.id)
    assert board.subscriptions(task.id) == []
    assert count(board, "notify_deliveries") == 0


def test_archive_promotes_waiting_children(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    assert child.status is TaskStatus.TODO
    board.archive(operator, parent.id)
    assert board.get(child.id).status is TaskStatus.READY
    promoted = board.detail(child.id).events[-1]
    assert (promoted.kind, promoted.payload) == ("promoted", {"parent": parent.ref})


def test_archive_refusals(board, operator, make_task):
    task = make_task()
    with pytest.raises(TaskNotFound):
        board.archive(operator, TaskId(404))
    claim = board.claim(operator, task.id)
    assert claim is not None
    with pytest.raises(PermissionDenied):
        board.archive(worker(claim), task.id)


# -- comment ----------------------------------------------------------------------------------


def test_comment(board, operator, make_task):
    task = make_task()
    first = board.comment(operator, task.id, "  first note  ")
    second = board.comment(Actor(name="bob"), task.id, "second\nnote")
    assert second > first
    comments = board.detail(task.id).comments
    assert [(c.id, c.author, c.body) for c in comments] == [
        (first, "alice", "first note"),
        (second, "bob", "second\nnote"),
    ]
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.payload) == ("commented", {"author": "bob", "len": 11})


def test_worker_comment_carries_the_run_identity(board, operator, make_task):
    task = make_task(assignee="coder")
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.comment(worker(claim, name="spoofed"), task.id, "progress")
    assert board.detail(task.id).comments[-1].author == f"coder@r{claim.run_id}"


def test_worker_comments_on_another_task_under_its_run_identity(board, operator, make_task):
    # Comments are how sibling workers hand each other notes (as in the reference); they change
    # no state, and the author is the proven run, so they cannot pass for anyone else.
    mine, other = make_task(assignee="coder"), make_task()
    claim = board.claim(operator, mine.id)
    assert claim is not None
    board.comment(worker(claim), other.id, "the API moved to v2")
    (comment,) = board.detail(other.id).comments
    assert comment.author == f"coder@r{claim.run_id}"
    assert board.get(other.id).status is TaskStatus.READY


def test_a_forged_worker_cannot_comment(board, operator, make_task):
    mine, other = make_task(), make_task()
    claim = board.claim(operator, mine.id)
    assert claim is not None
    forged = Actor("coder", run=RunProof(mine.id, claim.run_id, "not-the-token"))
    before = snapshot(board)
    with pytest.raises(StaleRun):
        board.comment(forged, other.id, "hello")
    assert snapshot(board) == before


@pytest.mark.parametrize("body", ["", "   ", "bad\x00", "x" * (64 * 1024 + 1)])
def test_comment_refuses_bad_bodies(board, operator, make_task, body):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(ValidationError):
        board.comment(operator, task.id, body)
    assert snapshot(board) == before


def test_comment_on_an_unknown_task(board, operator):
    with pytest.raises(TaskNotFound, match="t404"):
        board.comment(operator, TaskId(404), "hello")
    assert count(board, "task_comments") == 0


def test_create_accepts_a_workspace_spec(board, operator):
    task = board.create(operator, title="w", workspace=WorkspaceSpec(WorkspaceKind.WORKTREE)).task
    assert task.workspace_kind is WorkspaceKind.WORKTREE
    assert task.workspace_path is None
