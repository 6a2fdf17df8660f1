"""The ``ws`` verb through run_command, with a CommandContext made as the CLI and the gateway do."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from kanban_core import Actor, Kanban
from kanban_core.commands import CommandContext, CommandResult, run_command
from kanban_core.commands.result import Table, Text
from kanban_core.workspaces.interactive import store
from kanban_core.workspaces.interactive.records import WorkspaceStatus
from tests.gitrepos import branches, git, remote_heads
from tests.kanban_core.workspaces.interactive.conftest import Kit

Run = Callable[..., CommandResult]


def text(result: CommandResult) -> str:
    return "\n".join(b.text for b in result.blocks if isinstance(b, Text))


@pytest.fixture
def config_file(kit: Kit, tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "assignees": {"coder": {"command": ["true"]}},
                "workspaces": {
                    "managed_root": str(kit.data),
                    "agent": "coder",
                    "repos": {
                        "api": {"path": str(kit.api), "github_repo": "o/api"},
                        "web": {"path": str(kit.web)},
                    },
                },
            }
        )
    )
    return path


@pytest.fixture
def cli(board: Kanban, config_file: Path) -> Run:
    """``kanban ws …`` in a terminal: cli.main's context (interactive, identity from the user)."""

    def run(*argv: str) -> CommandResult:
        ctx = CommandContext(
            actor=Actor("alice"),
            open_board=lambda _url: board,
            environ={"KANBAN_CONFIG": str(config_file), "PATH": os.environ["PATH"]},
            interactive=True,
        )
        return run_command(["ws", *argv], ctx)

    return run


@pytest.fixture
def chat(board: Kanban, config_file: Path) -> Run:
    """``/ws …`` from a chat: the gateway's context (a principal and a place, no approver role)."""
    counter = iter(range(1, 1000))

    def run(
        *argv: str, principal: str = "telegram:1", key: str | None = None, **opts: Any
    ) -> CommandResult:
        ctx = CommandContext(
            actor=Actor(opts.pop("name", "alice")),
            open_board=lambda _url: board,
            environ={"KANBAN_CONFIG": str(config_file)},
            interactive=False,
            principal=principal,
            place=("telegram", "100", ""),
            source_key=key or f"telegram:100:{next(counter)}",
            may_approve=opts.pop("may_approve", False),
            chat_budget=3800,
        )
        return run_command(["ws", *argv], ctx)

    return run


def test_new_list_show_from_the_terminal(cli: Run, kit: Kit) -> None:
    made = cli("new", "Add login", "--repo", "api", "--repo", "web", "--body", "with tests")

    assert made.exit_code == 0, made.errors
    ws_id = made.data["workspace"]
    assert text(made).startswith(f"Created {ws_id} — Add login")
    ws = kit.get(ws_id)
    assert made.created == (ws.task_id,)
    listed = cli("list", "--json")
    assert [w["id"] for w in listed.data] == [ws_id]
    assert listed.data[0]["repos"][1]["slug"] == "web"
    shown = cli("show")  # the terminal is bound to it: no id needed
    assert shown.exit_code == 0, shown.errors
    assert ws_id in text(shown) or shown.data["id"] == ws_id
    assert cli("list", "--archived").blocks == (Text("no archived workspaces"),)


def test_a_terminal_may_name_a_repository_by_path_but_a_chat_may_not(
    cli: Run, chat: Run, kit: Kit
) -> None:
    refused = chat("new", "Add login", "--repo", str(kit.api))
    assert refused.exit_code != 0
    [error] = refused.errors
    assert "unknown repository" in error
    assert "\n" not in error
    assert kit.count("workspaces") == 0
    made = cli("new", "Add login", "--repo", str(kit.api))
    assert made.exit_code == 0, made.errors
    assert [r.slug for r in kit.get(made.data["workspace"]).repos] == ["api"]


def test_a_redelivered_chat_message_creates_one_workspace(chat: Run, kit: Kit) -> None:
    first = chat("new", "Add login", "--repo", "api", key="telegram:100:7")
    second = chat("new", "Add login", "--repo", "api", key="telegram:100:7")
    assert first.data == second.data
    assert text(second).startswith("Already created")
    assert second.created == ()
    assert kit.count("workspaces") == 1


