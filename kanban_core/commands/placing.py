"""Re-placing a task (``edit --host/--label/--any-host``): who may, and what it says."""

from __future__ import annotations

from kanban_core.board.domain import TaskStatus, WorkspaceKind
from kanban_core.board.placement import Replaced
from kanban_core.commands.context import CommandContext
from kanban_core.errors import PermissionDenied

#: The role a chat or web user needs to re-place a task (as the gateway names it).
ADMIN_ROLE = "admin"


def require_admin(ctx: CommandContext) -> None:
    """A local terminal's user is the board's admin; from chat or the web, the admin role.

    The gateway checks the role before running the command; this is the kernel's own check,
    so a surface that forgets to pass the role is refused rather than trusted.
    """
    if ctx.actor.run is not None:
        raise PermissionDenied("a worker may not re-place a task; ask a human (block)")
    if ctx.from_chat and ctx.role != ADMIN_ROLE:
        raise PermissionDenied("re-placing a task needs the admin role")


def report(moved: Replaced, *, paths: bool) -> list[str]:
    """What a re-placement did, in plain lines: where it runs now, what stayed behind."""
    task, before = moved.task, moved.before
    lines = [f"Re-placed {task.ref}: {before.describe()} → {moved.after.describe()}"]
    if moved.left_behind is not None:
        path, branch = moved.left_behind
        shown = f" {path}" if paths else ""
        on_branch = f" (branch {branch})" if branch else ""
        lines.append(
            f"Its worktree{shown}{on_branch} stays on the disk of {before.describe()}: the task "
            "is detached from it, and its next run makes a new worktree where it runs"
        )
    elif task.workspace_kind is WorkspaceKind.DIR and before.host is not None:
        shown = f" {task.workspace_path}" if paths and task.workspace_path else ""
        lines.append(
            f"Its directory{shown} on {before.describe()} stays there: the next run works in "
            "the same path on its own host's disk"
        )
    if task.status is TaskStatus.BLOCKED:
        lines.append(f"It is still blocked: `unblock {task.ref}` lets its new host claim it")
    return lines
