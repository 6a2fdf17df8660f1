"""Verbs that move tasks through their life: claim, complete, block, unblock, heartbeat,
reclaim, archive. Bulk verbs act on every id and report each failure without stopping."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from kanban_core.board.domain import Claim, TaskId, format_run_id, format_task_id, parse_task_id
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, Text, text
from kanban_core.errors import KanbanError, UsageError


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "claim",
        help="claim a ready task by hand (prints the run id and token)",
        description="Claim a ready task; the run id and secret token let a script act as its "
        "worker (export them as KANBAN_RUN_ID and KANBAN_RUN_TOKEN).",
    )
    p.add_argument("task_id", nargs="?", type=argtypes.task_id, help="the task (omit with --next)")
    p.add_argument("--next", action="store_true", help="claim the highest-priority ready task")
    p.add_argument("--assignee", help="with --next: only this assignee's tasks")
    p.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="with --next: claim up to N ready tasks at once, each its own run and token",
    )
    p.add_argument("--ttl", type=int, metavar="SECONDS", help="lease length (default 900)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=claim)

    p = sub.add_parser(
        "complete",
        help="mark tasks done",
        description="Mark tasks done. --summary/--metadata are per task.",
    )
    p.add_argument("task_ids", nargs="*", metavar="ID", help="ids (a worker may omit its own)")
    p.add_argument("--result", help="a short result line")
    p.add_argument("--summary", help="the handoff for whoever comes next")
    p.add_argument(
        "--metadata",
        metavar="JSON",
        type=argtypes.metadata,
        help="a JSON object, e.g. '{\"files\": 3}'",
    )
    p.set_defaults(handler=complete)

    p = sub.add_parser(
        "block",
        help="block a task until a human unblocks it",
        description="Block a task until a human unblocks it.",
    )
    p.add_argument("task_id", nargs="?", help="the task (a worker may omit its own)")
    p.add_argument("reason", nargs="*", help="why (recorded as a BLOCKED: comment)")
    p.add_argument("--ids", nargs="+", default=[], metavar="ID", help="more ids to block")
    p.set_defaults(handler=block)

    p = sub.add_parser(
        "accept",
        help="take triaged tasks onto the board",
        description="Take triaged tasks onto the board: ready, or todo while parents are "
        "unfinished (the dispatcher never runs a triaged task).",
    )
    p.add_argument("task_ids", nargs="+", metavar="ID")
    p.add_argument("--reason", help="recorded as an ACCEPTED: comment")
    p.set_defaults(handler=accept)

    p = sub.add_parser("unblock", help="lift a block", description="Lift a block.")
    p.add_argument("task_ids", nargs="+", metavar="ID")
    p.add_argument("--reason", help="recorded as an UNBLOCK: comment")
    p.set_defaults(handler=unblock)

    p = sub.add_parser(
        "heartbeat",
        help="renew a worker's lease",
        description="Renew a worker's lease (needs the run's credentials).",
    )
    p.add_argument(
        "task_id", nargs="?", type=argtypes.task_id, help="the task (defaults to KANBAN_TASK)"
    )
    p.add_argument("--note", help="a progress note, recorded as an event")
    p.set_defaults(handler=heartbeat)

    p = sub.add_parser(
        "reclaim",
        help="requeue a running task (operator)",
        description="Requeue a running task: its run is closed as reclaimed.",
    )
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--reason")
    p.set_defaults(handler=reclaim)

    p = sub.add_parser("archive", help="archive tasks", description="Archive tasks.")
    p.add_argument("task_ids", nargs="+", metavar="ID")
    p.set_defaults(handler=archive)


def claim(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``claim``."""
    if args.next == (args.task_id is not None):
        raise UsageError("give a task id or --next (not both)")
    if args.assignee and not args.next:
        raise UsageError("--assignee goes with --next")
    if args.count is not None:
        return _claim_many(ctx, args)
    task_id = None if args.next else args.task_id
    granted = ctx.board().claim(ctx.actor, task_id, ttl_s=args.ttl, assignee=args.assignee)
    if granted is None:
        if task_id is None:
            return CommandResult(exit_code=1, errors=("nothing is ready to claim",))
        task = ctx.board().get(task_id)
        return CommandResult(
            exit_code=1, errors=(f"cannot claim {task.ref}: it is {task.status.value}",)
        )
    if args.json:
        return CommandResult(data=_claim_data(granted), as_json=True)
    return text(*_claim_lines(granted))