def test_follow_up_queue_and_stop_from_chat(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api", "--repo", "web").data["workspace"]

    queued = chat("follow-up", "also add tests")
    assert queued.exit_code == 0, queued.errors
    assert "queued (position 1)" in text(queued)
    assert "position 2" in text(chat("follow-up", "and docs"))
    assert "also add tests" in text(chat("queue"))

    stopped = chat("stop")
    assert "stopped turn" in text(stopped)
    shown = chat("queue")
    assert "PAUSED" in text(shown)
    assert [a.label for a in shown.actions] == ["Run next", "Clear"]
    assert kit.get(ws_id).status is WorkspaceStatus.PAUSED

    started = chat("queue", "run")
    assert "started turn" in text(started)
    assert started.created == (kit.get(ws_id).task_id,)
    assert "1 follow-up(s) cancelled" in text(chat("queue", "clear"))


def test_sessions_from_chat(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    kit.run_turn(kit.get(ws_id), "S1 answer")
    made = chat("new-session", "hello S2", "--name", "review")
    assert "session 2 started" in text(made)
    assert "sent to the agent" in text(made)
    assert "talks to coder, not codex" in chat("follow-up", "x", "--executor", "codex").errors[0]
    history = chat("sessions", "show", "1")
    assert "S1 answer" in text(history)
    assert "hello S2" not in text(history)
    assert "session 1 is now active" in text(chat("sessions", "use", "1"))


def test_commit_asks_which_repo_then_confirms(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api", "--repo", "web").data["workspace"]
    kit.run_turn(kit.get(ws_id))
    ws = kit.get(ws_id)
    for repo in ws.repos:
        (repo.worktree / "login.py").write_text("x = 1\n")

    which = chat("commit")
    assert which.exit_code == 1
    assert [a.action for a in which.actions] == ["k:commit --repo api", "k:commit --repo web"]

    assert "web" in text(chat("repo", "web"))
    card = chat("commit", "add the login form")
    assert card.exit_code == 0, card.errors
    approval = card.data["approval"]
    assert "spirit(web): add the login form" in text(card)
    assert [a.label for a in card.actions] == ["Confirm", "Cancel"]
    assert card.actions[0].action.startswith(f"ap:{approval}:")
    nonce = card.actions[0].action.rsplit(":", 1)[1]

    other = chat("approve", approval, "--nonce", nonce, principal="telegram:2", name="bob")
    assert other.exit_code != 0
    assert "only the person who asked" in other.errors[0]
    done = chat("approve", approval, "--nonce", nonce)
    assert done.exit_code == 0, done.errors
    assert text(done).startswith("committed ")
    assert git(ws.repos[1].worktree, "status", "--porcelain") == ""
    assert "login.py" in git(ws.repos[0].worktree, "status", "--porcelain")
    assert "already used" in chat("approve", approval, "--nonce", nonce).errors[0]


def test_push_and_delete_from_chat_need_their_decision(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    kit.run_turn(kit.get(ws_id))
    ws = kit.get(ws_id)
    wt = ws.repos[0].worktree
    (wt / "login.py").write_text("x = 1\n")
    card = chat("commit")
    chat("approve", card.data["approval"])
    before = remote_heads(kit.api_remote)

    push = chat("push")
    assert "Push 1 commit(s)" in text(push)
    assert remote_heads(kit.api_remote) == before
    assert chat("approve", push.data["approval"]).exit_code == 0
    assert f"refs/heads/{ws.branch}" in remote_heads(kit.api_remote)

    forced = chat("push", "--force-with-lease")
    assert forced.exit_code != 0  # nothing to push

    delete = chat("delete", "--delete-branch")
    assert [a.label for a in delete.actions] == ["Approve", "Deny"]
    assert "an approver must approve it" in text(delete)
    refused = chat("approve", delete.data["approval"])
    assert "approver role" in refused.errors[0]
    assert wt.is_dir()
    ok = chat("approve", delete.data["approval"], principal="telegram:2", may_approve=True)
    assert ok.exit_code == 0, ok.errors
    assert not wt.exists()
    assert f"refs/heads/{ws.branch}" not in branches(kit.api)
    assert kit.count("workspaces") == 0


def test_usage_errors_come_back_as_text(chat: Run, kit: Kit) -> None:
    result = chat("queue", "explode")
    assert result.exit_code == 2
    assert "usage" in result.errors[0]
    missing = chat("show")
    assert missing.exit_code != 0
    assert "which workspace" in missing.errors[0]


def test_status_and_diff_from_chat(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    kit.run_turn(kit.get(ws_id))
    wt = kit.get(ws_id).repos[0].worktree
    (wt / "login.py").write_text("token = 'AKIA" + "ABCDEFGHIJKLMNOP'\n")
    status = chat("status")
    assert "login.py" in text(status)
    assert [a.label for a in status.actions] == ["Diff", "Commit", "Push", "PR"]
    diff = chat("diff")
    assert "[REDACTED]" in text(diff)
    assert "AKIAABCDEFGHIJKLMNOP" not in text(diff)
    assert "secrets in the diff were redacted" in text(diff)
    with kit.board.db.transaction(write=False) as tx:
        assert store.get(tx, ws_id) is not None


@pytest.mark.parametrize("ref", ["t", "tx", "t#", "tomato"])
def test_a_bad_workspace_reference_is_a_one_line_error(chat: Run, kit: Kit, ref: str) -> None:
    chat("new", "Add login", "--repo", "api")
    result = chat("show", ref)
    assert result.exit_code != 0
    [error] = result.errors
    assert f"no workspace {ref!r}" in error


def test_a_workspace_is_found_by_its_task(chat: Run, kit: Kit) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    task = kit.get(ws_id).task_id
    for ref in (f"t{task}", f"#{task}", str(task)):
        assert chat("show", ref).data["id"] == ws_id


def test_approve_takes_a_short_form_or_nothing_when_one_request_is_open(
    chat: Run, kit: Kit
) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    kit.run_turn(kit.get(ws_id))
    wt = kit.get(ws_id).repos[0].worktree
    assert "no pending request in this chat" in chat("approve").errors[0]

    (wt / "a.py").write_text("a = 1\n")
    first = chat("commit", "add a")
    approval = first.data["approval"]
    tail = approval.rsplit("-", 1)[1]
    assert f"/approve {tail}" in text(first)
    # the only open request in this chat: a bare /approve is enough
    assert text(chat("approve")).startswith("committed ")

    (wt / "b.py").write_text("b = 1\n")
    second = chat("commit", "add b").data["approval"]
    delete = chat("delete").data["approval"]
    ambiguous = chat("approve")
    assert ambiguous.exit_code != 0
    message = ambiguous.errors[0]
    assert "2 requests are open in this chat, say which" in message
    assert f"/approve {second.rsplit('-', 1)[1]} (commit on {ws_id})" in message
    assert f"/approve {delete.rsplit('-', 1)[1]} (delete on {ws_id})" in message
    assert "no pending request matching 'zzz'" in chat("approve", "zzz").errors[0]
    assert kit.count("approvals", "status = 'pending'") == 2  # refusals decided nothing

    # the last digits of the id, or its last part, name one
    digits = second.split("-")[1][-4:]
    assert text(chat("deny", delete.rsplit("-", 1)[1])).startswith("delete cancelled")
    assert text(chat("approve", digits)).startswith("committed ")
    assert kit.count("approvals", "status = 'pending'") == 0


def test_ws_show_keeps_the_audit_offers_json_and_hides_paths_from_chat(
    cli: Run, chat: Run, kit: Kit
) -> None:
    ws_id = chat("new", "Add login", "--repo", "api").data["workspace"]
    for n in range(8):
        assert chat("rename", f"name {n}").exit_code == 0
    worktree = str(kit.get(ws_id).repos[0].worktree)

    shown = chat("show")
    [audit] = [t for t in shown.blocks if isinstance(t, Table) and t.columns[0] == "WHEN"]
    assert len(audit.rows) == 9  # create and every rename: more than the old five
    assert worktree not in text(shown)
    assert "WORKTREE" not in str(shown.blocks)
    few = chat("show", "--audit", "3")
    assert "the newest 3 of 9 audit rows" in text(few)
    assert "--audit takes a number" in chat("show", "--audit", "0").errors[0]

    as_json = chat("show", "--json")
    assert as_json.as_json
    data = as_json.data
    assert data["id"] == ws_id
    assert data["audit_total"] == 9
    assert [row["op"] for row in data["audit"]][:2] == ["rename", "rename"]
    assert data["audit"][-1]["op"] == "create"
    assert data["sessions"][0]["active"] is True
    assert worktree not in str(data)
    assert cli("show", ws_id, "--json").data["repos"][0]["worktree"] == worktree
    assert "WORKTREE" in str(cli("show", ws_id).blocks)
