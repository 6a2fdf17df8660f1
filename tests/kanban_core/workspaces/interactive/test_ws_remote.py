"""Workspace commands asked on a host that does not hold the workspace become requests for it.

Two enrolled hosts share the fixture board (``board.host`` is who acts); the workspace is made
on build-2 in real git repositories. The target's side is played as the gateway does it: claim
the request, rebuild its argv from the typed arguments, run it through the same command tree.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban
from kanban_core.board import exec_requests as xr
from kanban_core.board.exec_records import ExecCommand, ExecState
from kanban_core.board.hosts import HostIdentity
from kanban_core.commands import CommandContext, CommandResult, run_command
from kanban_core.commands.result import Table
from kanban_core.commands.workspace_remote import to_args, to_argv
from kanban_core.errors import ValidationError
from tests.gitrepos import write
from tests.kanban_core.support import execute, rows, snapshot
from tests.kanban_core.workspaces.interactive.conftest import Kit
from tests.kanban_core.workspaces.interactive.test_ws_commands import (
    Run,
    chat as chat,
    config_file as config_file,
    text,
)


@pytest.fixture
def two(board: Kanban, operator: Actor) -> tuple[HostIdentity, HostIdentity]:
    made = [
        board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)
        for name in ("build-1", "build-2")
    ]
    return made[0], made[1]


def _cli(board: Kanban, config_file: Path, sleep: Callable[[float], None]) -> Run:
    def run(*argv: str) -> CommandResult:
        ctx = CommandContext(
            actor=Actor("alice"),
            open_board=lambda _url: board,
            environ={"KANBAN_CONFIG": str(config_file), "PATH": os.environ["PATH"]},
            sleep=sleep,
        )
        return run_command(["ws", *argv], ctx)

    return run


def _web(board: Kanban, config_file: Path, *argv: str) -> CommandResult:
    """``ws …`` from the web board: a browser session's place, whose answers are not chat's."""
    ctx = CommandContext(
        actor=Actor("alice"),
        open_board=lambda _url: board,
        environ={"KANBAN_CONFIG": str(config_file)},
        interactive=False,
        principal="telegram:1",
        place=("web", "session-1", ""),
        source_key="web:1",
    )
    return run_command(["ws", *argv], ctx)


def _serve(board: Kanban, config_file: Path, host: HostIdentity) -> list[CommandResult]:
    """Host ``host``'s gateway: claim its requests and run each as its requester."""
    with board.db.transaction(write=True) as tx:
        taken = xr.claim(tx, host, claimer="gw")
    done = []
    for request in taken:
        who = request.requester
        ctx = CommandContext(
            actor=Actor(who.user_name),
            open_board=lambda _url: board,
            environ={"KANBAN_CONFIG": str(config_file), "PATH": os.environ["PATH"]},
            interactive=False,
            principal=who.user_id,
            place=(who.platform, who.chat_id, who.thread_id) if who.platform != "cli" else None,
            source_key=f"exec:{request.nonce}",
            exec_request=request.id,
        )
        result = run_command(to_argv(request.command, request.args, request.workspace_id), ctx)
        with board.db.transaction(write=True) as tx:
            out = "\n".join([text(result), *result.errors])
            xr.settle(tx, request.id, ExecState.DONE, out, exit_code=result.exit_code)
        done.append(result)
    return done


def test_a_workspace_is_bound_to_the_host_that_made_it_and_shows_it(
    board: Kanban, chat: Run, two, kit: Kit
) -> None:
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    listed = chat("list", "--json").data
    assert [(w["id"], w["host"]) for w in listed] == [(ws_id, "build-2")]
    [table] = chat("list").blocks
    assert isinstance(table, Table)
    assert table.columns[-1] == "HOST"
    assert table.rows[0][-1] == "build-2"
    assert "on host build-2" in text(chat("show", ws_id))
    assert rows(board, "SELECT host_id FROM tasks") == [(two[1].host_id,)]


def test_the_implicit_host_binds_nothing(board: Kanban, chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    assert chat("show", ws_id, "--json").data["host"] is None
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]


