"""Bring a workspace's worktrees back before a turn: a directory deleted by hand is re-added."""

from __future__ import annotations

from kanban_core.board.kanban import Kanban
from kanban_core.workspaces.interactive.records import Workspace, WorkspaceRepo
from kanban_core.workspaces.interactive.worktree_set import RepoCheckout, ensure_present


def checkout_of(repo: WorkspaceRepo) -> RepoCheckout:
    """The worktree-set view of a stored repo row."""
    return RepoCheckout(
        slug=repo.slug,
        source=repo.source,
        common_dir=repo.common_dir,
        worktree=repo.worktree,
        branch=repo.branch,
        base_ref=repo.base_ref,
        base_oid=repo.base_oid,
        branch_created=repo.branch_created,
        enabled=repo.enabled,
    )


def ensure_worktrees(board: Kanban, ws: Workspace) -> list[str]:
    """Recreate missing worktrees from their branches; returns what to tell the person."""
    locks = board.settings.home / "locks"
    return [
        f"{ws.id}: the worktree of {repo.slug} was missing; it was recreated from branch "
        f"{repo.branch}. Uncommitted changes in the deleted directory could not be recovered."
        for repo in ws.repos
        if ensure_present(checkout_of(repo), root=ws.container.parent, locks_dir=locks)
    ]
