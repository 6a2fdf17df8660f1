"""What the ``ws`` command modules share: the service, the caller, the workspace named, its JSON."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kanban_core.commands.context import CommandContext
from kanban_core.workspaces.interactive.records import Caller, ChatPlace, Workspace

if TYPE_CHECKING:
    from kanban_core.workspaces.interactive.service import WorkspaceService


def service(ctx: CommandContext) -> WorkspaceService:
    """The workspace service for this command (config re-read, so edits apply at once)."""
    from kanban_core.workspaces.interactive.service import WorkspaceService

    # A terminal user may name a repository by path; a chat user only by configured name.
    return WorkspaceService(
        ctx.board(), ctx.config(), allow_paths=ctx.interactive and not ctx.from_chat
    )


def caller(ctx: CommandContext) -> Caller:
    """Who is asking, from the context only."""
    place = ChatPlace(*ctx.place) if ctx.place else ChatPlace("cli", ctx.actor.name, "")
    principal = ctx.principal or f"cli:{ctx.actor.name}"
    return Caller(principal, ctx.actor.name, place, ctx.may_approve, ctx.source_key)


def workspace(ctx: CommandContext, args: argparse.Namespace, svc: WorkspaceService) -> Workspace:
    """The workspace the command names, or this chat's."""
    return svc.resolve(getattr(args, "ws", None), caller(ctx).place)


def host_of(ctx: CommandContext, ws: Workspace) -> str | None:
    """The name of the enrolled host holding the workspace's files; None: the implicit host."""
    from kanban_core.board.exec_requests import workspace_host

    with ctx.board().db.transaction(write=False) as tx:
        host = workspace_host(tx, ws.task_id)
    return None if host is None else host.name


def ws_json(ws: Workspace, host: str | None) -> dict[str, Any]:
    """A workspace in ``--json`` (worktree paths are hidden from chat where results leave)."""
    return {
        "id": ws.id,
        "host": host,
        "name": ws.name,
        "status": ws.shown_status,
        "task": f"t{ws.task_id}",
        "branch": ws.branch,
        "pinned": ws.pinned,
        "archived": ws.archived,
        "active_repo": ws.active_repo,
        "executor": ws.executor,
        "repos": [
            {
                "slug": r.slug,
                "worktree": str(r.worktree),
                "branch": r.branch,
                "base": r.base_ref,
                "pr": r.pr_url,
            }
            for r in ws.repos
        ],
    }


def ago(ms: int) -> str:
    """How long ago an epoch-milliseconds time was, for tables."""
    import time

    seconds = max(0, int(time.time() - ms / 1000))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"
