"""Workspace commands asked on a host that does not hold the workspace become requests for it.

Two enrolled hosts share the fixture board (``board.host`` is who acts); the workspace is made
on build-2 in real git repositories. The target's side is played as the gateway does it: claim
the request, rebuild its argv from the typed arguments, run it through the same command tree.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
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
from kanban_core.workspaces.interactive import reconcile
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


# -- unarchive recreates worktrees: on the workspace's host only ------------------------------


@pytest.fixture
def swept(board: Kanban, chat: Run, two, kit: Kit) -> tuple[str, Path]:
    """A workspace made on build-2, stopped and archived from build-1 (the board only: they run
    there at once), its clean worktree removed by build-2's retention sweep; build-1 acts next."""
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    worktree = kit.get(ws_id).repos[0].worktree
    board.host = two[0]
    assert "stopped turn" in text(chat("stop", "--ws", ws_id))  # its first turn, not yet run
    archived = chat("archive", ws_id)
    assert text(archived).startswith(f"{ws_id} archived"), archived.errors
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]
    board.host = two[1]
    assert reconcile.sweep_archived(board, after_s=0)
    assert not worktree.exists()
    board.host = two[0]
    return ws_id, worktree


def test_unarchive_asked_on_another_host_recreates_the_worktree_there_not_here(
    board: Kanban, chat: Run, config_file: Path, two, kit: Kit, swept: tuple[str, Path]
) -> None:
    ws_id, worktree = swept
    container = sorted(worktree.parent.iterdir())  # what the sweep left beside the repository
    asked = chat("unarchive", ws_id, key="telegram:100:90")
    again = chat("unarchive", ws_id, key="telegram:100:90")  # the platform redelivered it
    assert (text(asked), asked.data) == ("sent to host build-2 (request 1)", {"exec_request": 1})
    assert text(again) == "already sent to host build-2 (request 1)"
    # Nothing happened on build-1: no directory at the worktree's path, still archived.
    assert not worktree.exists()
    assert sorted(worktree.parent.iterdir()) == container
    assert kit.get(ws_id).archived
    assert rows(board, "SELECT command, workspace_id, state FROM exec_requests") == [
        ("unarchive", ws_id, "pending")
    ]

    assert _serve(board, config_file, two[0]) == []  # not build-1's to run
    assert not worktree.exists()
    [result] = _serve(board, config_file, two[1])
    assert result.exit_code == 0, result.errors
    said = text(result)
    assert said.startswith(f"{ws_id} unarchived")
    assert "the worktree of api was missing; it was recreated from branch" in said
    assert worktree.is_dir()
    assert not kit.get(ws_id).archived
    [(state, command)] = rows(board, "SELECT state, command FROM exec_requests")
    assert (state, command) == ("done", "unarchive")


def test_a_terminal_unarchive_waits_for_the_workspace_host(
    board: Kanban, config_file: Path, two, kit: Kit, swept: tuple[str, Path]
) -> None:
    ws_id, worktree = swept
    seen_before_b: list[bool] = []

    def build_2_serves(_seconds: float) -> None:
        seen_before_b.append(worktree.exists())
        _serve(board, config_file, two[1])

    result = _cli(board, config_file, build_2_serves)("unarchive", ws_id)
    assert result.exit_code == 0, result.errors
    assert text(result).startswith(f"sent to host build-2 (request 1):\n{ws_id} unarchived")
    assert seen_before_b == [False]  # build-1 made nothing while it waited
    assert worktree.is_dir()


@pytest.mark.parametrize("where", ["revoked host", "web", "unenrolled terminal"])
def test_an_unarchive_that_cannot_be_sent_changes_nothing_anywhere(
    board: Kanban, chat: Run, config_file: Path, swept: tuple[str, Path], where: str
) -> None:
    ws_id, worktree = swept
    if where == "revoked host":
        board.revoke_host(Actor("alice"), "build-2")
    before = snapshot(board)
    if where == "web":
        result = _web(board, config_file, "unarchive", ws_id)
        reason = f"workspace {ws_id} is on host 'build-2'; ask in chat or in a terminal"
    elif where == "unenrolled terminal":
        board.host = None
        result = _cli(board, config_file, lambda _s: None)("unarchive", ws_id)
        reason = f"workspace {ws_id} is on host 'build-2'; run this there, or enroll"
    else:
        result = chat("unarchive", ws_id)
        reason = f"host 'build-2' was revoked; workspace {ws_id} lives on its disk"
    assert result.exit_code == 1
    [error] = result.errors
    assert error.startswith(reason)
    assert snapshot(board) == before  # still archived, nothing queued
    assert not worktree.exists()


@pytest.mark.parametrize(
    "verbs",
    [
        [("stop", "--ws"), ("archive",)],  # archive refuses a running turn
        [("pin",), ("unpin",), ("use",)],
        [("rename", "Renamed", "--ws"), ("repo", "--ws")],
        [("sessions", "--ws"), ("queue", "--ws"), ("queue", "clear", "--ws")],
    ],
)
def test_verbs_of_the_board_only_run_where_asked_and_touch_no_disk(
    board: Kanban, chat: Run, two, kit: Kit, verbs: list[tuple[str, ...]]
) -> None:
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    worktree = kit.get(ws_id).repos[0].worktree
    worktree.rename(worktree.with_name("aside"))  # a verb that recreated it here would show
    board.host = two[0]
    for argv in verbs:
        result = chat(*argv, ws_id)
        assert result.exit_code == 0, (argv, result.errors)
        assert "sent to host" not in text(result)
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]
    assert not worktree.exists()


def test_unarchive_travels_with_its_workspace_as_the_positional_word() -> None:
    ns = argparse.Namespace(ws="t12", action="unarchive")
    assert to_args(ExecCommand.UNARCHIVE, ns) == {}
    assert to_argv(ExecCommand.UNARCHIVE, {}, "ws-1") == ["ws", "unarchive", "ws-1"]
    with pytest.raises(ValidationError, match="unknown arguments: delete_branch"):
        to_argv(ExecCommand.UNARCHIVE, {"delete_branch": True}, "ws-1")


@pytest.mark.parametrize(("asker", "signalled"), [(0, False), (1, True)])
def test_stop_signals_the_supervisor_only_on_the_host_that_runs_it(
    board: Kanban, chat: Run, two, kit: Kit, asker: int, signalled: bool
) -> None:
    # Both hosts play on this machine, so they share its hostname: the pid is checked against
    # the run's enrolled host, not the hostname alone.
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    ws = kit.get(ws_id)
    claim = kit.claim(ws)
    supervisor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        board.set_worker(ws.task_id, claim.run_id, pid=supervisor.pid, host=socket.gethostname())
        board.host = two[asker]
        assert f"{ws_id}: stopped turn" in text(chat("stop", "--ws", ws_id))
        assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]  # the board's act
        if signalled:
            assert supervisor.wait(timeout=10) == -signal.SIGTERM
        else:
            with pytest.raises(subprocess.TimeoutExpired):
                supervisor.wait(timeout=0.5)  # build-2's supervisor finds its run ended itself
    finally:
        supervisor.kill()
        supervisor.wait()
