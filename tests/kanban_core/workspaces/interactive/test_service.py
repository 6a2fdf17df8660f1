"""The workspace service on the real database and real git: create, refuse, archive, delete."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kanban_core.errors import InvalidTransition, KanbanError, ValidationError
from kanban_core.workspaces.interactive import store
from kanban_core.workspaces.interactive.approvals import ApprovalRefused
from kanban_core.workspaces.interactive.layout import MARKER_NAME
from kanban_core.workspaces.interactive.records import (
    SessionState,
    TurnStatus,
    Workspace,
    WorkspaceStatus,
)
from tests.gitrepos import branches, commit, git, worktree_list
from tests.kanban_core.workspaces.interactive.conftest import Kit, source_state

BRANCH_RE = r"^kanban/[0-9a-f]{4}-add-login$"


# --- create ---------------------------------------------------------------------------------


def test_create_over_two_repos(kit: Kit) -> None:
    before = {repo: source_state(repo) for repo in (kit.api, kit.web)}
    (kit.api / "scratch.txt").write_text("the user's own work\n")  # a dirty source checkout
    git(kit.api, "stash", "push", "-q", "-u", "-m", "user stash")
    (kit.api / "wip.txt").write_text("more\n")
    before[kit.api] = source_state(kit.api)

    made = kit.create("Add login", body="with tests")

    ws = made.workspace
    assert made.created
    assert re.match(BRANCH_RE, ws.branch), ws.branch
    assert ws.branch.split("/")[1][:4] == ws.id.rsplit("-", 1)[1][:4]
    assert [r.slug for r in ws.repos] == ["api", "web"]
    for repo in ws.repos:
        assert repo.branch == ws.branch  # one branch name across repos
        assert repo.worktree == kit.root / ws.id / repo.slug
        assert repo.worktree.resolve().is_relative_to(kit.root.resolve())
        assert git(repo.worktree, "symbolic-ref", "--short", "HEAD") == ws.branch
        assert git(repo.worktree, "rev-parse", "HEAD") == git(repo.source, "rev-parse", "main")
        assert repo.branch_created
    assert (kit.root / ws.id / MARKER_NAME).is_file()
    # the task: a worktree task, one attempt per turn, ready for the dispatcher
    status, block_kind, kind, max_retries, assignee = kit.task_row(ws)
    assert (status, block_kind, kind, max_retries, assignee) == (
        "ready",
        None,
        "worktree",
        1,
        "coder",
    )
    # session 1 active, its first turn pending, the chat bound, status running
    [(session, state, messages)] = kit.svc.sessions(ws)
    assert ws.active_session_id == session.id
    assert session.position == 1
    assert state is SessionState.RUNNING
    assert messages == 1
    assert made.first_turn is not None
    assert made.first_turn.turn_id is not None
    assert kit.turn(made.first_turn.turn_id).status is TurnStatus.PENDING
    assert kit.turn(made.first_turn.turn_id).prompt == "Add login\n\nwith tests"
    assert ws.status is WorkspaceStatus.RUNNING
    assert kit.svc.resolve(None, kit.caller().place).id == ws.id
    with kit.board.db.transaction(write=False) as tx:
        assert store.bound(tx, kit.caller().place) == ws.id
    # the user's checkouts are exactly as they were
    assert {repo: source_state(repo) for repo in (kit.api, kit.web)} == before
    assert ("create", "ok") in kit.audit_ops(ws.id)


def test_create_is_idempotent_per_chat_delivery(kit: Kit) -> None:
    first = kit.create(caller=kit.caller(key="telegram:100:55"))
    again = kit.create(caller=kit.caller(key="telegram:100:55"))
    assert first.created
    assert not again.created
    assert again.workspace.id == first.workspace.id
    assert again.first_turn is None
    assert kit.count("workspaces") == 1
    assert kit.count("workspace_turns") == 1
    assert len(kit.svc.listing()) == 1
    assert worktree_list(kit.api).count("worktree ") == 2


def test_a_failing_second_repo_leaves_nothing(kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    api_branches, web_branches = branches(kit.api), branches(kit.web)
    api_worktrees, web_worktrees = worktree_list(kit.api), worktree_list(kit.web)
    svc = kit.svc
    real = svc._journal
    planted: list[Path] = []

    def journal(ws_id: str) -> object:
        record = real(ws_id)

        def hook(step: str, info: dict[str, object]) -> None:
            record(step, info)
            if step == "repo_started" and info["slug"] == "web":
                # Someone else's files appear at web's target between planning and creation.
                target = Path(str(info["worktree"]))
                target.mkdir()
                (target / "theirs.txt").write_text("not ours\n")
                planted.append(target)

        return hook

    monkeypatch.setattr(svc, "_journal", journal)
    with pytest.raises(KanbanError, match="web") as info:
        svc.create(kit.caller(), title="Add login", body=None, repos=["api", "web"])
    assert "\n" not in str(info.value)
    [target] = planted
    ws_id = target.parent.name
    # no rows, the task archived, no worktree, no branch (web's too: git made it anyway)
    assert kit.count("workspaces") == 0
    assert kit.count("workspace_sessions") == 0
    assert kit.count("workspace_turns") == 0
    assert kit.board.list() == []  # the default listing hides archived tasks …
    assert kit.count("tasks", "status = 'archived'") == kit.count("tasks") == 1  # … it is one
    assert branches(kit.api) == api_branches
    assert branches(kit.web) == web_branches
    assert worktree_list(kit.api) == api_worktrees
    assert worktree_list(kit.web) == web_worktrees
    assert not (target.parent / "api").exists()
    assert (target / "theirs.txt").read_text() == "not ours\n"  # never deleted: not ours
    assert ("create", "failed") in kit.audit_ops(ws_id)


def test_unknown_repo_and_paths_from_chat_are_refused(kit: Kit) -> None:
    with pytest.raises(ValidationError) as unknown:
        kit.create(repos=("nope",))
    assert "unknown repository 'nope'" in str(unknown.value)
    assert "\n" not in str(unknown.value)
    with pytest.raises(ValidationError) as absolute:
        kit.create(repos=(str(kit.api),))
    assert "unknown repository" in str(absolute.value)
    assert "\n" not in str(absolute.value)
    assert kit.count("workspaces") == 0
    assert kit.board.list() == []
    assert branches(kit.api) == ["refs/heads/main"]
    assert not kit.root.exists() or not any(kit.root.iterdir())


def test_an_unknown_agent_profile_is_refused(kit: Kit) -> None:
    with pytest.raises(ValidationError, match="no agent profile 'ghost'"):
        kit.create(executor="ghost")
    kit.configure(agent="ghost")
    with pytest.raises(ValidationError, match="no agent profile 'ghost'"):
        kit.create()
    assert kit.board.list() == []


# --- archive / unarchive --------------------------------------------------------------------


def test_archive_hides_and_unarchive_restores(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.run_turn(ws, "first answer")
    kit.svc.new_session(kit.get(ws), kit.caller(), name="second", executor=None)
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.READY
    tips = {r.slug: git(r.source, "rev-parse", r.branch) for r in ws.repos}

    kit.svc.archive(ws, kit.caller())

    assert [w.id for w in kit.svc.listing()] == []
    [archived] = kit.svc.listing(archived=True)
    assert archived.id == ws.id
    assert archived.shown_status == "archived"
    assert len(kit.svc.sessions(archived)) == 2
    assert all(r.worktree.is_dir() for r in archived.repos)
    with pytest.raises(InvalidTransition, match="archived"):
        kit.svc.follow_up(archived, kit.caller(), "more")

    notes = kit.svc.unarchive(archived, kit.caller())

    back = kit.get(ws)
    assert notes == []
    assert [w.id for w in kit.svc.listing()] == [ws.id]
    assert back.shown_status == "ready"
    assert [s.name for s, _, _ in kit.svc.sessions(back)] == ["main", "second"]
    assert {r.slug: git(r.source, "rev-parse", r.branch) for r in back.repos} == tips
    history = kit.svc.history(kit.svc.session_of(back, "1"))
    assert [m.text for m in history] == ["Add login", "first answer"]


def test_archive_is_refused_while_a_turn_runs(kit: Kit) -> None:
    ws = kit.create().workspace
    with pytest.raises(InvalidTransition, match="stop it first"):
        kit.svc.archive(ws, kit.caller())
    assert kit.svc.listing(archived=True) == []


def test_unarchive_recreates_a_worktree_deleted_by_hand(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    api_repo = ws.repo("api")
    assert api_repo is not None
    commit(api_repo.worktree, "feature.py", "print('kept on the branch')\n")
    tip = git(api_repo.worktree, "rev-parse", "HEAD")
    kit.svc.archive(ws, kit.caller())
    web_list = worktree_list(kit.web)
    shutil.rmtree(api_repo.worktree)

    notes = kit.svc.unarchive(kit.get(ws), kit.caller())

    assert len(notes) == 1
    assert "api" in notes[0]
    assert "could not be recovered" in notes[0]
    assert git(api_repo.worktree, "rev-parse", "HEAD") == tip
    assert (api_repo.worktree / "feature.py").is_file()
    assert git(api_repo.worktree, "symbolic-ref", "--short", "HEAD") == ws.branch
    assert worktree_list(kit.web) == web_list
    assert worktree_list(kit.api).count("worktree ") == 2


# --- delete ---------------------------------------------------------------------------------


def test_delete_removes_only_managed_paths(kit: Kit, tmp_path: Path) -> None:
    ws = kit.create().workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    decoy = kit.root / "ws-0000000000-abcdef"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("decoy\n")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("precious\n")
    (kit.root / "evil").symlink_to(victim)
    outside = tmp_path / "elsewhere" / "api-hotfix"
    git(kit.api, "worktree", "add", "-q", "-b", "hotfix", str(outside), "main")
    (outside / "dirty.txt").write_text("uncommitted\n")
    registrations = worktree_list(kit.api)
    flow = kit.flow()

    card = flow.request_delete(ws, kit.caller(), delete_branch=False)
    assert card.approval.kind.value == "confirm"
    assert all(r.worktree.is_dir() for r in ws.repos)  # nothing happens before the decision
    lines = flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)

    assert not (kit.root / ws.id).exists()
    assert any("removed" in line for line in lines)
    assert (decoy / "keep.txt").read_text() == "decoy\n"
    assert (kit.root / "evil").is_symlink()
    assert (victim / "precious.txt").read_text() == "precious\n"
    assert (outside / "dirty.txt").read_text() == "uncommitted\n"
    assert f"worktree {outside}" in worktree_list(kit.api)
    assert worktree_list(kit.api) != registrations  # ours is gone …
    assert str(ws.repos[0].worktree) not in worktree_list(kit.api)
    for repo in (kit.api, kit.web):  # … and the branch stays (no --delete-branch)
        assert f"refs/heads/{ws.branch}" in branches(repo)
    assert kit.count("workspaces") == 0
    assert kit.board.get(ws.task_id).status.value == "archived"
    ops = kit.audit_ops(ws.id)
    assert ("delete", "requested") in ops
    assert ("delete", "ok") in ops


def test_delete_branch_needs_an_approval_and_deletes_by_cas(kit: Kit) -> None:
    ws = kit.create(repos=("api",)).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    wt = ws.repos[0].worktree
    commit(wt, "login.py", "x = 1\n")
    flow = kit.flow()

    card = flow.request_delete(ws, kit.caller(), delete_branch=True)

    assert card.approval.kind.value == "approval"
    assert any("1 unpushed commit" in line for line in card.lines)
    with pytest.raises(KanbanError, match="approver"):
        flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)
    assert wt.is_dir()
    assert f"refs/heads/{ws.branch}" in branches(kit.api)
    approver = kit.caller("telegram:2", "bob", may_approve=True)
    lines = flow.decide(approver, card.approval.id, nonce=card.approval.nonce, approve=True)
    assert not wt.exists()
    assert f"refs/heads/{ws.branch}" not in branches(kit.api)
    assert any("deleted branch" in line for line in lines)


def test_delete_is_refused_while_a_turn_runs(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.begin(ws)
    with pytest.raises(InvalidTransition, match="stop it first"):
        kit.flow().request_delete(ws, kit.caller(), delete_branch=False)
    with pytest.raises(InvalidTransition, match="stop it first"):
        kit.svc.delete(ws, kit.caller(), discard=False, delete_branch=False)
    assert all(r.worktree.is_dir() for r in ws.repos)
    assert kit.count("workspaces") == 1


def test_delete_without_remotes_cannot_verify_pushes(kit: Kit) -> None:
    git(kit.api, "remote", "remove", "origin")
    ws = kit.create(repos=("api",)).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    commit(ws.repos[0].worktree, "login.py", "x = 1\n")

    card = kit.flow().request_delete(ws, kit.caller(), delete_branch=False)

    text = "\n".join(card.lines)
    assert "cannot verify" in text
    assert "1 commit(s) would survive only on the branch" in text
    # The branch is kept, so its commits are not lost: the requester's confirmation is enough.
    assert card.approval.kind.value == "confirm"
    kit.flow().decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)
    assert f"refs/heads/{ws.branch}" in branches(kit.api)  # kept by default
    assert kit.count("workspaces") == 0


def test_deleting_committed_unpushed_work_keeps_the_branch_and_needs_no_approver(kit: Kit) -> None:
    ws = kit.create(repos=("api",)).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    commit(ws.repos[0].worktree, "login.py", "x = 1\n")
    tip = git(ws.repos[0].worktree, "rev-parse", "HEAD")
    flow = kit.flow()

    card = flow.request_delete(ws, kit.caller(), delete_branch=False)

    assert any("1 unpushed commit" in line for line in card.lines)
    assert card.approval.kind.value == "confirm"
    assert not any("approver" in line for line in card.lines)
    flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)
    assert not ws.container.exists()
    assert git(kit.api, "rev-parse", f"refs/heads/{ws.branch}") == tip
    # deleting the branch too would lose those commits: that still needs an approver
    again = kit.create("Again", repos=("api",)).workspace
    kit.run_turn(again)
    commit(kit.get(again).repos[0].worktree, "more.py", "y = 2\n")
    card = flow.request_delete(kit.get(again), kit.caller(), delete_branch=True)
    assert card.approval.kind.value == "approval"


def _stray_workspace(kit: Kit) -> Workspace:
    """Two repositories, and the agent's plan.md and notes/ beside them in the container."""
    ws = kit.create().workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    (ws.container / "plan.md").write_text("the plan\n")
    (ws.container / "notes").mkdir()
    (ws.container / "notes" / "a.txt").write_text("a\n")
    return ws


