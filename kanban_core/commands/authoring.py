"""Verbs that write cards: create, edit, assign, comment, link, unlink."""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.board.domain import format_task_id
from kanban_core.board.kanban import OnMissing
from kanban_core.commands import argtypes, chat_paths, placing
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, Text, text
from kanban_core.errors import UsageError


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser("create", help="create a task", description="Create a task.")
    p.add_argument("title", help="one-line title (quote it)")
    p.add_argument("--body", help="the opening post: spec, context, acceptance criteria")
    p.add_argument("--assignee", help="who works on it: a worker profile or a person")
    p.add_argument(
        "--parent",
        action="append",
        default=[],
        metavar="ID",
        type=argtypes.task_id,
        help="a task this one waits for (repeatable)",
    )
    p.add_argument(
        "--workspace",
        metavar="KIND",
        type=argtypes.workspace,
        help="scratch (default), worktree, dir:<name> (workspaces.dirs) or dir:<absolute path> "
        "(not from chat)",
    )
    p.add_argument(
        "--repo",
        metavar="REPO",
        help="with --workspace worktree: the git repository, by its workspaces.repos name (or "
        "an absolute path, not from chat; default: the assignee's)",
    )
    p.add_argument("--tenant", help="a namespace inside the board")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--triage", action="store_true", help="park as a rough idea, never auto-run")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="a retry with the same key returns the existing task",
    )
    p.add_argument(
        "--max-runtime",
        metavar="DURATION",
        type=argtypes.duration,
        help="per-attempt cap: 300, 90s, 30m, 2h, 1d",
    )
    p.add_argument(
        "--max-cost",
        metavar="USD",
        type=argtypes.dollars,
        help="stop and block the task once its runs cost this much (as the agent reports)",
    )
    p.add_argument(
        "--max-tokens",
        metavar="N",
        type=argtypes.tokens,
        help="stop and block the task once its runs used this many tokens",
    )
    p.add_argument(
        "--skill",
        action="append",
        default=[],
        dest="skills",
        metavar="NAME",
        help="a skill the worker must load (repeatable)",
    )
    placement = p.add_mutually_exclusive_group()
    placement.add_argument(
        "--host", metavar="NAME", help="only this enrolled host runs it (`kanban hosts`)"
    )
    placement.add_argument(
        "--label", metavar="LABEL", help="only enrolled hosts carrying this label run it"
    )
    p.add_argument("--json", action="store_true", help="print the task as JSON")
    # The first task may create the board (in its home; a mistyped directory is refused).
    p.set_defaults(handler=create, on_missing=OnMissing.CREATE)

    p = sub.add_parser(
        "edit",
        help="change a task's title, body, priority, tenant or placement",
        description="Change a task's title, body, priority or tenant; an admin may re-place it "
        "(--host, --label or --any-host), e.g. off a revoked host.",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--title")
    p.add_argument("--body", help="new body ('' clears it)")
    p.add_argument("--priority", type=int)
    p.add_argument("--tenant", help="new tenant ('' or none clears it)")
    placement = p.add_mutually_exclusive_group()
    placement.add_argument("--host", metavar="NAME", help="admin: only this host runs it now")
    placement.add_argument(
        "--label", metavar="LABEL", help="admin: only hosts carrying this label run it now"
    )
    placement.add_argument("--any-host", action="store_true", help="admin: any host may run it now")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=edit)

    p = sub.add_parser(
        "assign",
        help="assign a task (none to unassign)",
        description="Assign a task; none, - or null unassigns.",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("assignee")
    p.set_defaults(handler=assign)

    p = sub.add_parser(
        "comment",
        help="add a comment to a task",
        description="Add a comment; the author is you (or the worker's run).",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("text", nargs="+", help="the comment (words are joined with spaces)")
    p.set_defaults(handler=comment)

    p = sub.add_parser(
        "link", help="make CHILD wait for PARENT", description="Make CHILD wait for PARENT."
    )
    p.add_argument("parent_id", type=argtypes.task_id)
    p.add_argument("child_id", type=argtypes.task_id)
    p.set_defaults(handler=link)

    p = sub.add_parser("unlink", help="remove a dependency", description="Remove a dependency.")
    p.add_argument("parent_id", type=argtypes.task_id)
    p.add_argument("child_id", type=argtypes.task_id)
    p.set_defaults(handler=unlink)


def create(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``create``: the new task, or the existing one its idempotency key names."""
    tenant = args.tenant
    if tenant is None and ctx.actor.run is not None:
        tenant = ctx.environ.get("KANBAN_TENANT") or None
    workspace, repo = chat_paths.resolve(
        args.workspace,
        args.repo,
        from_chat=ctx.from_chat,
        config=lambda: ctx.config().workspaces,
    )
    host, label = args.host, args.label
    if host is None and label is None and args.assignee:
        # The assignee's profile may place its tasks (config.yaml: host: / label:).
        profile = ctx.config().assignees.get(args.assignee)
        if profile is not None:
            host, label = profile.host, profile.label
    outcome = ctx.board().create(
        ctx.actor,
        title=args.title,
        body=args.body,
        assignee=args.assignee,
        parents=args.parent,
        workspace=workspace,
        tenant=tenant,
        priority=args.priority,
        triage=args.triage,
        idempotency_key=args.idempotency_key,
        max_runtime_s=args.max_runtime,
        skills=args.skills,
        repo=repo,
        max_cost_micro_usd=args.max_cost,
        max_tokens=args.max_tokens,
        host=host,
        label=label,
    )
    task = outcome.task
    created = (task.id,) if outcome.created else ()
    if args.json:
        return CommandResult(
            data=task.to_json() | {"created": outcome.created}, as_json=True, created=created
        )
    verb = "Created" if outcome.created else "Exists "
    line = f"{verb} {task.ref}  ({task.status.value}, assignee={task.assignee or '-'})"
    if not outcome.created:
        line += f"  — idempotency key {task.idempotency_key!r} already names it"
    return CommandResult(blocks=(Text(line),), created=created)


def edit(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``edit``: a task's fields, or (an admin's) its placement."""
    if args.host is not None or args.label is not None or args.any_host:
        if any(v is not None for v in (args.title, args.body, args.priority, args.tenant)):
            raise UsageError("re-place a task on its own: `edit ID --host H` (no other fields)")
        placing.require_admin(ctx)
        moved = ctx.board().place(
            ctx.actor, args.task_id, host=args.host, label=args.label, any_host=args.any_host
        )
        if args.json:
            return CommandResult(data=moved.task.to_json(), as_json=True)
        return text(*placing.report(moved, paths=not ctx.from_chat))
    task = ctx.board().edit(
        ctx.actor,
        args.task_id,
        title=args.title,
        body=args.body,
        priority=args.priority,
        tenant=args.tenant,
    )
    if args.json:
        return CommandResult(data=task.to_json(), as_json=True)
    return text(f"Edited {task.ref}")


def assign(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``assign``."""
    task = ctx.board().assign(ctx.actor, args.task_id, args.assignee)
    return text(f"Assigned {task.ref} to {task.assignee or '(unassigned)'}")


def comment(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``comment``."""
    task_id = args.task_id
    ctx.board().comment(ctx.actor, task_id, " ".join(args.text))
    return text(f"Comment added to {format_task_id(task_id)}")


def link(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``link``."""
    parent, child = args.parent_id, args.child_id
    created = ctx.board().link(ctx.actor, parent, child)
    suffix = "" if created else "  (already linked)"
    return text(f"Linked {format_task_id(parent)} -> {format_task_id(child)}{suffix}")


def unlink(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``unlink``."""
    parent, child = args.parent_id, args.child_id
    if not ctx.board().unlink(ctx.actor, parent, child):
        return CommandResult(
            exit_code=1,
            errors=(f"No such link {format_task_id(parent)} -> {format_task_id(child)}",),
        )
    return text(f"Unlinked {format_task_id(parent)} -> {format_task_id(child)}")
