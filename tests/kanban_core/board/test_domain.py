"""kanban_core.board.domain: task/run ids as people type them, and the ``--json`` record shapes."""

from __future__ import annotations

import pytest

from kanban_core import (
    Actor,
    BlockKind,
    RunId,
    RunOutcome,
    Subscription,
    TaskId,
    TaskStatus,
    ValidationError,
    WorkspaceKind,
    format_task_id,
    parse_task_id,
)
from kanban_core.board.domain import (
    SATISFYING_STATUSES,
    TERMINAL_EVENT_KINDS,
    Comment,
    Event,
    EventKind,
    Run,
    format_run_id,
    parse_run_id,
)
from tests.factories import task_record
from tests.kanban_core.support import worker
from tests.shapes import RUN_JSON_KEYS, TASK_JSON_KEYS

# -- task ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("t42", 42),
        ("T42", 42),
        ("#42", 42),
        ("42", 42),
        ("  t7 ", 7),
        ("t1", 1),
        ("t007", 7),
        ("9" * 18, int("9" * 18)),
    ],
)
def test_parse_task_id(text, expected):
    assert parse_task_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "t",
        "#",
        "0",
        "t0",
        "-1",
        "t-1",
        "+42",
        "x42",
        "tt42",
        "t#42",
        "42t",
        "t4 2",
        "t4.2",
        "r42",
        "\u0664\u0662",  # Arabic-Indic digits: isdigit() is true, but nobody types these for t42
        "t\uff11\uff12",  # fullwidth digits
        "9" * 19,
    ],
)
def test_parse_task_id_refuses_junk(text):
    with pytest.raises(ValidationError, match="not a task id"):
        parse_task_id(text)


@pytest.mark.parametrize("text", ["t_42", "_42", "#_42", "T_1"])
def test_parse_task_id_refuses_an_underscore(text):
    # The documented spellings are t42, T42, #42 and 42; an underscore is none of them.
    with pytest.raises(ValidationError, match="not a task id"):
        parse_task_id(text)


@pytest.mark.parametrize("task_id", [1, 42, 10**17])
def test_format_and_parse_round_trip(task_id):
    text = format_task_id(task_id)
    assert text == f"t{task_id}"
    assert parse_task_id(text) == task_id


@pytest.mark.parametrize(("text", "expected"), [("r7", 7), ("R7", 7), ("7", 7), (" r12 ", 12)])
def test_parse_run_id(text, expected):
    assert parse_run_id(text) == expected
    assert format_run_id(expected) == f"r{expected}"


@pytest.mark.parametrize("text", ["", "r", "t7", "r-1", "r7x", "r0", "0", "r" + "9" * 19])
def test_parse_run_id_refuses_junk(text):
    with pytest.raises(ValidationError, match="not a run id"):
        parse_run_id(text)


# -- vocabularies -----------------------------------------------------------------------------


def test_terminal_and_satisfying_sets():
    assert {k.value for k in TERMINAL_EVENT_KINDS} == {
        "completed",
        "blocked",
        "gave_up",
        "crashed",
        "timed_out",
    }
    assert {TaskStatus.DONE, TaskStatus.ARCHIVED} == SATISFYING_STATUSES


# -- to_json shapes ---------------------------------------------------------------------------


def test_task_to_json_of_a_value():
    task = task_record(
        status=TaskStatus.BLOCKED,
        block_kind=BlockKind.GAVE_UP,
        workspace_kind=WorkspaceKind.DIR,
        workspace_path="/srv/x",
        skills=("python", "sql"),
        started_ms=1_700_000_002_500,
        completed_ms=None,
        current_run_id=RunId(3),
        max_runtime_s=600,
    )
    data = task.to_json()
    assert set(data) == TASK_JSON_KEYS
    assert data["id"] == "t42"
    assert task.ref == "t42"
    assert data["status"] == "blocked"
    assert data["block_kind"] == "gave_up"
    assert data["workspace_kind"] == "dir"
    assert data["workspace_path"] == "/srv/x"
    assert data["created_at"] == 1_700_000_000  # milliseconds floor to seconds
    assert data["updated_at"] == 1_700_000_001
    assert data["started_at"] == 1_700_000_002
    assert data["completed_at"] is None
    assert data["skills"] == ["python", "sql"]
    assert data["max_runtime_seconds"] == 600
    assert data["current_run_id"] == 3
    assert "lease_expires_ms" not in data


