"""commands.permissions: listing, allowing and denying agents' requests, and list/show marks."""

from __future__ import annotations

import pytest

from kanban_core import (
    Actor,
    Kanban,
    PermissionRequest,
    PermissionStatus,
    Task,
)
from kanban_core.commands.result import Table
from tests.kanban_core.commands.support import (
    assert_ok,
    assert_usage_error,
    headings,
    output,
    texts,
)


@pytest.fixture
def asked(board: Kanban, make_task, worker_on) -> tuple[Task, PermissionRequest, Actor]:
    """A running task whose agent asked; the agent's actor comes along to act as it."""
    task = make_task(title="migrate", assignee="coder")
    agent = worker_on(task)
    request = board.request_permission(
        agent,
        task.id,
        tool_kind="execute",
        tool_name="bash",
        summary="drop the staging tables",
        ttl_s=600,
    )
    return task, request, agent


def test_permissions_is_a_table_of_what_waits(run, asked):
    task, request, _ = asked
    result = assert_ok(run("permissions"))
    [table] = result.blocks
    assert isinstance(table, Table)
    assert table.columns == ("REF", "TASK", "TOOL", "SUMMARY", "AGE", "EXPIRES IN")
    [row] = table.rows
    assert row[:4] == (request.ref, task.ref, "bash", "drop the staging tables")
    assert row[5] in ("9m", "10m")


def test_nothing_waiting_says_so(run):
    assert texts(assert_ok(run("permissions"))) == ["(no requests waiting for an answer)"]


def test_list_and_show_mark_a_waiting_task_until_it_is_answered(run, board, asked, operator):
    task, request, _ = asked
    assert f"running · asks {request.ref}" in output(assert_ok(run("list")))
    shown = assert_ok(run(["show", task.ref]))
    assert "Waiting for an answer (1)" in headings(shown)
    assert f"(kanban allow {request.ref} / deny {request.ref})" in output(shown)
    in_chat = assert_ok(run(["show", task.ref], place=("telegram", "42", "")))
    assert f"(/allow {request.ref} or /deny {request.ref})" in output(in_chat)
    assert assert_ok(run(["list", "--json"])).data[0]["waiting_permission"] == [request.ref]

    assert_ok(run(["deny", request.ref, "use", "a", "migration"]))

    assert "asks" not in output(assert_ok(run("list")))
    assert "Waiting for an answer (1)" not in headings(assert_ok(run(["show", task.ref])))
    answered = board.permission(request.ref)
    assert (answered.status, answered.reason) == (PermissionStatus.DENIED, "use a migration")


def test_a_worker_cannot_answer_from_the_command_line(run, asked, board):
    _, request, agent = asked
    result = run(["allow", request.ref], actor=agent)
    assert result.exit_code == 1
    assert "a worker may not answer" in result.errors[0]
    assert board.permission(request.ref).status is PermissionStatus.PENDING


@pytest.mark.parametrize("line", ["allow t3", "allow p", "deny -- -3", "allow p1x", "deny"])
def test_a_bad_ref_is_a_usage_error_that_never_opens_the_board(run_offline, line):
    assert_usage_error(run_offline(line))
