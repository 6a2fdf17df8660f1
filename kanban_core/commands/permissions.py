"""Verbs that answer agents' permission requests: permissions, allow, deny."""

from __future__ import annotations

import argparse
import time
from typing import Any

from kanban_core.board.domain import (
    PermissionDecision,
    PermissionRequest,
    format_run_id,
    format_task_id,
)
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.formatting import elapsed, first_line
from kanban_core.commands.result import CommandResult, Table, text

SUMMARY_CHARS = 60


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "permissions",
        help="agents' requests waiting for an answer",
        description="List the permission requests agents are waiting on (oldest first).",
    )
    p.add_argument("--task", type=argtypes.task_id, metavar="ID", help="only this task's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_requests)

    p = sub.add_parser(
        "allow",
        help="let an agent go ahead (once, or with --run for the rest of its run)",
        description="Answer a permission request with yes. The first answer wins.",
    )
    p.add_argument("ref", type=argtypes.permission_ref, metavar="REF", help="the request, e.g. p12")
    p.add_argument(
        "--run", action="store_true", help="allow this tool for the rest of the agent's run"
    )
    p.set_defaults(handler=allow)

    p = sub.add_parser(
        "deny",
        help="refuse an agent's request",
        description="Answer a permission request with no. The first answer wins.",
    )
    p.add_argument("ref", type=argtypes.permission_ref, metavar="REF", help="the request, e.g. p12")
    p.add_argument("reason", nargs="*", help="why (the agent is told)")
    p.set_defaults(handler=deny)


def list_requests(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``permissions``."""
    pending = ctx.board().open_permissions(args.task)
    now_ms = int(time.time() * 1000)
    if args.json:
        return CommandResult(data=[to_json(r, now_ms) for r in pending], as_json=True)
    if not pending:
        return text("(no requests waiting for an answer)")
    rows = tuple(
        (
            r.ref,
            format_task_id(r.task_id),
            r.tool_name,
            first_line(r.summary, SUMMARY_CHARS),
            elapsed((now_ms - r.created_ms) / 1000),
            elapsed((r.expires_ms - now_ms) / 1000),
        )
        for r in pending
    )
    table = Table(("REF", "TASK", "TOOL", "SUMMARY", "AGE", "EXPIRES IN"), rows)
    return CommandResult(blocks=(table,))


def allow(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``allow``."""
    decision = PermissionDecision.ALLOW_RUN if args.run else PermissionDecision.ALLOW_ONCE
    answered = ctx.board().answer_permission(ctx.actor, args.ref, decision)
    scope = "for the rest of its run" if args.run else "once"
    return text(f"Allowed {answered.ref} {scope}: {_what(answered)}")


def deny(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``deny``."""
    reason = " ".join(args.reason).strip() or None
    answered = ctx.board().answer_permission(ctx.actor, args.ref, PermissionDecision.DENY, reason)
    suffix = f" ({reason})" if reason else ""
    return text(f"Denied {answered.ref}: {_what(answered)}{suffix}")


def to_json(request: PermissionRequest, now_ms: int) -> dict[str, Any]:
    """A request as ``--json`` prints it."""
    return {
        "ref": request.ref,
        "task_id": format_task_id(request.task_id),
        "run_id": format_run_id(request.run_id),
        "tool_kind": request.tool_kind,
        "tool": request.tool_name,
        "summary": request.summary,
        "detail": request.detail,
        "paths": list(request.paths),
        "status": request.status.value,
        "created_at": request.created_ms // 1000,
        "expires_at": request.expires_ms // 1000,
        "age_s": max(0, (now_ms - request.created_ms) // 1000),
        "expires_in_s": max(0, (request.expires_ms - now_ms) // 1000),
    }


def _what(request: PermissionRequest) -> str:
    return f"{format_task_id(request.task_id)} {request.tool_name} — {request.summary}"