def _claim_many(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``claim --next --count N``: one batch; a script runs each claimed task as its worker."""
    if not args.next:
        raise UsageError("--count goes with --next")
    claims = ctx.board().claim_next(ctx.actor, args.count, ttl_s=args.ttl, assignee=args.assignee)
    if not claims:
        return CommandResult(exit_code=1, errors=("nothing is ready to claim",))
    if args.json:
        return CommandResult(data={"claims": [_claim_data(c) for c in claims]}, as_json=True)
    return text(*(line for c in claims for line in _claim_lines(c)))


def _claim_data(granted: Claim) -> dict[str, Any]:
    return {
        "task_id": granted.task.ref,
        "run_id": granted.run_id,
        "run_token": granted.token,
        "attempt": granted.attempt,
        "lease_expires_at": granted.lease_expires_ms // 1000,
        "workspace_kind": granted.task.workspace_kind.value,
        "workspace_path": granted.task.workspace_path,
    }


def _claim_lines(granted: Claim) -> tuple[str, str]:
    return (
        f"Claimed {granted.task.ref}  (run {format_run_id(granted.run_id)}, "
        f"attempt {granted.attempt})",
        f"export KANBAN_TASK={granted.task.ref} KANBAN_RUN_ID={granted.run_id} "
        f"KANBAN_RUN_TOKEN={granted.token}",
    )


def complete(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``complete``: bulk, but a handoff (summary, metadata) belongs to one task."""
    ids = _ids(ctx, args.task_ids)
    if len(ids) > 1 and (args.summary is not None or args.metadata is not None):
        raise UsageError("--summary and --metadata are per task; complete one id at a time")
    board = ctx.board()
    return _bulk(
        ids,
        lambda t: (
            board.complete(
                ctx.actor, t, result=args.result, summary=args.summary, metadata=args.metadata
            ).ref
        ),
        "Completed",
    )


def block(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``block``."""
    # The id stays a plain string: a worker's `block "needs the API key"` names no task at all.
    words = list(args.reason)
    first: list[str] = []
    if args.task_id is not None:
        if ctx.actor.run is None or _looks_like_id(args.task_id):
            first = [args.task_id]
        else:
            words.insert(0, args.task_id)
    reason = " ".join(words).strip() or None
    ids = _ids(ctx, first + list(args.ids))
    board = ctx.board()
    suffix = f": {reason}" if reason else ""
    return _bulk(ids, lambda t: board.block(ctx.actor, t, reason).ref + suffix, "Blocked")


def accept(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``accept``."""
    board = ctx.board()

    def one(task_id: TaskId) -> str:
        task = board.accept(ctx.actor, task_id, args.reason)
        return f"{task.ref}  (now {task.status.value})"

    return _bulk(_unique(args.task_ids), one, "Accepted")


def unblock(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``unblock``."""
    board = ctx.board()

    def one(task_id: TaskId) -> str:
        task = board.unblock(ctx.actor, task_id, args.reason)
        return f"{task.ref}  (now {task.status.value})"

    ids = _unique(args.task_ids)
    return _bulk(ids, one, "Unblocked")


def heartbeat(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``heartbeat``."""
    task_id = args.task_id or ctx.default_task()
    ctx.board().heartbeat(ctx.actor, task_id, args.note)
    return text(f"Heartbeat recorded for {format_task_id(task_id)}")


def reclaim(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``reclaim``."""
    task = ctx.board().reclaim(ctx.actor, args.task_id, args.reason)
    return text(f"Reclaimed {task.ref}  (now {task.status.value})")


def archive(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``archive``."""
    board = ctx.board()
    ids = _unique(args.task_ids)
    return _bulk(ids, lambda t: board.archive(ctx.actor, t).ref, "Archived")


def _ids(ctx: CommandContext, raw: list[str]) -> list[str | TaskId]:
    if not raw:
        return [ctx.default_task()]
    return _unique(raw)


def _unique(raw: list[str]) -> list[str | TaskId]:
    """Parse what parses (``t1``, ``1`` and ``#1`` are one task); keep the rest to report."""
    seen: dict[str | TaskId, None] = {}
    for value in raw:
        try:
            seen.setdefault(parse_task_id(value), None)
        except KanbanError:
            seen.setdefault(value, None)
    return list(seen)


def _bulk(ids: list[str | TaskId], act: Callable[[TaskId], str], verb: str) -> CommandResult:
    done: list[Text] = []
    errors: list[str] = []
    for raw in ids:
        try:
            task_id = parse_task_id(raw) if isinstance(raw, str) else raw
            done.append(Text(f"{verb} {act(task_id)}"))
        except KanbanError as exc:
            errors.append(str(exc))
    return CommandResult(exit_code=1 if errors else 0, blocks=tuple(done), errors=tuple(errors))


def _looks_like_id(value: str) -> bool:
    try:
        parse_task_id(value)
    except KanbanError:
        return False
    return True
