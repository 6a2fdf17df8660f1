"""A task worktree's provenance marker: written when kanban creates it, read as proof it is ours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import git

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.worktrees.repos import open_repo

#: The provenance marker, kept in the worktree's private git dir so `git status` stays clean.
MARKER = "kanban-workspace.json"


class OwnedWorktree(NamedTuple):
    """What a task's worktree and its marker say about it."""

    common: Path
    branch: str
    branch_created: bool
    base: str | None


def write_marker(git_dir: Path, marker: dict[str, object]) -> None:
    """Write ``marker`` into the worktree's private git dir, atomically."""
    tmp = git_dir / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
    tmp.replace(git_dir / MARKER)  # a reader never sees half a marker


def read_owned(path: Path, task_ref: str) -> OwnedWorktree:
    """Proof that path is a linked worktree whose marker names this task (D-03 rule 2)."""
    dotgit = path / ".git"
    if dotgit.is_symlink() or not dotgit.is_file():
        raise WorkspaceError("is not a linked git worktree (its .git is not a file)")
    try:
        with open_repo(path) as wt:
            git_dir = Path(str(wt.git.rev_parse("--absolute-git-dir"))).resolve()
            common = Path(wt.common_dir).resolve()
            top = wt.working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, OSError):
        raise WorkspaceError("has a .git file that points into no repository") from None
    if top is None or Path(top).resolve() != path.resolve():
        raise WorkspaceError("is not the top of a linked worktree")
    if git_dir.parent != common / "worktrees":
        raise WorkspaceError("is not a linked worktree of a repository")
    try:
        marker = json.loads((git_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkspaceError("carries no kanban marker") from None
    if not isinstance(marker, dict) or marker.get("kind") != "worktree":
        raise WorkspaceError("carries a marker that is not a kanban worktree's")
    if marker.get("task") != task_ref:
        raise WorkspaceError(f"belongs to {marker.get('task')}, not {task_ref}")
    branch, base = marker.get("branch"), marker.get("base")
    if not isinstance(branch, str) or not branch:
        raise WorkspaceError("carries a marker without a branch")
    created = marker.get("branch_created") is True
    return OwnedWorktree(common, branch, created, base if isinstance(base, str) else None)
