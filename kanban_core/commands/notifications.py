"""Notification subscription verbs: notify-subscribe, notify-list, notify-unsubscribe, progress."""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.board.domain import format_task_id
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, Table, text


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "notify-subscribe",
        help="tell a chat about a task's terminal events",
        description="Subscribe a chat (and thread) to a task's terminal events.",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--platform", required=True, help="telegram, discord, slack, console …")
    p.add_argument("--chat-id", required=True)
    p.add_argument("--thread-id")
    p.add_argument("--user-id")
    p.set_defaults(handler=subscribe)

    p = sub.add_parser("notify-list", help="list subscriptions", description="List subscriptions.")
    p.add_argument("task_id", nargs="?", type=argtypes.task_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_subscriptions)

    p = sub.add_parser(
        "notify-unsubscribe", help="remove a subscription", description="Remove a subscription."
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--platform", required=True)
    p.add_argument("--chat-id", required=True)
    p.add_argument("--thread-id")
    p.set_defaults(handler=unsubscribe)

    p = sub.add_parser(
        "progress",
        help="turn a chat's live progress of a task on or off",
        description="Turn live progress of a task on or off for a subscribed chat.",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("state", choices=("on", "off"))
    p.add_argument("--platform", required=True)
    p.add_argument("--chat-id", required=True)
    p.add_argument("--thread-id")
    p.set_defaults(handler=set_progress)


def _target(platform: str, chat_id: str, thread_id: str | None) -> str:
    return f"{platform}:{chat_id}" + (f":{thread_id}" if thread_id else "")


def subscribe(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``notify-subscribe``."""
    task_id = args.task_id
    added = ctx.board().subscribe(
        ctx.actor,
        task_id,
        platform=args.platform,
        chat_id=args.chat_id,
        thread_id=args.thread_id,
        user_id=args.user_id,
    )
    target = _target(args.platform.lower(), args.chat_id, args.thread_id)
    note = "" if added else "  (already subscribed)"
    return text(f"Subscribed {target} to {format_task_id(task_id)}{note}")


def list_subscriptions(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``notify-list``."""
    task_id = args.task_id
    subs = ctx.board().subscriptions(task_id)
    if args.json:
        return CommandResult(data=[s.to_json() for s in subs], as_json=True)
    if not subs:
        return text("(no subscriptions)")
    rows = tuple(
        (format_task_id(s.task_id), _target(s.platform, s.chat_id, s.thread_id), s.user_id or "-")
        for s in subs
    )
    return CommandResult(blocks=(Table(("TASK", "CHAT", "USER"), rows),))


def unsubscribe(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``notify-unsubscribe``."""
    task_id = args.task_id
    removed = ctx.board().unsubscribe(
        ctx.actor, task_id, platform=args.platform, chat_id=args.chat_id, thread_id=args.thread_id
    )
    if not removed:
        return CommandResult(exit_code=1, errors=("(no such subscription)",))
    return text(
        f"Unsubscribed {_target(args.platform.lower(), args.chat_id, args.thread_id)} "
        f"from {format_task_id(task_id)}"
    )


def set_progress(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``progress``."""
    task_id = args.task_id
    changed = ctx.board().set_progress(
        ctx.actor,
        task_id,
        platform=args.platform,
        chat_id=args.chat_id,
        thread_id=args.thread_id,
        on=args.state == "on",
    )
    ref = format_task_id(task_id)
    if not changed:
        return CommandResult(
            exit_code=1, errors=(f"this chat is not subscribed to {ref} (try: watch {ref})",)
        )
    return text(f"Live progress of {ref} is {args.state} for this chat")


def progress_lines(payload: dict[str, Any]) -> list[str]:
    """A progress snapshot as a few short lines (the chat reply of ``watch``)."""
    marks = {"completed": "[x]", "in_progress": "[>]"}
    lines = [
        f"{marks.get(e.get('status'), '[ ]')} {e.get('content', '')}"
        for e in payload.get("plan") or []
    ]
    if payload.get("tool"):
        lines.append(f"tool: {payload['tool']}")
    if payload.get("message"):
        lines.append(f"agent: {payload['message']}")
    return lines
