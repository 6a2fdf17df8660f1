"""Verbs that run and observe the work: dispatch, status, context, log."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kanban_core.board import leases
from kanban_core.board.domain import format_task_id
from kanban_core.board.leases import LEADER_LEASE
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.formatting import elapsed, timestamp
from kanban_core.commands.result import Block, CommandResult, Heading, Table, Text, text
from kanban_core.errors import KanbanError, UsageError
from kanban_core.storage import Query

if TYPE_CHECKING:
    from kanban_core.board.kanban import Kanban
    from kanban_core.dispatch.sandbox import Containment

#: From chat, a log is cut to what fits a couple of messages.
CHAT_LOG_BYTES = 3000
DEFAULT_LOG_BYTES = 64 * 1024

_DELIVERIES = Query(
    "delivery_counts", "SELECT status, count(*) FROM notify_deliveries GROUP BY status"
)


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "dispatch",
        help="run one dispatcher pass now",
        description="Reclaim expired leases, time out overdue runs, then claim "
        "ready tasks up to the caps and start a supervised worker for each.",
    )
    p.add_argument("--dry-run", action="store_true", help="show what would be spawned")
    p.add_argument("--max", type=int, metavar="N", help="spawn at most N workers this pass")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=dispatch)

    p = sub.add_parser(
        "status",
        help="dispatcher health and what is waiting",
        description="Dispatcher health (last pass, last error), queue counts and "
        "undeliverable notifications.",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=status)

    p = sub.add_parser(
        "context",
        help="what a worker sees of its task",
        description="The worker context: body, prior attempts, parent handoffs, "
        "recent work by the assignee, comments — all capped.",
    )
    p.add_argument("task_id", type=argtypes.task_id, nargs="?")
    p.set_defaults(handler=context)

    p = sub.add_parser(
        "audit",
        help="chat commands, allowed and refused",
        description="The audit log: every chat command with who sent it, where, "
        "and whether it was allowed.",
    )
    p.add_argument("--limit", type=int, default=50, metavar="N")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=audit_log)

    p = sub.add_parser("log", help="a task's worker log", description="Print a task's worker log.")
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--tail", type=int, metavar="BYTES", help="only the last BYTES bytes")
    p.set_defaults(handler=log)


def dispatch(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``dispatch``."""
    if args.max is not None and args.max < 0:
        raise UsageError("--max must not be negative")
    report = ctx.get_dispatcher().run_pass(dry_run=args.dry_run, max_spawn=args.max)
    if args.json:
        return CommandResult(data=report.to_json(), as_json=True)
    ref = format_task_id
    lines = []
    if report.reclaimed:
        lines.append("Reclaimed (lease expired): " + " ".join(ref(t) for t in report.reclaimed))
    if report.crashed:
        lines.append("Crashed (supervisor died): " + " ".join(ref(t) for t in report.crashed))
    if report.timed_out:
        lines.append("Timed out: " + " ".join(ref(t) for t in report.timed_out))
    if report.gave_up:
        lines.append("Gave up (blocked): " + " ".join(ref(t) for t in report.gave_up))
    if report.promoted:
        lines.append(f"Promoted: {len(report.promoted)}")
    lines += [
        f"Spawned: {ref(s.task_id)} → {s.assignee} (run r{s.run_id}, pid {s.pid})"
        for s in report.spawned
    ]
    lines += [f"Would spawn: {ref(t)} → {a}" for t, a in report.would_spawn]
    lines += [f"Spawn failed: {ref(t)}: {e}" for t, e in report.spawn_failed]
    if report.skipped_unassigned:
        lines.append("Skipped (unassigned): " + " ".join(ref(t) for t in report.skipped_unassigned))
    for name, ids in report.skipped_unknown.items():
        lines.append(f"Skipped (no profile for {name!r}): " + " ".join(ref(t) for t in ids))
    if not lines:
        lines.append("Nothing to do.")
    return text(*lines)


