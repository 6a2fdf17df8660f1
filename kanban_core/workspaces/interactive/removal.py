"""Health, loss reports, recreation and removal of a workspace's worktrees (D-09, D-10, F-21)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.gitops.runner import GitOpError, repo_lock, repo_locks, run_git
from kanban_core.workspaces.interactive.checkouts import (
    RepoCheckout,
    WorktreeEntry,
    branch_tip,
    check_linked,
    checkout_ws_id,
    delete_branch_cas,
    find_entry,
    is_symlink_or_file,
    managed_reason,
    status_counts,
    unlock_if_ours,
    verify_worktree,
)
from kanban_core.workspaces.interactive.layout import (
    StrayRemovalError,
    container_path,
    owned_container,
    remove_strays,
    safe_rmdir_container,
    write_marker,
)


class RemovalError(WorkspaceError):
    """Part of a removal was refused; ``done`` lists what was removed before that."""

    def __init__(self, message: str, done: Sequence[str]) -> None:
        super().__init__(message)
        self.done = tuple(done)


@dataclass(frozen=True, slots=True)
class RepoLoss:
    """What removing one repo's worktree (and, if asked, its branch) would lose (D-09 step 2)."""

    slug: str
    uncommitted: int
    untracked: int
    unpushed: int | None  # None: no remotes, so nothing can be proven pushed
    ahead_of_base: int  # commits past the base: with no remotes, they survive only on the branch
    branch_created: bool
    dir_missing: bool

    @property
    def at_risk(self) -> bool:
        """True when removing the tree and deleting the branch would lose anything."""
        return self.loses(delete_branch=True)

    def loses(self, *, delete_branch: bool) -> bool:
        """Whether removing the tree (and the branch, if asked) loses anything.

        A kept branch keeps its commits, pushed or not: only changes in the tree are lost.
        """
        commits = self.unpushed if self.unpushed is not None else self.ahead_of_base
        return bool(self.uncommitted or self.untracked or (delete_branch and commits))


def repo_health(checkout: RepoCheckout) -> str:
    """'ok' | 'missing_dir' | 'unregistered_dir' | 'branch_mismatch' | 'branch_missing' |
    'repo_missing' (D-10 step 4); reads only."""
    common, path = checkout.common_dir, checkout.worktree
    if not common.is_dir() or run_git(common, "rev-parse", "--git-dir", check=False).returncode:
        return "repo_missing"
    tip = branch_tip(common, checkout.branch)
    if not os.path.lexists(path):
        return "missing_dir" if tip else "branch_missing"
    if is_symlink_or_file(path) or not (path / ".git").is_file() or not find_entry(common, path):
        return "unregistered_dir"
    head = run_git(path, "symbolic-ref", "--quiet", "HEAD", check=False).text.strip()
    if head != f"refs/heads/{checkout.branch}":
        return "branch_mismatch"  # someone ran `git switch` (or detached HEAD) in the tree
    return "ok" if tip else "branch_missing"