def test_delete_reports_files_beside_the_repositories_and_removes_them_once_approved(
    kit: Kit, tmp_path: Path
) -> None:
    ws = _stray_workspace(kit)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep\n")
    (ws.container / "notes" / "link").symlink_to(victim)
    flow = kit.flow()

    card = flow.request_delete(ws, kit.caller(), delete_branch=False)

    assert any("plan.md" in line and "notes/" in line for line in card.lines), card.lines
    assert card.approval.kind.value == "approval"
    assert (ws.container / "plan.md").is_file()  # nothing happens before the decision
    approver = kit.caller("telegram:2", "bob", may_approve=True)
    lines = flow.decide(approver, card.approval.id, nonce=card.approval.nonce, approve=True)

    assert not ws.container.exists(), lines
    assert (victim / "keep.txt").read_text() == "keep\n"
    assert kit.count("workspaces") == 0
    for repo in (kit.api, kit.web):
        assert f"refs/heads/{ws.branch}" in branches(repo)


def test_a_delete_that_cannot_finish_leaves_a_state_the_next_delete_completes(kit: Kit) -> None:
    ws = _stray_workspace(kit)
    flow = kit.flow()
    approver = kit.caller("telegram:2", "bob", may_approve=True)
    card = flow.request_delete(ws, kit.caller(), delete_branch=False)
    (ws.container / "late.txt").write_text("written after the card\n")  # never shown: kept

    with pytest.raises(KanbanError, match="partly deleted") as info:
        flow.decide(approver, card.approval.id, nonce=card.approval.nonce, approve=True)

    assert "late.txt" in str(info.value)
    assert "/ws delete" in str(info.value)
    assert (ws.container / "late.txt").is_file()
    assert not (ws.container / "plan.md").exists()  # what was shown and approved is gone
    assert not any(r.worktree.exists() for r in ws.repos)  # both worktrees are gone
    left = kit.get(ws)
    assert left.status is WorkspaceStatus.FAILED
    assert "delete incomplete" in (left.error or "")
    assert ("delete", "partial") in kit.audit_ops(ws.id)

    retry = flow.request_delete(left, kit.caller(), delete_branch=False)
    assert any("late.txt" in line for line in retry.lines), retry.lines
    flow.decide(approver, retry.approval.id, nonce=retry.approval.nonce, approve=True)
    assert not ws.container.exists()
    assert kit.count("workspaces") == 0
    assert ("delete", "ok") in kit.audit_ops(ws.id)


