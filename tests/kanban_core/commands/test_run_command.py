"""run_command's contract: results, never exceptions; the board opened lazily, at most once."""

from __future__ import annotations

import pytest

from kanban_core import Actor
from kanban_core.commands import CommandContext, CommandResult, run_command
from kanban_core.commands.result import Text, failure, text
from kanban_core.errors import StorageError, UsageError
from tests.kanban_core.commands.support import assert_ok, texts


def test_a_result_is_ok_only_on_exit_zero():
    assert CommandResult().ok
    assert not CommandResult(exit_code=1).ok
    assert not CommandResult(exit_code=2).ok


def test_result_helpers():
    assert text("a", "b") == CommandResult(blocks=(Text("a"), Text("b")))
    assert text("x", exit_code=3).exit_code == 3
    assert failure("nope") == CommandResult(exit_code=1, errors=("nope",))
    assert failure("bad", exit_code=2).exit_code == 2


def test_the_board_is_opened_once_per_command(run, opened, make_task):
    task = make_task()

    # runs reads the board twice (runs, then stats): one open serves both.
    assert_ok(run(["runs", task.ref]))
    assert_ok(run(["claim", task.ref]))
    assert_ok(run(["runs", task.ref]))

    assert opened == [None, None, None]


def test_help_and_usage_errors_never_open_the_board(run, opened):
    run(["-h"])
    run(["create", "-h"])
    run(["create"])
    run(["complete", "t1", "t2", "--summary", "x"])

    assert opened == []


def test_a_kernel_refusal_becomes_exit_1(make_ctx):
    result = run_command(["show", "t404"], make_ctx())

    assert result == CommandResult(exit_code=1, errors=("no such task: t404",))


def test_a_storage_failure_becomes_a_result(operator):
    def unreachable(db_url):
        raise StorageError("cannot reach the database at sqlite:///nope")

    result = run_command(["list"], CommandContext(actor=operator, open_board=unreachable))

    assert result == CommandResult(
        exit_code=1, errors=("cannot reach the database at sqlite:///nope",)
    )


def test_a_programming_error_is_not_swallowed(operator):
    def broken(db_url):
        raise RuntimeError("bug")

    with pytest.raises(RuntimeError, match="bug"):
        run_command(["list"], CommandContext(actor=operator, open_board=broken))


def test_the_actor_comes_from_the_context_not_an_argument(run, board):
    result = assert_ok(run(["create", "Mine"], actor=Actor(name="bob")))

    assert board.get(result.created[0]).created_by == "bob"


def test_the_default_task_comes_from_the_environment(make_ctx, make_task):
    task = make_task()

    assert make_ctx(environ={"KANBAN_TASK": f"#{task.id}"}).default_task() == task.id
    with pytest.raises(UsageError, match="a task id is required"):
        make_ctx(environ={"KANBAN_TASK": ""}).default_task()


def test_a_malformed_task_in_the_environment_is_refused(run):
    result = run(["complete"], environ={"KANBAN_TASK": "banana"})

    assert result.exit_code == 1
    assert result.errors[0].startswith("not a task id: 'banana'")


@pytest.mark.parametrize("interactive", [True, False])
def test_a_non_streaming_verb_never_follows(run, interactive):
    result = run(["create", "x"], interactive=interactive)

    assert result.follow is None
    assert texts(result) == ["Created t1  (ready, assignee=-)"]