def status(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``status``."""
    from kanban_core.dispatch import health

    board = ctx.board()
    dispatchers = health.read(board, stale_after=health.stale_after_s(dispatch_interval_s(ctx)))
    stats = board.stats()
    with board.db.transaction(write=False) as tx:
        deliveries = {row[0]: int(row[1]) for row in tx.fetchall(_DELIVERIES)}
    contained = _containment(ctx)
    held = _leases(board)
    upkeep = board.maintenance_runs()
    if args.json:
        return CommandResult(
            data={
                "dispatchers": [d.to_json() for d in dispatchers],
                "by_status": stats.by_status,
                "oldest_ready_age_seconds": stats.oldest_ready_age_seconds,
                "deliveries": deliveries,
                "dead_letters": board.dead_letters(limit=20),
                "containment": {name: c.to_json() for name, c in contained.items()},
                "leases": held,
                "leader": next(
                    (h["owner"] for h in held if h["name"] == LEADER_LEASE and h["live"]), None
                ),
                "maintenance": [m.to_json() for m in upkeep],
            },
            as_json=True,
        )
    blocks: list[Block] = [Heading("Dispatchers")]
    if dispatchers:
        rows = tuple(
            (
                d.name,
                "stopped" if d.stopped else "running",
                f"{elapsed(d.age_s)} ago",
                f"{d.last_pass_duration_ms} ms",
                str(d.passes),
                d.last_error or "-",
            )
            for d in dispatchers
        )
        blocks.append(Table(("NAME", "STATE", "LAST PASS", "TOOK", "PASSES", "LAST ERROR"), rows))
    else:
        blocks.append(
            Text("(no dispatcher has run in the last hour: `kanban gateway` or `kanban dispatch`)")
        )
    counts = "  ".join(f"{k}={v}" for k, v in stats.by_status.items())
    blocks += [Heading("Board"), Text(counts)]
    dead = deliveries.get("dead", 0)
    pending = deliveries.get("pending", 0) + deliveries.get("sending", 0)
    blocks += [
        Heading("Notifications"),
        Text(f"pending={pending}  dead={dead}"),
    ]
    for letter in board.dead_letters(limit=10) if dead else []:
        target = f"{letter['platform']}:{letter['chat_id']}"
        blocks.append(
            Text(
                f"dead: {letter['kind']} of {letter['task_id']} to {target} after "
                f"{letter['attempts']} attempts: {letter['last_error'] or '-'}"
            )
        )
    if held:  # a board gateways share: who runs each connection, who leads
        blocks.append(Heading("Leases (several gateways)"))
        blocks.append(
            Table(("LEASE", "OWNER", "HOST", "STATE"), tuple(_lease_row(h) for h in held))
        )
    for run in upkeep:
        blocks.append(
            Text(
                f"maintenance: {run.job} last ran {timestamp(run.last_ms)} by {run.owner} "
                f"(run {run.runs}): {run.summary or '-'}"
            )
        )
    # Last, so it is what a person reads first at the bottom of the screen.
    blocks.append(Heading("Containment of agents (per profile)"))
    blocks.append(
        Table(("PROFILE", "IN FORCE"), tuple((n, c.summary) for n, c in contained.items()))
    )
    return CommandResult(blocks=tuple(blocks))


def _leases(board: Kanban) -> list[dict[str, Any]]:
    """Every lease: its owner, the owner's host, and when it runs out (database clock)."""
    names = {h.host_id: h.name for h in board.list_hosts()}
    return [
        {
            "name": s.name,
            "owner": s.owner,
            "host": None if s.host_id is None else names.get(s.host_id),
            "expires_ms": s.expires_ms,
            "live": s.live,
            "expires_in_s": round((s.expires_ms - s.now_ms) / 1000, 1),
        }
        for s in leases.all_leases(board.db)
    ]


def _lease_row(held: dict[str, Any]) -> tuple[str, str, str, str]:
    left = held["expires_in_s"]
    state = f"held, {left:.0f}s left" if held["live"] else f"expired {-left:.0f}s ago"
    return held["name"], held["owner"], held["host"] or "-", state


def dispatch_interval_s(ctx: CommandContext) -> float:
    """The configured dispatch interval; the default when config.yaml cannot be read."""
    from kanban_core.config import DispatcherConfig
    from kanban_core.errors import KanbanError

    try:
        return float(ctx.config().dispatcher.dispatch_interval_seconds)
    except KanbanError:
        return float(DispatcherConfig().dispatch_interval_seconds)


def _containment(ctx: CommandContext) -> dict[str, Containment]:
    """What each configured profile's next run gets on this machine."""
    from kanban_core.dispatch.sandbox import Containment, containment

    try:
        profiles = ctx.config().assignees
    except KanbanError as exc:
        return {"(config)": Containment(False, f"cannot read config.yaml: {exc}")}
    return {name: containment(profile.sandbox) for name, profile in sorted(profiles.items())}


def context(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``context``."""
    from kanban_core.dispatch import worker_context

    task_id = args.task_id or ctx.default_task()
    return text(worker_context.build(ctx.board(), task_id).rstrip())


def log(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``log``: the whole log in a terminal (or its tail), a bounded tail from chat."""
    from kanban_core.dispatch.logs import log_path, tail

    if args.tail is not None and args.tail <= 0:
        raise UsageError("--tail must be a positive number of bytes")
    board = ctx.board()
    board.get(args.task_id)
    path = log_path(board.settings.home, args.task_id)
    if not path.is_file():
        return CommandResult(
            exit_code=1,
            errors=(f"(no log for {format_task_id(args.task_id)} — it may not have run yet)",),
        )
    limit = args.tail or (DEFAULT_LOG_BYTES if ctx.interactive else CHAT_LOG_BYTES)
    if not ctx.interactive:
        limit = min(limit, CHAT_LOG_BYTES)
    return text(tail(path, limit).rstrip("\n") or "(empty log)")


def audit_log(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``audit``."""
    if not 0 < args.limit <= 1000:
        raise UsageError("--limit must be between 1 and 1000")
    entries = ctx.board().audit_log(limit=args.limit)
    if args.json:
        return CommandResult(data=[e.to_json() for e in entries], as_json=True)
    if not entries:
        return text("(no chat commands yet)")
    rows = tuple(
        (
            timestamp(e.created_ms),
            f"{e.platform}:{e.chat_id}" + (f":{e.thread_id}" if e.thread_id else ""),
            f"{e.user_name or '-'} ({e.user_id})",
            e.outcome,
            e.text if len(e.text) <= 80 else e.text[:79] + "…",
        )
        for e in reversed(entries)
    )
    return CommandResult(blocks=(Table(("WHEN", "CHAT", "USER", "OUTCOME", "COMMAND"), rows),))