def test_worktree_paths_are_real_directories(kit: Kit) -> None:
    ws = kit.create().workspace
    for repo in ws.repos:
        assert not repo.worktree.is_symlink()
        assert (repo.worktree / ".git").is_file()


def test_the_spec_branch_template_takes_its_fields_from_the_command(kit: Kit) -> None:
    kit.configure(branch_template="feature/task-{spec_id}-{task_number}-{slug}")
    made = kit.create("Add login", repos=("api",), spec_id="auth", task_number="3")
    assert made.workspace.branch == "feature/task-auth-3-add-login"


def test_deleting_a_workspace_withdraws_its_pending_requests(kit: Kit) -> None:
    ws = kit.create("Add login", repos=("api",)).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    (ws.repos[0].worktree / "x.py").write_text("x = 1\n")
    flow = kit.flow()
    pending = flow.request_commit(ws, kit.caller(), "api", message="add x", scope=None)
    deletion = flow.request_delete(ws, kit.caller(), delete_branch=False)
    flow.decide(
        kit.caller(may_approve=True, principal="telegram:2", name="bob"),
        deletion.approval.id,
        nonce=deletion.approval.nonce,
        approve=True,
    )
    with pytest.raises(ApprovalRefused, match="already used"):
        flow.decide(kit.caller(), pending.approval.id, nonce=pending.approval.nonce, approve=True)
