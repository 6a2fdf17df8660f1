"""Where a worker runs: scratch directories, existing directories, and git worktrees.

Everything we create lives under a managed root inside ``$KANBAN_HOME`` and carries a provenance
marker naming its task; nothing outside a managed root is ever deleted, and nothing is deleted
without the marker proving it is ours. ``dir:`` workspaces belong to the user: never created,
never cleaned.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kanban_core.board.domain import Task, TaskId, WorkspaceKind
from kanban_core.profiles import AssigneeProfile
from kanban_core.workspaces.base import Removal, WorkspaceError

MARKER = ".kanban-workspace.json"


@dataclass(frozen=True, slots=True)
class PreparedWorkspace:
    """A workspace ready for a worker."""

    kind: WorkspaceKind
    path: Path
    branch: str | None = None
    created: bool = False


def scratch_root(home: Path) -> Path:
    """The managed root of scratch workspaces."""
    return home / "workspaces"


def worktree_root(home: Path) -> Path:
    """The managed root of git worktrees."""
    return home / "worktrees"


def prepare(task: Task, profile: AssigneeProfile, home: Path) -> PreparedWorkspace:
    """Resolve (and create, for managed kinds) the task's workspace."""
    kind = task.workspace_kind
    if kind is WorkspaceKind.SCRATCH and profile.workspace is not None:
        kind = profile.workspace.kind  # the profile's default applies to default tasks
    if kind is WorkspaceKind.DIR:
        raw = task.workspace_path or (profile.workspace.path if profile.workspace else None)
        return _existing_dir(raw)
    if kind is WorkspaceKind.WORKTREE:
        # GitPython is imported only for worktree tasks.
        from kanban_core.workspaces.worktrees import ensure_worktree

        repo = task.repo or profile.repo
        if not repo:
            raise WorkspaceError(
                f"{task.ref} wants a worktree but names no repository "
                f"(create it with --repo, or set assignees.{profile.name}.repo)"
            )
        path, branch, created = ensure_worktree(
            Path(repo),
            task=task,
            root=worktree_root(home),
            allow_dirty_base=profile.allow_dirty_base,
        )
        return PreparedWorkspace(WorkspaceKind.WORKTREE, path, branch, created)
    return _scratch(task, home)


def _scratch(task: Task, home: Path) -> PreparedWorkspace:
    root = scratch_root(home)
    path = root / f"t{task.id}"
    if path.is_symlink():
        raise WorkspaceError(f"refusing a symlinked scratch workspace at {path}")
    if path.is_dir():
        _check_marker(path, task.id)
        return PreparedWorkspace(WorkspaceKind.SCRATCH, path)
    root.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    write_marker(path, task.id, WorkspaceKind.SCRATCH)
    return PreparedWorkspace(WorkspaceKind.SCRATCH, path, created=True)


def _existing_dir(raw: str | None) -> PreparedWorkspace:
    if not raw:
        raise WorkspaceError("workspace dir: needs an absolute path")
    path = Path(raw)
    if not path.is_absolute():
        # Resolving a relative path against the dispatcher's cwd would be a confused deputy.
        raise WorkspaceError(f"workspace dir: path must be absolute, got {raw!r}")
    if not path.is_dir():
        raise WorkspaceError(f"workspace dir: {raw} does not exist or is not a directory")
    return PreparedWorkspace(WorkspaceKind.DIR, path)


def write_marker(path: Path, task_id: TaskId, kind: WorkspaceKind) -> None:
    """Record that we made this directory, for whom, and when."""
    marker = {
        "task": f"t{task_id}",
        "kind": kind.value,
        "created": int(time.time()),
        "pid": os.getpid(),
    }
    (path / MARKER).write_text(json.dumps(marker), encoding="utf-8")


def _check_marker(path: Path, task_id: TaskId) -> None:
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkspaceError(f"{path} exists but carries no kanban marker; not using it") from None
    if marker.get("task") != f"t{task_id}":
        raise WorkspaceError(f"{path} belongs to {marker.get('task')}, not t{task_id}")


def remove_scratch(task_id: TaskId, home: Path) -> Removal:
    """Delete a scratch workspace only when the marker proves it is this task's and ours."""
    root = scratch_root(home)
    path = root / f"t{task_id}"
    if not path.exists() and not path.is_symlink():
        return Removal(task_id, None, removed=False, reason="no workspace")
    if path.is_symlink() or not path.is_dir():
        return Removal(task_id, path, removed=False, reason="not a real directory; left alone")
    real_root = root.resolve()
    real = path.resolve()
    if real == real_root or not real.is_relative_to(real_root):
        return Removal(task_id, path, removed=False, reason="outside the managed root; left alone")
    try:
        _check_marker(path, task_id)
    except WorkspaceError as exc:
        return Removal(task_id, path, removed=False, reason=str(exc))
    shutil.rmtree(path)
    return Removal(task_id, path, removed=True, reason="removed")
