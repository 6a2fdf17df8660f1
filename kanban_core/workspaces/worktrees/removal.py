"""Removing a task's worktree only with proof it is ours and that no work would be lost."""

from __future__ import annotations

from contextlib import suppress
from pathlib import Path

import git

from kanban_core.board.domain import TaskId
from kanban_core.workspaces.base import Removal, WorkspaceError
from kanban_core.workspaces.worktrees.marker import OwnedWorktree, read_owned
from kanban_core.workspaces.worktrees.names import repo_dir_name, task_ref
from kanban_core.workspaces.worktrees.repos import (
    count_changes,
    git_error,
    open_repo,
    plural,
    resolve_commit,
)


def remove_owned(path: Path, root: Path, task_id: TaskId) -> Removal:
    """Remove the worktree at ``path``; raise WorkspaceError (or git's error) saying why not."""
    ref = task_ref(task_id)
    if path.is_symlink() or not path.is_dir():
        raise WorkspaceError(f"{path} is not a real directory; left alone")
    real_root, real = root.resolve(), path.resolve()
    if real == real_root or not real.is_relative_to(real_root):
        raise WorkspaceError(f"{path} is outside the managed root {real_root}; left alone")
    try:
        owned = read_owned(real, ref)
    except WorkspaceError as exc:
        raise WorkspaceError(f"{path} {exc}; left alone") from None
    if real.name != ref or real.parent != real_root / repo_dir_name(owned.common):
        raise WorkspaceError(f"{path} is not where {ref}'s worktree belongs; left alone")
    with open_repo(real) as wt:
        oid = _check_removable(wt, owned)
    with open_repo(owned.common) as main:
        # No --force: git re-checks for changes at removal time, closing the race with a worker.
        main.git.worktree("remove", str(real))
        note = _drop_branch(main, owned, oid)
    with suppress(OSError):
        real.parent.rmdir()  # the per-repo directory, only once it is empty
    return Removal(task_id, path, removed=True, reason=f"removed{note}")


def _check_removable(wt: git.Repo, owned: OwnedWorktree) -> str:
    """Return the branch tip if removing loses nothing; else raise why not."""
    try:
        head = str(wt.git.symbolic_ref("--quiet", "HEAD"))
    except git.GitCommandError:
        raise WorkspaceError("its HEAD is detached; commits may be unreachable") from None
    if head != f"refs/heads/{owned.branch}":
        raise WorkspaceError(f"it is on {head.removeprefix('refs/heads/')}, not {owned.branch}")
    changes = count_changes(wt.git.status("--porcelain", "-z", "--untracked-files=all"))
    if changes:
        raise WorkspaceError(plural(changes, "uncommitted change"))
    oid = resolve_commit(wt, head)
    if not oid:
        raise WorkspaceError(f"its branch {owned.branch} has no commit")
    safe = ["--remotes"]
    if owned.base and resolve_commit(wt, owned.base):
        safe.append(owned.base)
    unpushed = int(str(wt.git.rev_list("--count", oid, "--not", *safe)))
    if unpushed:
        merged_into = f" nor merged into {owned.base}" if owned.base else ""
        raise WorkspaceError(
            f"{plural(unpushed, 'unpushed commit')} on {owned.branch} "
            f"(not on any remote{merged_into})"
        )
    return oid


def _drop_branch(main: git.Repo, owned: OwnedWorktree, oid: str) -> str:
    if not owned.branch_created:
        return f"; branch {owned.branch} kept (kanban did not create it)"
    try:
        main.git.update_ref("-d", f"refs/heads/{owned.branch}", oid)  # compare-and-delete
    except git.GitCommandError as exc:
        return f"; branch {owned.branch} kept ({git_error(exc)})"
    return f"; branch {owned.branch} deleted (its commits are pushed or merged)"
