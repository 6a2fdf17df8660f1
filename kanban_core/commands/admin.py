"""Board administration verbs: init and gc."""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.board.kanban import OnMissing
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, text


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "init",
        help="create the board (safe to repeat)",
        description="Create the board's database, or upgrade it; safe to repeat.",
    )
    p.set_defaults(handler=init, on_missing=OnMissing.CREATE_ANYWHERE)

    p = sub.add_parser(
        "gc",
        help="delete old events, deliveries, exec requests, worker logs and archived tasks' "
        "workspaces",
        description="Delete events and deliveries of done/archived tasks, finished execution "
        "requests and worker logs older than the retention, spent nonces no request can still "
        "use, and the workspaces of archived tasks that are provably ours and "
        "hold no unsaved work (dir: workspaces are never touched).",
    )
    # Defaults: config.yaml's maintenance section (what the leader's scheduled gc uses).
    p.add_argument("--event-retention-days", type=int, metavar="N")
    p.add_argument("--log-retention-days", type=int, metavar="N")
    p.set_defaults(handler=gc)


def init(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``init``: opening the board creates or upgrades it."""
    del args
    board = ctx.board()
    stats = board.stats()
    total = sum(stats.by_status.values())
    return text(
        f"Board ready: {board.db.describe()}",
        f'{total} task(s) on it. Next: kanban create "first task" --assignee <name>',
        "Workers are dispatched by `kanban dispatch` or the gateway (`kanban gateway`).",
    )


def gc(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``gc``."""
    from kanban_core.workspaces import cleanup  # GitPython only when gc runs

    kept = ctx.config().maintenance
    report = cleanup.gc(
        ctx.board(),
        ctx.actor,
        event_retention_days=(
            kept.event_retention_days
            if args.event_retention_days is None
            else args.event_retention_days
        ),
        log_retention_days=(
            kept.log_retention_days if args.log_retention_days is None else args.log_retention_days
        ),
    )
    return text(
        f"GC complete: {report.events} event row(s), {report.deliveries} delivery row(s), "
        f"{report.exec_requests} exec request(s), {report.exec_nonces} spent nonce(s), "
        f"{report.log_files} log file(s), {report.workspaces} workspace(s) removed",
        *report.notes,
    )
