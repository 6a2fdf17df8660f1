"""Confirmations and approvals: nothing happens in git until decided, once, by the right person."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_core import Kanban
from kanban_core.workspaces.interactive import approvals
from kanban_core.workspaces.interactive.approvals import ApprovalRefused
from kanban_core.workspaces.interactive.records import ApprovalKind, ApprovalStatus, Workspace
from tests.gitrepos import git, remote_heads
from tests.kanban_core.workspaces.interactive.conftest import Kit, make_kit, reopen


def _dirty(kit: Kit, repos: tuple[str, ...] = ("api",)) -> Workspace:
    ws = kit.create(repos=repos).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    for repo in ws.repos:  # the fake agent's edits
        (repo.worktree / "login.py").write_text("def login():\n    return True\n")
    return ws


def _status(kit: Kit, approval_id: str) -> ApprovalStatus:
    with kit.board.db.transaction(write=False) as tx:
        found = approvals.get(tx, approval_id)
    assert found is not None
    return found.status


def test_requests_change_nothing_in_git_until_decided(kit: Kit) -> None:
    ws = _dirty(kit)
    wt = ws.repos[0].worktree
    git(wt, "add", "login.py")
    git(wt, "commit", "-q", "-m", "wip")  # an unpushed commit
    (wt / "more.py").write_text("x = 2\n")
    head = git(wt, "rev-parse", "HEAD")
    remote = remote_heads(kit.api_remote)
    status = git(wt, "status", "--porcelain")
    flow = kit.flow()
    alice = kit.caller()

    cards = [
        flow.request_commit(ws, alice, None, message="Add login", scope=None),
        flow.request_push(ws, alice, None, force_with_lease=False),
        flow.request_delete(ws, alice, delete_branch=False),
    ]

    assert [c.approval.op for c in cards] == ["commit", "push", "delete"]
    assert [c.approval.kind for c in cards] == [
        ApprovalKind.CONFIRM,
        ApprovalKind.CONFIRM,
        ApprovalKind.APPROVAL,  # dirty, unpushed: work would be lost
    ]
    assert all(c.approval.status is ApprovalStatus.PENDING for c in cards)
    assert git(wt, "rev-parse", "HEAD") == head
    assert git(wt, "status", "--porcelain") == status
    assert remote_heads(kit.api_remote) == remote
    assert wt.is_dir()
    with kit.board.db.transaction(write=False) as tx:
        assert {a.id for a in approvals.pending(tx, ws.id)} == {c.approval.id for c in cards}
    assert kit.audit_ops(ws.id)[-3:] == [
        ("commit", "requested"),
        ("push", "requested"),
        ("delete", "requested"),
    ]


def test_only_the_requester_confirms(kit: Kit) -> None:
    ws = _dirty(kit)
    head = git(ws.repos[0].worktree, "rev-parse", "HEAD")
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), None, message="Add login", scope=None)
    bob = kit.caller("telegram:2", "bob", may_approve=True)

    with pytest.raises(ApprovalRefused, match="only the person who asked"):
        flow.decide(bob, card.approval.id, nonce=card.approval.nonce, approve=True)
    assert git(ws.repos[0].worktree, "rev-parse", "HEAD") == head
    assert _status(kit, card.approval.id) is ApprovalStatus.PENDING

    lines = flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)

    assert lines[0].startswith("committed ")
    assert git(ws.repos[0].worktree, "rev-parse", "HEAD") != head
    assert _status(kit, card.approval.id) is ApprovalStatus.APPROVED
    with pytest.raises(ApprovalRefused, match="already used"):
        flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)
    ops = kit.audit_ops(ws.id)
    assert ("commit", "requested") in ops
    assert ("commit", "approved") in ops
    assert ("commit", "ok") in ops  # executed
    assert ("decide", "refused") in ops


def test_someone_who_may_approve_can_cancel_a_confirmation(kit: Kit) -> None:
    ws = _dirty(kit)
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), None, message="Add login", scope=None)
    mallory = kit.caller("telegram:3", "mallory", may_approve=False)
    with pytest.raises(ApprovalRefused):
        flow.decide(mallory, card.approval.id, nonce=card.approval.nonce, approve=False)
    bob = kit.caller("telegram:2", "bob", may_approve=True)
    assert flow.decide(bob, card.approval.id, nonce=card.approval.nonce, approve=False) == [
        f"commit cancelled ({card.approval.id})"
    ]
    assert _status(kit, card.approval.id) is ApprovalStatus.DENIED
    assert ("commit", "denied") in kit.audit_ops(ws.id)
    assert "login.py" in git(ws.repos[0].worktree, "status", "--porcelain")


def test_an_approval_needs_an_approver_and_four_eyes_needs_another(kit: Kit) -> None:
    kit.configure(four_eyes=True)
    ws = _dirty(kit)
    flow = kit.flow()
    boss = kit.caller("telegram:9", "boss", may_approve=True)
    card = flow.request_delete(ws, boss, delete_branch=False)
    assert card.approval.kind is ApprovalKind.APPROVAL
    alice = kit.caller()

    with pytest.raises(ApprovalRefused, match="approver role"):
        flow.decide(alice, card.approval.id, nonce=card.approval.nonce, approve=True)
    with pytest.raises(ApprovalRefused, match="four-eyes"):
        flow.decide(boss, card.approval.id, nonce=card.approval.nonce, approve=True)
    assert ws.repos[0].worktree.is_dir()
    assert _status(kit, card.approval.id) is ApprovalStatus.PENDING

    bob = kit.caller("telegram:2", "bob", may_approve=True)
    flow.decide(bob, card.approval.id, nonce=card.approval.nonce, approve=True)

    assert not ws.repos[0].worktree.exists()
    assert kit.count("workspaces") == 0
    ops = kit.audit_ops(ws.id)
    assert ("delete", "approved") in ops
    assert ("delete", "ok") in ops


def test_a_wrong_nonce_is_refused(kit: Kit) -> None:
    ws = _dirty(kit)
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), None, message="Add login", scope=None)
    with pytest.raises(ApprovalRefused, match="does not belong"):
        flow.decide(kit.caller(), card.approval.id, nonce="0" * 16, approve=True)
    with pytest.raises(ApprovalRefused, match="no such request"):
        flow.decide(kit.caller(), "ap-0000000000-000000", nonce=None, approve=True)
    assert _status(kit, card.approval.id) is ApprovalStatus.PENDING
    assert "login.py" in git(ws.repos[0].worktree, "status", "--porcelain")


def test_an_expired_request_is_refused_and_marked(kit: Kit) -> None:
    kit.configure(approval_ttl_seconds=0)
    ws = _dirty(kit)
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), None, message="Add login", scope=None)

    with pytest.raises(ApprovalRefused, match="expired"):
        flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)

    assert _status(kit, card.approval.id) is ApprovalStatus.EXPIRED
    assert "login.py" in git(ws.repos[0].worktree, "status", "--porcelain")
    with kit.board.db.transaction(write=False) as tx:
        assert approvals.pending(tx, ws.id) == []
    with pytest.raises(ApprovalRefused, match="already used"):
        flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)
    assert ("decide", "refused") in kit.audit_ops(ws.id)


def test_expire_due_marks_old_requests(kit: Kit) -> None:
    kit.configure(approval_ttl_seconds=0)
    ws = _dirty(kit)
    card = kit.flow().request_commit(ws, kit.caller(), None, message="Add login", scope=None)
    with kit.board.db.transaction(write=True) as tx:
        expired = approvals.expire_due(tx)
    assert card.approval.id in {a.id for a in expired}
    assert _status(kit, card.approval.id) is ApprovalStatus.EXPIRED


def test_a_decision_works_after_a_restart(durable_board: Kanban, tmp_path: Path) -> None:
    kit = make_kit(durable_board, tmp_path)
    ws = _dirty(kit)
    remote = remote_heads(kit.api_remote)
    card = kit.flow().request_commit(ws, kit.caller(), None, message="Add login", scope=None)

    kit.board = reopen(durable_board)
    try:
        lines = kit.flow().decide(
            kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True
        )
        assert lines[0].startswith("committed ")
        assert git(ws.repos[0].worktree, "status", "--porcelain") == ""
        assert remote_heads(kit.api_remote) == remote  # a commit is local
    finally:
        kit.board.close()


def test_the_requester_may_withdraw_a_request_only_an_approver_could_grant(kit: Kit) -> None:
    ws = kit.create("Add login", repos=("api",)).workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    (ws.repos[0].worktree / "draft.txt").write_text("unsaved\n")
    flow = kit.flow()
    card = flow.request_delete(ws, kit.caller(), delete_branch=False)
    assert card.approval.kind is ApprovalKind.APPROVAL
    with pytest.raises(ApprovalRefused, match="approver role"):
        flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=True)

    lines = flow.decide(kit.caller(), card.approval.id, nonce=card.approval.nonce, approve=False)

    assert "cancelled" in lines[0]
    assert (ws.repos[0].worktree / "draft.txt").exists()
