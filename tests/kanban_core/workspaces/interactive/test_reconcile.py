"""workspaces.interactive.reconcile: recovery at start and the housekeeping of every tick."""

from __future__ import annotations

from typing import Any

import pytest

from kanban_core.workspaces.interactive import (
    reconcile,
    service as service_module,
    store,
    worktree_set,
)
from kanban_core.workspaces.interactive.layout import new_id, write_marker
from tests.gitrepos import branches, git
from tests.kanban_core.workspaces.interactive.conftest import Kit


class _Crash(BaseException):
    """The process dying between creating the worktrees and marking the workspace ready."""


def test_a_creation_interrupted_by_a_crash_is_rolled_back_at_start(kit: Kit, monkeypatch):
    real_create = worktree_set.create

    def create_then_die(*args: Any, **kwargs: Any) -> Any:
        real_create(*args, **kwargs)
        raise _Crash

    monkeypatch.setattr(service_module, "create", create_then_die)
    with pytest.raises(_Crash):
        kit.create("Add login")
    with kit.board.db.transaction(write=False) as tx:
        (ws_id,) = store.initializing(tx)
        ws = store.get(tx, ws_id)
    assert ws is not None
    assert all(r.worktree.is_dir() for r in ws.repos)

    report = reconcile.on_start(kit.board, kit.config.workspaces)

    assert report.rolled_back == [ws_id]
    assert not ws.container.exists()
    assert all(f"refs/heads/{ws.branch}" not in branches(src) for src in (kit.api, kit.web))
    assert kit.count("workspaces") == 0
    assert kit.board.get(ws.task_id).status.value == "archived"
    assert ("create", "failed") in kit.audit_ops(ws_id)


def test_another_hosts_creation_in_progress_is_left_to_that_host(kit: Kit, operator, monkeypatch):
    build_1, build_2 = (
        kit.board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)
        for name in ("build-1", "build-2")
    )
    kit.board.host = build_2

    def still_creating(*args: Any, **kwargs: Any) -> Any:
        raise _Crash  # build-2 is mid-creation, as far as any other host can tell

    monkeypatch.setattr(service_module, "create", still_creating)
    with pytest.raises(_Crash):
        kit.create("Add login")
    kit.board.host = build_1  # build-1's gateway starts meanwhile

    report = reconcile.on_start(kit.board, kit.config.workspaces)

    assert report.rolled_back == []
    assert kit.count("workspaces") == 1


def test_start_quarantines_unknown_marked_directories_and_leaves_the_rest(kit: Kit):
    made = kit.create("Add login").workspace
    stray = kit.root / new_id("ws")
    stray.mkdir(parents=True)
    write_marker(stray, stray.name, ["api"])
    unmarked = kit.root / "notes"
    unmarked.mkdir()
    (unmarked / "keep.txt").write_text("mine")

    report = reconcile.on_start(kit.board, kit.config.workspaces)

    assert report.quarantined == [stray.name]
    assert not stray.exists()
    assert any(p.name.endswith(stray.name) for p in (kit.root / ".quarantine").iterdir())
    assert (unmarked / "keep.txt").read_text() == "mine"
    assert made.container.is_dir()


def test_expired_requests_are_closed_and_audited_by_housekeeping(kit: Kit):
    kit.configure(approval_ttl_seconds=0)
    ws = kit.create("Add login", repos=("api",)).workspace
    kit.run_turn(ws)
    card = kit.flow().request_delete(kit.get(ws), kit.caller(), delete_branch=False)

    _settled, expired = reconcile.housekeeping(kit.board)

    assert expired == [card.approval.id]
    assert ("delete", "expired") in kit.audit_ops(ws.id)
    assert ws.container.is_dir()  # nothing was deleted


def test_the_retention_sweep_removes_only_clean_worktrees_and_unarchive_brings_them_back(kit: Kit):
    ws = kit.create("Add login").workspace
    kit.run_turn(ws)
    api, web = kit.get(ws).repos
    (web.worktree / "draft.txt").write_text("unsaved")
    kit.svc.archive(kit.get(ws), kit.caller())

    lines = reconcile.sweep_archived(kit.board, after_s=0)

    assert not api.worktree.exists()
    assert f"refs/heads/{api.branch}" in branches(kit.api)
    assert (web.worktree / "draft.txt").read_text() == "unsaved"
    assert any("kept" in line and "web" in line for line in lines)
    notes = kit.svc.unarchive(kit.get(ws), kit.caller())
    assert api.worktree.is_dir()
    assert git(api.worktree, "rev-parse", "--abbrev-ref", "HEAD") == api.branch
    assert any("api" in note for note in notes)


def test_housekeeping_settles_a_turn_whose_supervisor_died(kit: Kit):
    ws = kit.create("Add login", repos=("api",)).workspace
    claim, context = kit.begin(ws)
    kit.crash(claim)

    settled, _ = reconcile.housekeeping(kit.board)

    assert settled == 1
    assert kit.turn(context.turn.id).status.value == "failed"
    assert reconcile.housekeeping(kit.board)[0] == 0  # once only
