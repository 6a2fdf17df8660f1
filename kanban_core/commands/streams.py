"""Streaming verbs: tail (one task's events) and watch (the whole board's).

In a terminal they follow live events until interrupted; with ``--once``, or whenever the
context is not interactive (chat), they return a bounded snapshot and never block.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

from kanban_core.board import late_commits
from kanban_core.board.domain import Event, EventKind, TaskId, format_task_id
from kanban_core.board.kanban import Kanban
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.formatting import event_line
from kanban_core.commands.notifications import progress_lines
from kanban_core.commands.result import CommandResult, Text
from kanban_core.errors import UsageError

SNAPSHOT_EVENTS = 20
_BATCH = 200


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "tail",
        help="follow one task's events",
        description="Follow one task's events (--once: the last ones, then stop).",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--once", action="store_true", help="print recent events and return")
    p.add_argument("--limit", type=int, default=SNAPSHOT_EVENTS, help="events in the snapshot")
    p.add_argument("--interval", type=float, default=1.0, help="poll interval in seconds")
    p.set_defaults(handler=tail)

    p = sub.add_parser(
        "watch",
        help="follow the board's events",
        description="Follow the board's events as they happen; with a task, from chat: "
        "subscribe this chat to it with live progress on, and show what it is doing now.",
    )
    p.add_argument("task_id", nargs="?", type=argtypes.task_id)
    p.add_argument("--assignee")
    p.add_argument("--tenant")
    p.add_argument("--kinds", help="comma-separated event kinds, e.g. completed,blocked")
    p.add_argument("--once", action="store_true", help="print recent events and return")
    p.add_argument("--limit", type=int, default=SNAPSHOT_EVENTS, help="events in the snapshot")
    p.add_argument("--interval", type=float, default=0.5, help="poll interval in seconds")
    p.set_defaults(handler=watch)


def tail(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``tail``."""
    _check_numbers(args)
    task_id = args.task_id
    board = ctx.board()
    snapshot_only = args.once or not ctx.interactive
    # Before the snapshot: an event committed in between is either in it or found after it.
    follower = None if snapshot_only else _follower(board)
    recent = board.recent_events(task_id=task_id, limit=args.limit)
    lines = [event_line(e) for e in recent] or [f"(no events yet for {format_task_id(task_id)})"]
    if follower is None:
        return CommandResult(blocks=tuple(Text(line) for line in lines))
    follower.seen(e.id for e in recent)
    return CommandResult(
        blocks=tuple(Text(line) for line in lines),
        follow=lambda: _follow(ctx, follower, args.interval, task_id, lambda _e: True),
    )


def watch(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``watch``."""
    _check_numbers(args)
    if args.task_id is not None:
        return _watch_task(ctx, args) if ctx.place is not None else tail(ctx, args)
    kinds = _parse_kinds(args.kinds)
    board = ctx.board()
    tags_cache: dict[TaskId, tuple[str | None, str | None]] = {}

    def wanted(event: Event) -> bool:
        if kinds and event.kind not in kinds:
            return False
        if args.assignee is None and args.tenant is None:
            return True
        if event.kind in (EventKind.ASSIGNED, EventKind.EDITED):
            tags_cache.pop(event.task_id, None)  # the task's assignee or tenant may have changed
        if event.task_id not in tags_cache:
            tags_cache.update(board.task_tags([event.task_id]))
        tenant, assignee = tags_cache.get(event.task_id, (None, None))
        return (args.tenant is None or tenant == args.tenant) and (
            args.assignee is None or assignee == args.assignee
        )

    if args.once or not ctx.interactive:
        # A snapshot scans a bounded window of recent events for matches.
        recent = [e for e in board.recent_events(limit=args.limit * 50) if wanted(e)]
        shown = recent[-args.limit :]
        lines = [event_line(e, with_task=True) for e in shown] or ["(no matching events)"]
        return CommandResult(blocks=tuple(Text(line) for line in lines))
    follower = _follower(board)
    return CommandResult(
        blocks=(Text(f"watching from event {follower.cursor} (Ctrl-C to stop)"),),
        follow=lambda: _follow(ctx, follower, args.interval, None, wanted),
    )


def _follower(board: Kanban) -> late_commits.Follower:
    """A follower of the whole log from its newest event (a task's is filtered as it comes)."""
    return late_commits.Follower.at_newest(board.db, batch=_BATCH)


def _watch_task(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """From chat: subscribe the chat with progress on; answer once (a chat reply never streams)."""
    assert ctx.place is not None
    platform, chat_id, thread_id = ctx.place
    board, task_id = ctx.board(), args.task_id
    thread = thread_id or None
    board.subscribe(
        ctx.actor,
        task_id,
        platform=platform,
        chat_id=chat_id,
        thread_id=thread,
        user_id=ctx.principal,
    )
    board.set_progress(
        ctx.actor, task_id, platform=platform, chat_id=chat_id, thread_id=thread, on=True
    )
    ref = format_task_id(task_id)
    lines = [f"Watching {ref} here: live progress while it runs, then how it ends."]
    latest = [e for e in board.recent_events(task_id=task_id, limit=50) if e.kind == "progress"]
    task = board.get(task_id)
    if latest and task.status.value == "running":
        lines += progress_lines(latest[-1].payload or {})
    else:
        lines.append(f"({ref} is {task.status.value}; no live progress right now)")
    return CommandResult(blocks=tuple(Text(line) for line in lines[:30]))


def _follow(
    ctx: CommandContext,
    follower: late_commits.Follower,
    interval: float,
    task_id: TaskId | None,
    wanted: Callable[[Event], bool],
) -> Iterator[CommandResult]:
    """Yield the wanted events as they commit, each once (late commits too), until interrupted."""
    while True:
        events, caught_up = follower.poll()
        fresh = [
            Text(event_line(event, with_task=task_id is None))
            for event in events
            if (task_id is None or event.task_id == task_id) and wanted(event)
        ]
        if fresh:
            yield CommandResult(blocks=tuple(fresh))
        elif caught_up:
            ctx.sleep(interval)


def _parse_kinds(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    kinds = frozenset(k.strip() for k in raw.split(",") if k.strip())
    unknown = sorted(kinds - {k.value for k in EventKind})
    if unknown:
        raise UsageError(f"unknown event kind(s): {', '.join(unknown)}")
    return kinds


def _check_numbers(args: argparse.Namespace) -> None:
    if not 0 < args.limit <= 1000:
        raise UsageError("--limit must be between 1 and 1000")
    if not 0.05 <= args.interval <= 3600:
        raise UsageError("--interval must be between 0.05 and 3600 seconds")