def test_a_chat_diff_on_another_host_is_sent_there_once_and_run_there(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit
) -> None:
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    write(kit.get(ws_id).repos[0].worktree / "NOTES.md", "from build-2\n")
    board.host = two[0]
    asked = chat("diff", "--ws", ws_id, key="telegram:100:55")
    again = chat("diff", "--ws", ws_id, key="telegram:100:55")  # the platform redelivered it
    assert text(asked) == "sent to host build-2 (request 1)"
    assert text(again) == "already sent to host build-2 (request 1)"

    assert _serve(board, config_file, two[0]) == []  # not build-1's to run
    [result] = _serve(board, config_file, two[1])
    assert result.exit_code == 0, result.errors
    assert "NOTES.md" in text(result)
    [(state, requester, role)] = rows(board, "SELECT state, user_id, role FROM exec_requests")
    assert (state, requester, role) == ("done", "telegram:1", "terminal")


def _made_on_build_2(board: Kanban, chat: Run, two: tuple[HostIdentity, HostIdentity]) -> str:
    """A workspace made on build-2; then build-1 acts. Returns its id."""
    board.host = two[1]
    ws_id: str = chat("new", "Notes", "--repo", "api").data["workspace"]
    board.host = two[0]
    return ws_id


def test_a_terminal_waits_for_the_answer_from_the_other_host(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit
) -> None:
    ws_id = _made_on_build_2(board, chat, two)

    # While the terminal waits, build-2's gateway takes the request (played in its sleep).
    def build_2_serves(_seconds: float) -> None:
        _serve(board, config_file, two[1])

    cli = _cli(board, config_file, build_2_serves)
    result = cli("status", "--ws", ws_id)
    assert result.exit_code == 0, result.errors
    assert text(result).startswith("sent to host build-2 (request 1):")
    assert "api" in text(result)


def test_a_waiting_terminal_whose_finished_request_gc_removed_is_told_so(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit
) -> None:
    ws_id = _made_on_build_2(board, chat, two)

    # build-2 answers, and a gc that keeps nothing runs before the terminal looks again.
    def served_then_collected(_seconds: float) -> None:
        _serve(board, config_file, two[1])
        execute(board, "UPDATE exec_requests SET finished_ms = finished_ms - 1000")
        board.gc(Actor("alice"), event_retention_days=0, log_retention_days=30)

    result = _cli(board, config_file, served_then_collected)("status", "--ws", ws_id)
    assert result.exit_code == 1
    assert result.errors == (
        "sent to host build-2 (request 1): it ended and gc removed it; see `kanban audit`",
    )
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]


def test_an_unenrolled_terminal_is_told_where_to_run_it(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit
) -> None:
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    board.host = None
    before = snapshot(board)
    result = _cli(board, config_file, lambda _s: None)("diff", "--ws", ws_id)
    [error] = result.errors
    assert error == (
        f"workspace {ws_id} is on host 'build-2'; run this there, or enroll this machine "
        "(`kanban host enroll`) to send it"
    )
    assert snapshot(board) == before


def test_arguments_travel_typed_and_come_back_as_the_same_argv() -> None:
    ns = argparse.Namespace(message="--not-an-option", scope="api", repo=None, ws="x")
    args = to_args(ExecCommand.COMMIT, ns)
    assert args == {"message": "--not-an-option", "scope": "api"}
    assert to_argv(ExecCommand.COMMIT, args, "ws-1") == [
        "ws",
        "commit",
        "--ws",
        "ws-1",
        "--scope",
        "api",
        "--",
        "--not-an-option",
    ]
    assert to_argv(ExecCommand.DELETE, {"delete_branch": True}, "ws-1") == [
        "ws",
        "delete",
        "ws-1",
        "--delete-branch",
    ]
    with pytest.raises(ValidationError, match="unknown arguments: shell"):
        to_argv(ExecCommand.STATUS, {"shell": "rm -rf /"}, "ws-1")
    with pytest.raises(ValidationError, match="not text"):
        to_argv(ExecCommand.RUN, {"script": ["sh", "-c", "x"]}, "ws-1")


def test_the_web_board_is_told_to_ask_in_chat_and_nothing_is_queued(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit
) -> None:
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    board.host = two[0]
    before = snapshot(board)
    [error] = _web(board, config_file, "diff", "--ws", ws_id).errors
    assert error.startswith(f"workspace {ws_id} is on host 'build-2'; ask in chat")
    assert snapshot(board) == before