def loss_report(checkout: RepoCheckout) -> RepoLoss:
    """Counts for the delete confirmation: changes, untracked files, unpushed commits."""
    common, path = checkout.common_dir, checkout.worktree
    dir_missing = is_symlink_or_file(path) or not path.is_dir()
    uncommitted = untracked = 0
    tips = [branch_tip(common, checkout.branch)]
    if not dir_missing:
        uncommitted, untracked = status_counts(path)
        # A detached or switched HEAD may hold commits no branch keeps (F-03).
        head = run_git(path, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
        tips.append(head.text.strip())
    tips = sorted({t for t in tips if t})
    unpushed: int | None = None
    ahead = 0
    if tips:
        if run_git(common, "remote").text.split():
            unpushed = _count(common, *tips, "--not", "--remotes")
        ahead = _count(common, *tips, "--not", checkout.base_oid)
    return RepoLoss(
        checkout.slug,
        uncommitted,
        untracked,
        unpushed,
        ahead,
        checkout.branch_created,
        dir_missing,
    )


def ensure_present(checkout: RepoCheckout, *, root: Path, locks_dir: Path) -> bool:
    """Recreate a worktree deleted by hand from its branch (F-21); True when it was recreated.

    Uncommitted changes in the deleted directory are gone; the caller should say so.
    """
    ws_id = checkout_ws_id(checkout, root)
    common, path, branch = checkout.common_dir, checkout.worktree, checkout.branch
    if not common.is_dir():
        raise WorkspaceError(f"the repository {common} of {checkout.slug} is gone")
    with repo_lock(common, locks_dir):
        entry = find_entry(common, path)
        if os.path.lexists(path):
            foreign = is_symlink_or_file(path) or not (path / ".git").is_file()
            if foreign or entry is None or entry.prunable:
                raise WorkspaceError(
                    f"{path} exists but is not a registered worktree (unregistered_dir); "
                    "not touching it"
                )
            return False
        if not branch_tip(common, branch):
            # Never recreate from the base silently: that would hide lost work (F-14).
            raise WorkspaceError(f"branch {branch} is gone; cannot recreate {path}")
        if entry is not None:
            unlock_if_ours(common, entry)
            # Clears only this registration (EXP 6); never a repo-wide prune.
            run_git(common, "worktree", "remove", str(path))
        _ensure_container(path.parent, root, ws_id, checkout.slug)
        reason = managed_reason(ws_id)
        run_git(common, "worktree", "add", "--lock", "--reason", reason, str(path), branch)
        verify_worktree(path, common, branch, None)
    return True


def remove(
    ws_id: str,
    container: Path,
    checkouts: Sequence[RepoCheckout],
    *,
    root: Path,
    locks_dir: Path,
    discard: bool,
    delete_branch: bool,
    strays: Sequence[str] = (),
) -> list[str]:
    """Delete a workspace's worktrees (and, if asked, the branches we made), then its container.

    ``strays`` are the entries beside the worktrees the user was shown and approved losing.
    Every repository is tried even when one is refused, so a retry finds less to do.
    ``discard`` (the user confirmed losing changes) allows ``worktree remove --force``;
    ``delete_branch`` (the user confirmed losing unpushed commits) deletes only branches we
    created, by compare-and-delete against the tip read before removal. Nothing git refuses is
    ever deleted another way. Returns one line per path or branch removed or kept.
    """
    real_root = Path(os.path.realpath(root))
    if Path(os.path.realpath(container)) != container_path(real_root, ws_id):
        raise WorkspaceError(f"{container} is not {real_root}/{ws_id}; left alone")
    for checkout in checkouts:
        if checkout_ws_id(checkout, root) != ws_id:
            raise WorkspaceError(f"{checkout.worktree} does not belong to {ws_id}; left alone")
    reused = [f"{c.slug} ({c.branch})" for c in checkouts if not c.branch_created]
    if delete_branch and reused:
        raise WorkspaceError(
            f"refusing to delete branches kanban did not create: {', '.join(reused)}"
        )
    if os.path.lexists(container):
        owned_container(container, root, ws_id)  # a real dir carrying this workspace's marker
    done: list[str] = []
    refused: list[str] = []
    commons = [c.common_dir for c in checkouts if c.common_dir.is_dir()]
    with repo_locks(commons, locks_dir):
        for checkout in checkouts:
            try:
                done += _remove_one(checkout, discard=discard, delete_branch=delete_branch)
            except WorkspaceError as exc:
                refused.append(f"{checkout.slug}: {' '.join(str(exc).split())}")
    if refused:
        raise RemovalError("; ".join(refused), done)
    if os.path.lexists(container):
        try:
            gone = remove_strays(container, root, ws_id, strays)
            done += [f"removed {container}/{name}" for name in gone]
            safe_rmdir_container(container, root, ws_id)
        except StrayRemovalError as exc:
            done += [f"removed {container}/{name}" for name in exc.gone]
            raise RemovalError(str(exc), done) from None
        except WorkspaceError as exc:
            raise RemovalError(str(exc), done) from None
        done.append(f"removed {container}")
    return done


def remove_clean_worktree(checkout: RepoCheckout, *, locks_dir: Path) -> str | None:
    """The archive retention sweep (D-09): remove one worktree only if it is clean.

    No ``--force``: git's own dirty check runs again at removal time. The branch, its commits
    and the container stay, so unarchiving recreates the tree from the branch. Returns what
    happened, or None when there was nothing to do.
    """
    path, common = checkout.worktree, checkout.common_dir
    if not path.is_dir() or path.is_symlink() or not common.is_dir():
        return None
    loss = loss_report(checkout)
    if loss.uncommitted or loss.untracked:
        return (
            f"{checkout.slug}: kept {path} ({loss.uncommitted} uncommitted, "
            f"{loss.untracked} untracked file(s) — never removed while dirty)"
        )
    with repo_lock(common, locks_dir):
        entry = find_entry(common, path)
        if entry is None or not (path / ".git").is_file():
            return f"{checkout.slug}: kept {path} (not a registered worktree)"
        check_linked(path, common)
        try:
            _git_remove(common, entry, force=False)
        except WorkspaceError as exc:
            return f"{checkout.slug}: kept {path} ({exc})"
    return f"{checkout.slug}: removed the clean worktree {path} (branch {checkout.branch} kept)"


def _remove_one(checkout: RepoCheckout, *, discard: bool, delete_branch: bool) -> list[str]:
    common, path, branch = checkout.common_dir, checkout.worktree, checkout.branch
    if not common.is_dir():
        raise WorkspaceError(f"its repository {common} is gone; {path} left in place")
    # The tip is read before removal: the delete is a compare-and-delete against it.
    tip = branch_tip(common, branch) if delete_branch else ""
    entry = find_entry(common, path)
    lines: list[str] = []
    if os.path.lexists(path):
        if is_symlink_or_file(path):
            raise WorkspaceError(f"{path} is not a real directory; left alone")
        if entry is None or not (path / ".git").is_file():
            raise WorkspaceError(f"{path} is not a registered worktree of {common}; left alone")
        check_linked(path, common)  # its branch may have been switched; it is still ours
        _git_remove(common, entry, force=discard)
        lines.append(f"removed worktree {path}")
    elif entry is not None:
        unlock_if_ours(common, entry)
        run_git(common, "worktree", "remove", str(path))  # that single registration (EXP 6)
        lines.append(f"cleared the registration of the missing worktree {path}")
    if not delete_branch:
        lines.append(f"kept branch {branch} in {checkout.slug}")
    elif tip:
        lines.append(f"{checkout.slug}: {delete_branch_cas(common, branch, tip, besides=path)}")
    else:
        lines.append(f"{checkout.slug}: branch {branch} was already gone")
    return lines


def _git_remove(common: Path, entry: WorktreeEntry, *, force: bool) -> None:
    """``git worktree remove`` (its own dirty check closes the race with a late writer)."""
    unlock_if_ours(common, entry)
    try:
        run_git(common, "worktree", "remove", *(("--force",) if force else ()), str(entry.path))
    except GitOpError as exc:
        if entry.locked is not None:  # put our protection back on the tree we are leaving
            run_git(common, "worktree", "lock", "--reason", entry.locked, str(entry.path))
        raise WorkspaceError(f"git refused to remove {entry.path}: {exc}") from None


def _ensure_container(container: Path, root: Path, ws_id: str, slug: str) -> None:
    if os.path.lexists(container):
        owned_container(container, root, ws_id)
        return
    Path(os.path.realpath(root)).mkdir(parents=True, exist_ok=True, mode=0o700)
    container.mkdir(mode=0o700)
    write_marker(container, ws_id, [slug])


def _count(common: Path, *args: str) -> int:
    return int(run_git(common, "rev-list", "--count", *args).text.strip() or 0)
