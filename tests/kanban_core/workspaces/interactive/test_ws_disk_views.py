"""``ws show``'s worktree health and ``ws summary``'s changed files come from the workspace's disk.

Two enrolled hosts share the fixture board; the workspace is made on build-2 and asked about on
build-1. Both play on one filesystem, so build-1's "own disk" at the worktree's path is staged
as an impostor: a different git repository holding IMPOSTOR.md. Had build-1 read its disk, it
would report that tree (its health, its changed file); the answers must name build-2 instead,
and the changed files must come from build-2, through an execution request.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban
from kanban_core.board.hosts import HostIdentity
from kanban_core.commands.result import Table
from kanban_core.workspaces.interactive import store
from tests.gitrepos import git, write
from tests.kanban_core.support import rows, snapshot
from tests.kanban_core.workspaces.interactive.conftest import Kit
from tests.kanban_core.workspaces.interactive.test_ws_commands import (
    Run,
    chat as chat,
    config_file as config_file,
    text,
)
from tests.kanban_core.workspaces.interactive.test_ws_remote import _cli, _serve, _web, two as two

Hosts = tuple[HostIdentity, HostIdentity]


class Impostor:
    """The worktree moved aside and another clone put at its path, until ``restore``."""

    def __init__(self, worktree: Path, source: Path) -> None:
        self.worktree = worktree
        self.aside = worktree.with_name(worktree.name + ".aside")
        worktree.rename(self.aside)
        git(worktree.parent, "clone", "-q", str(source), worktree.name)
        write(worktree / "IMPOSTOR.md", "another tree at the same path\n")

    def restore(self) -> None:
        if self.aside.exists():
            shutil.rmtree(self.worktree)
            self.aside.rename(self.worktree)


@pytest.fixture
def on_build_2(board: Kanban, chat: Run, two: Hosts, kit: Kit) -> Iterator[tuple[str, Impostor]]:
    """A workspace made on build-2 with a change and the agent's words; build-1 asks next."""
    board.host = two[1]
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    ws = kit.get(ws_id)
    write(ws.repos[0].worktree / "NOTES.md", "from build-2\n")
    [(session, _state, _count)] = kit.svc.sessions(ws)
    with board.db.transaction(write=True) as tx:
        store.add_message(tx, session.id, "assistant", "agent", "wrote the notes", None)
    impostor = Impostor(ws.repos[0].worktree, kit.api)
    board.host = two[0]
    yield ws_id, impostor
    impostor.restore()


def test_show_on_another_host_names_the_host_instead_of_reading_this_disk(
    board: Kanban, chat: Run, config_file: Path, on_build_2: tuple[str, Impostor]
) -> None:
    ws_id, _impostor = on_build_2
    before = snapshot(board)
    shown = chat("show", ws_id)
    [repos] = [b for b in shown.blocks if isinstance(b, Table) and b.columns[0] == "REPO"]
    health = repos.rows[0][repos.columns.index("HEALTH")]
    assert health == "on build-2"
    assert "worktree health: on host build-2's disk, not read here; ws status asks it" in text(
        shown
    )
    assert [(a.label, a.action) for a in shown.actions] == [
        ("Status", f"k:git-status --ws {ws_id}")
    ]
    data = chat("show", ws_id, "--json").data
    assert (data["host"], data["local"], data["health"]) == ("build-2", False, {"api": None})
    web = _web(board, config_file, "show", ws_id, "--json").data
    assert (web["local"], web["health"]) == (False, {"api": None})
    assert snapshot(board) == before  # a read: no request is queued for it

    # An unenrolled machine is not build-2 either.
    board.host = None
    assert chat("show", ws_id, "--json").data["health"] == {"api": None}


def test_the_staged_disk_would_give_another_answer_read_on_the_workspace_host(
    board: Kanban, chat: Run, two: Hosts, on_build_2: tuple[str, Impostor]
) -> None:
    ws_id, impostor = on_build_2
    board.host = two[1]
    assert chat("show", ws_id, "--json").data["health"] == {"api": "unregistered_dir"}
    assert "IMPOSTOR.md" in text(chat("summary", "--ws", ws_id))
    impostor.restore()
    data = chat("show", ws_id, "--json").data
    assert (data["local"], data["health"]) == (True, {"api": "ok"})
    shown = chat("show", ws_id)
    assert "worktree health" not in text(shown)
    assert shown.actions == ()


