"""``gc`` for places to work: the board's own collection, then the workspaces of archived tasks."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from kanban_core.board.domain import Actor, GcReport, Task, TaskStatus, WorkspaceKind
from kanban_core.board.kanban import Kanban
from kanban_core.board.reads import TaskFilter
from kanban_core.workspaces import places
from kanban_core.workspaces.base import Removal


def gc(
    board: Kanban, actor: Actor, *, event_retention_days: int, log_retention_days: int
) -> GcReport:
    """Collect the board's old rows and logs, then remove what archived tasks left behind."""
    report = board.gc(
        actor, event_retention_days=event_retention_days, log_retention_days=log_retention_days
    )
    archived = board.list(TaskFilter(status=TaskStatus.ARCHIVED))
    here = None if board.host is None else board.host.name
    removals = collect_workspaces(archived, board.settings.home, host=here)
    return replace(
        report,
        workspaces=sum(1 for r in removals if r.removed),
        notes=report.notes
        + tuple(
            f"kept t{r.task_id} workspace {r.path}: {r.reason}" for r in removals if not r.removed
        ),
    )


def collect_workspaces(
    archived: list[Task], home: Path, *, host: str | None = None
) -> list[Removal]:
    """Remove the managed workspaces of archived tasks that are provably ours and hold no work.

    Scratch directories go when their marker names the task; worktrees only when clean, pushed
    or merged, made by us, and on this machine: a task bound to another host than ``host``
    (this machine's enrollment; None: the implicit host) has its worktree on that host's disk,
    and whatever lies at that path here is not it. ``dir:`` workspaces are the user's and are
    never touched.
    """
    removals = []
    for task in archived:
        if task.workspace_kind is WorkspaceKind.WORKTREE and task.host not in (None, host):
            if task.workspace_path:
                removals.append(
                    Removal(
                        task.id,
                        Path(task.workspace_path),
                        removed=False,
                        reason=f"on host {task.host}'s disk (gc there removes it)",
                    )
                )
            continue
        if task.workspace_kind is WorkspaceKind.SCRATCH:
            removal = places.remove_scratch(task.id, home)
        elif task.workspace_kind is WorkspaceKind.WORKTREE and task.workspace_path:
            # GitPython is imported only when a worktree is to be removed.
            from kanban_core.workspaces.worktrees import remove_worktree

            removal = remove_worktree(
                Path(task.workspace_path), root=places.worktree_root(home), task_id=task.id
            )
        else:
            continue
        if removal.path is not None:
            removals.append(removal)
    return removals
