"""How a ``ws`` command finds its workspace service, its caller and the workspace it names."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from kanban_core.commands.context import CommandContext
from kanban_core.workspaces.interactive.records import Caller, ChatPlace, Workspace

if TYPE_CHECKING:
    from kanban_core.workspaces.interactive.service import WorkspaceService


def service(ctx: CommandContext) -> WorkspaceService:
    """The workspace service for this command (config re-read, so edits apply at once)."""
    from kanban_core.workspaces.interactive.service import WorkspaceService

    # A terminal user may name a repository by path; a chat user only by configured name.
    return WorkspaceService(ctx.board(), ctx.config(), allow_paths=ctx.interactive)


def caller(ctx: CommandContext) -> Caller:
    """Who is asking, from the context only."""
    place = ChatPlace(*ctx.place) if ctx.place else ChatPlace("cli", ctx.actor.name, "")
    principal = ctx.principal or f"cli:{ctx.actor.name}"
    return Caller(principal, ctx.actor.name, place, ctx.may_approve, ctx.source_key)


def workspace(ctx: CommandContext, args: argparse.Namespace, svc: WorkspaceService) -> Workspace:
    """The workspace the command names, or this chat's."""
    return svc.resolve(getattr(args, "ws", None), caller(ctx).place)