def test_a_chat_summary_answers_the_board_part_and_sends_the_changed_files_to_the_host(
    board: Kanban, chat: Run, config_file: Path, two: Hosts, on_build_2: tuple[str, Impostor]
) -> None:
    ws_id, impostor = on_build_2
    asked = chat("summary", "--ws", ws_id, key="telegram:100:77")
    assert asked.exit_code == 0, asked.errors
    said = text(asked)
    assert "session 1: wrote the notes" in said
    assert "changed files: on host build-2's disk" in said
    assert said.endswith("sent to host build-2 (request 1)")
    assert "IMPOSTOR" not in said
    assert "repo api" not in said
    assert asked.data == {"exec_request": 1}
    assert [a.label for a in asked.actions] == ["Diff", "Commit", "Push", "PR"]
    assert rows(board, "SELECT command, args, state FROM exec_requests") == [
        ("status", '{"_budget": 3800}', "pending")
    ]

    impostor.restore()  # build-2's own disk, as it is there
    [answer] = _serve(board, config_file, two[1])
    assert answer.exit_code == 0, answer.errors
    assert "NOTES.md" in text(answer)
    assert "IMPOSTOR" not in text(answer)


def test_a_terminal_summary_waits_for_the_changed_files_from_the_host(
    board: Kanban, config_file: Path, two: Hosts, on_build_2: tuple[str, Impostor]
) -> None:
    ws_id, impostor = on_build_2

    def build_2_serves(_seconds: float) -> None:
        impostor.restore()
        _serve(board, config_file, two[1])

    result = _cli(board, config_file, build_2_serves)("summary", "--ws", ws_id)
    assert result.exit_code == 0, result.errors
    said = text(result)
    assert "session 1: wrote the notes" in said
    assert "changed files: on host build-2's disk\nsent to host build-2 (request 1):" in said
    assert "NOTES.md" in said
    assert "IMPOSTOR" not in said


@pytest.mark.parametrize("surface", ["web", "unenrolled terminal"])
def test_where_nothing_can_be_sent_the_summary_says_where_the_files_are(
    board: Kanban, config_file: Path, on_build_2: tuple[str, Impostor], surface: str
) -> None:
    ws_id, _impostor = on_build_2
    before = snapshot(board)
    if surface == "web":
        result = _web(board, config_file, "summary", "--ws", ws_id)
        reason = f"workspace {ws_id} is on host 'build-2'; ask in chat or in a terminal"
    else:
        board.host = None
        result = _cli(board, config_file, lambda _s: None)("summary", "--ws", ws_id)
        reason = f"workspace {ws_id} is on host 'build-2'; run this there, or enroll"
    assert result.exit_code == 0, result.errors
    said = text(result)
    assert "session 1: wrote the notes" in said
    assert f"changed files: on host build-2's disk\n{reason}" in said
    assert "IMPOSTOR" not in said
    assert "repo api" not in said
    assert snapshot(board) == before


def test_a_revoked_host_s_summary_keeps_the_board_part_and_says_why_the_files_are_missing(
    board: Kanban, chat: Run, on_build_2: tuple[str, Impostor]
) -> None:
    ws_id, _impostor = on_build_2
    board.revoke_host(Actor("alice"), "build-2")
    before = snapshot(board)
    result = chat("summary", "--ws", ws_id)
    assert result.exit_code == 1
    assert "session 1: wrote the notes" in text(result)
    assert "IMPOSTOR" not in text(result)
    [error] = result.errors
    assert error.startswith("host 'build-2' was revoked;")
    assert snapshot(board) == before


def test_one_implicit_host_reads_its_own_disk_as_before(board: Kanban, chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Notes", "--repo", "api").data["workspace"]
    write(kit.get(ws_id).repos[0].worktree / "NOTES.md", "here\n")
    data = chat("show", ws_id, "--json").data
    assert (data["host"], data["local"], data["health"]) == (None, True, {"api": "ok"})
    shown = chat("show", ws_id)
    [repos] = [b for b in shown.blocks if isinstance(b, Table) and b.columns[0] == "REPO"]
    assert repos.rows[0][repos.columns.index("HEALTH")] == "ok"
    summary = chat("summary", "--ws", ws_id)
    assert "repo api" in text(summary)
    assert "NOTES.md" in text(summary)
    assert "changed files: on host" not in text(summary)
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]