def test_task_to_json_of_a_created_task(make_task):
    task = make_task(
        title="ship it",
        body="details",
        assignee="coder",
        tenant="acme",
        priority=5,
        skills=["python", "python", "go"],
        max_runtime_s=90,
        idempotency_key="key-1",
    )
    data = task.to_json()
    assert set(data) == TASK_JSON_KEYS
    expected = {
        "id": task.ref,
        "title": "ship it",
        "body": "details",
        "assignee": "coder",
        "status": "ready",
        "block_kind": None,
        "priority": 5,
        "tenant": "acme",
        "workspace_kind": "scratch",
        "workspace_path": None,
        "created_by": "alice",
        "started_at": None,
        "completed_at": None,
        "result": None,
        "skills": ["python", "go"],
        "max_runtime_seconds": 90,
        "idempotency_key": "key-1",
        "attempts": 0,
        "current_run_id": None,
        "consecutive_failures": 0,
        "last_failure_error": None,
        "repo": None,
        "branch_name": None,
    }
    assert {key: data[key] for key in expected} == expected
    assert data["created_at"] == task.created_ms // 1000
    assert isinstance(data["created_at"], int)


def test_run_comment_and_event_to_json(board, operator, make_task):
    task = make_task(assignee="coder")
    claim = board.claim(operator, task.id, ttl_s=60)
    assert claim is not None
    assert claim.proof.task_id == task.id
    assert claim.proof.run_id == claim.run_id
    assert claim.proof.token == claim.token
    board.comment(operator, task.id, "looks good")
    board.complete(worker(claim), task.id, summary="done it", metadata={"files": 2})

    detail = board.detail(task.id)
    (run,) = detail.runs
    run_json = run.to_json()
    assert set(run_json) == RUN_JSON_KEYS
    assert run_json["id"] == claim.run_id
    assert run_json["task_id"] == task.ref
    assert run_json["attempt"] == 1
    assert run_json["profile"] == "coder"
    assert run_json["claimer"] == "alice"
    assert run_json["status"] == "done"
    assert run_json["outcome"] == "completed"
    assert run_json["summary"] == "done it"
    assert run_json["metadata"] == {"files": 2}
    assert run_json["error"] is None
    assert run.ended_ms is not None
    assert run_json["ended_at"] == run.ended_ms // 1000
    assert run_json["started_at"] == run.started_ms // 1000

    (comment,) = detail.comments
    assert comment.to_json() == {
        "id": comment.id,
        "author": "alice",
        "body": "looks good",
        "created_at": comment.created_ms // 1000,
    }

    completed = [e for e in detail.events if e.kind == "completed"]
    assert len(completed) == 1
    assert completed[0].to_json() == {
        "id": completed[0].id,
        "task_id": task.ref,
        "kind": "completed",
        "payload": {"summary": "done it", "result_len": 0},
        "created_at": completed[0].created_ms // 1000,
        "run_id": claim.run_id,
    }


def test_value_records_to_json():
    run = Run(
        id=RunId(7),
        task_id=TaskId(3),
        attempt=2,
        profile=None,
        claimer="bob",
        status="reclaimed",
        outcome=RunOutcome.RECLAIMED,
        started_ms=5_999,
        ended_ms=None,
        lease_expires_ms=10_000,
        worker_pid=None,
        summary=None,
        metadata=None,
        error="reclaimed by bob: manual",
    )
    assert run.to_json()["outcome"] == "reclaimed"
    assert run.to_json()["started_at"] == 5
    assert run.to_json()["ended_at"] is None
    assert run.to_json()["task_id"] == "t3"

    event = Event(
        id=1,
        task_id=TaskId(3),
        run_id=None,
        kind=EventKind.CREATED.value,
        payload=None,
        created_ms=0,
    )
    assert event.to_json() == {
        "id": 1,
        "task_id": "t3",
        "kind": "created",
        "payload": None,
        "created_at": 0,
        "run_id": None,
    }
    comment = Comment(id=2, task_id=TaskId(3), author="a", body="b", created_ms=1_999)
    assert comment.to_json()["created_at"] == 1

    no_thread = Subscription(TaskId(3), "telegram", "100", "", None, 2_000)
    assert no_thread.to_json() == {
        "task_id": "t3",
        "platform": "telegram",
        "chat_id": "100",
        "thread_id": None,
        "user_id": None,
        "created_at": 2,
    }
    threaded = Subscription(TaskId(3), "slack", "C1", "T9", "U5", 2_000)
    assert threaded.to_json()["thread_id"] == "T9"
    assert threaded.to_json()["user_id"] == "U5"


def test_actor_defaults_to_no_run():
    assert Actor(name="alice").run is None
