"""Git worktrees for tasks (GitPython): create on a new branch with rollback; remove only ours."""

from __future__ import annotations

from pathlib import Path

import git

from kanban_core.board.domain import Task, TaskId
from kanban_core.workspaces.base import Removal, WorkspaceError
from kanban_core.workspaces.worktrees.creation import create_or_reuse
from kanban_core.workspaces.worktrees.names import task_ref
from kanban_core.workspaces.worktrees.removal import remove_owned
from kanban_core.workspaces.worktrees.repos import git_error, refuse_foreign_env

__all__ = ["ensure_worktree", "remove_worktree"]


def ensure_worktree(
    repo: Path, *, task: Task, root: Path, allow_dirty_base: bool
) -> tuple[Path, str, bool]:
    """Return (path, branch, created) of the task's worktree, creating it if needed."""
    refuse_foreign_env()
    ref = task_ref(task.id)
    try:
        return create_or_reuse(repo, task, ref, root, allow_dirty_base)
    except git.GitCommandError as exc:
        raise WorkspaceError(f"git failed in {repo}: {git_error(exc)}") from None


def remove_worktree(path: Path, *, root: Path, task_id: TaskId) -> Removal:
    """Remove the task's worktree only with proof it is ours and that no work would be lost."""
    if not path.exists() and not path.is_symlink():
        return Removal(task_id, None, removed=False, reason="no workspace")
    try:
        refuse_foreign_env()
        return remove_owned(path, root, task_id)
    except WorkspaceError as exc:
        return Removal(task_id, path, removed=False, reason=str(exc))
    except git.GitCommandError as exc:
        return Removal(task_id, path, removed=False, reason=f"git refused: {git_error(exc)}")
