"""Read-only verbs: list, show, stats, runs, assignees."""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.board.domain import (
    Run,
    Task,
    TaskDetail,
    TaskStatus,
    format_run_id,
    format_task_id,
    format_usd,
)
from kanban_core.board.reads import SORTS, TaskFilter
from kanban_core.commands import argtypes
from kanban_core.commands.context import CommandContext
from kanban_core.commands.formatting import (
    compact,
    event_line,
    first_line,
    run_elapsed,
    status_label,
    task_table,
    timestamp,
)
from kanban_core.commands.result import Block, CommandResult, Heading, Table, Text, text
from kanban_core.errors import UsageError

SHOW_EVENTS = 20
MAX_LIST_LIMIT = 1_000_000


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    for name in ("list", "ls"):
        p = sub.add_parser(
            name,
            help="list tasks" if name == "list" else "alias of list",
            description="List tasks (archived ones are hidden).",
        )
        p.add_argument("--mine", action="store_true", help="only tasks assigned to you")
        p.add_argument("--assignee")
        p.add_argument("--status", choices=[s.value for s in TaskStatus])
        p.add_argument("--tenant")
        p.add_argument("--archived", action="store_true", help="include archived tasks")
        p.add_argument("--sort", choices=sorted(SORTS), default="priority")
        p.add_argument("--limit", type=int, metavar="N")
        p.add_argument("--json", action="store_true")
        p.set_defaults(handler=list_tasks)

    p = sub.add_parser("show", help="show one task", description="Show one task in full.")
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=show)

    p = sub.add_parser(
        "stats",
        help="counts per status and assignee",
        description="Counts per status and assignee.",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=stats)

    p = sub.add_parser("runs", help="a task's attempts", description="A task's attempts.")
    p.add_argument("task_id", type=argtypes.task_id)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=runs)

    p = sub.add_parser(
        "assignees",
        help="assignees on the board, with counts",
        description="Every assignee named on the board, with task counts.",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=assignees)


def list_tasks(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``list``."""
    if args.limit is not None and not 0 < args.limit <= MAX_LIST_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST_LIMIT}")
    assignee = ctx.actor.name if args.mine else args.assignee
    flt = TaskFilter(
        assignee=assignee,
        status=TaskStatus(args.status) if args.status else None,
        tenant=args.tenant,
        include_archived=args.archived,
        sort=args.sort,
        limit=args.limit,
    )
    board = ctx.board()
    if args.json:
        listed = board.list(flt)
        waiting = board.waiting_permissions()
        return CommandResult(
            data=[t.to_json() | {"waiting_permission": waiting.get(t.id, [])} for t in listed],
            as_json=True,
        )
    tasks = board.list_summaries(flt)
    if not tasks:
        return text("(no matching tasks)")
    return CommandResult(blocks=(task_table(tasks, board.waiting_permissions()),))


def show(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``show``."""
    # Text shows only the newest events: the rest of a long log is neither read nor decoded.
    board = ctx.board()
    detail = board.detail(args.task_id, event_limit=None if args.json else SHOW_EVENTS)
    asks = board.open_permissions(args.task_id)
    if args.json:
        return CommandResult(
            data={
                # As in list --json, so a task reads the same from either verb.
                "task": detail.task.to_json() | {"waiting_permission": [r.ref for r in asks]},
                "parents": [format_task_id(p) for p in detail.parents],
                "children": [format_task_id(c) for c in detail.children],
                "comments": [c.to_json() for c in detail.comments],
                "events": [e.to_json() for e in detail.events],
                "runs": [r.to_json() for r in detail.runs],
            },
            as_json=True,
        )
    blocks = _show_blocks(detail, paths=not ctx.from_chat)
    if asks:
        # Right under the facts: what the agent is stuck on comes before the history.
        blocks[2:2] = [Heading(f"Waiting for an answer ({len(asks)})")] + [
            Text(f"{r.ref}  {r.tool_name}: {r.summary}  ({_answer_hint(ctx, r.ref)})") for r in asks
        ]
    return CommandResult(blocks=tuple(blocks))


def _facts(detail: TaskDetail, *, paths: bool) -> Table:
    task = detail.task
    # Chat users see the kind only: the server's paths are for the local CLI.
    where = f" @ {task.workspace_path}" if task.workspace_path and paths else ""
    facts = [
        ("status", status_label(task)),
        ("assignee", task.assignee or "(unassigned)"),
        ("priority", str(task.priority)),
        ("tenant", task.tenant or "-"),
        ("workspace", task.workspace_kind.value + where),
        *_placement_facts(task),
        ("created", f"{timestamp(task.created_ms)} by {task.created_by}"),
        ("started", timestamp(task.started_ms)),
        ("completed", timestamp(task.completed_ms)),
    ]
    if task.skills:
        facts.append(("skills", ", ".join(task.skills)))
    if task.max_runtime_s:
        facts.append(("max runtime", f"{task.max_runtime_s}s"))
    if task.idempotency_key:
        facts.append(("idempotency key", task.idempotency_key))
    if task.consecutive_failures:
        facts.append(
            ("failures", f"{task.consecutive_failures} ({task.last_failure_error or '-'})")
        )
    if task.pause_reason:
        facts.append(("paused", f"{task.pause_reason} (until {timestamp(task.not_before_ms)})"))
    facts += _usage_facts(detail)
    if detail.parents:
        facts.append(("parents", " ".join(format_task_id(p) for p in detail.parents)))
    if detail.children:
        facts.append(("children", " ".join(format_task_id(c) for c in detail.children)))
    return Table(("field", "value"), tuple(facts), show_header=False)


def _placement_facts(task: Task) -> list[tuple[str, str]]:
    """``host: build-2`` or ``label: gpu``; nothing for work any host may run."""
    if task.host is not None:
        return [("host", task.host)]
    return [("label", task.host_label)] if task.host_label is not None else []


def _usage_facts(detail: TaskDetail) -> list[tuple[str, str]]:
    """The task's budget and what its runs used, as far as its agents reported."""
    task = detail.task
    facts: list[tuple[str, str]] = []
    if task.max_cost_micro_usd is not None or task.max_tokens is not None:
        limits = [format_usd(task.max_cost_micro_usd)] if task.max_cost_micro_usd else []
        limits += [f"{task.max_tokens} tokens"] if task.max_tokens else []
        facts.append(("budget", ", ".join(limits)))
    reported = [r for r in detail.runs if _usage_text(r)]
    if reported:
        tokens = sum((r.input_tokens or 0) + (r.output_tokens or 0) for r in reported)
        cost = sum(r.cost_micro_usd or 0 for r in reported)
        facts.append(("usage", f"{tokens} tokens, {format_usd(cost)}"))
    return facts


def _usage_text(run: Run) -> str:
    """``in 120 / out 30 tokens, $0.0100`` for a run that reported usage, else empty."""
    parts = []
    if run.input_tokens is not None or run.output_tokens is not None:
        parts.append(f"in {run.input_tokens or 0} / out {run.output_tokens or 0} tokens")
    if run.cost_micro_usd is not None:
        parts.append(format_usd(run.cost_micro_usd))
    return ", ".join(parts)


def _show_blocks(detail: TaskDetail, *, paths: bool) -> list[Block]:
    task = detail.task
    blocks: list[Block] = [Heading(f"{task.ref}  {task.title}"), _facts(detail, paths=paths)]
    if task.body:
        blocks += [Heading("Body"), Text(task.body)]
    if task.result:
        blocks += [Heading("Result"), Text(task.result)]
    if detail.comments:
        blocks.append(Heading(f"Comments ({len(detail.comments)})"))
        blocks += [
            Text(f"{c.author} ({timestamp(c.created_ms)}): {c.body}") for c in detail.comments
        ]
    if detail.runs:
        blocks.append(Heading(f"Runs ({len(detail.runs)})"))
        blocks += _run_lines(detail)
    shown = detail.events[-SHOW_EVENTS:]
    blocks.append(Heading(f"Events (last {len(shown)} of {detail.event_count})"))
    blocks += [Text(event_line(e)) for e in shown]
    return blocks


def _run_lines(detail: TaskDetail) -> list[Block]:
    now = max((r.ended_ms or r.started_ms) for r in detail.runs)
    lines: list[Block] = []
    for run in detail.runs:
        line = (
            f"{format_run_id(run.id)}  #{run.attempt}  {run.outcome or run.status}  "
            f"@{run.profile or '-'}  {run_elapsed(run, now)}  {timestamp(run.started_ms)}"
        )
        if run.summary:
            line += f"\n    → {first_line(run.summary, 160)}"
        if run.metadata:
            line += f"\n    ≡ {compact(run.metadata, 160)}"
        if run.error:
            line += f"\n    ! {first_line(run.error, 160)}"
        if usage := _usage_text(run):
            line += f"\n    $ {usage}"
        lines.append(Text(line))
    return lines


def stats(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``stats``."""
    board_stats = ctx.board().stats()
    if args.json:
        return CommandResult(
            data={
                "by_status": board_stats.by_status,
                "by_assignee": board_stats.by_assignee,
                "oldest_ready_age_seconds": board_stats.oldest_ready_age_seconds,
                "now": board_stats.now_ms // 1000,
                "input_tokens": board_stats.input_tokens,
                "output_tokens": board_stats.output_tokens,
                "cost_usd": board_stats.cost_micro_usd / 1_000_000,
            },
            as_json=True,
        )
    status_rows = tuple((s, str(n)) for s, n in board_stats.by_status.items())
    blocks: list[Block] = [Table(("STATUS", "COUNT"), status_rows)]
    if board_stats.by_assignee:
        rows = tuple(
            (name, " ".join(f"{s}={n}" for s, n in sorted(counts.items())))
            for name, counts in board_stats.by_assignee.items()
        )
        blocks.append(Table(("ASSIGNEE", "TASKS"), rows))
    age = board_stats.oldest_ready_age_seconds
    blocks.append(Text(f"oldest ready: {'-' if age is None else f'{age:.0f}s'}"))
    if board_stats.input_tokens or board_stats.output_tokens or board_stats.cost_micro_usd:
        # Only once some agent reported usage: zeros would read as "free", not "unmeasured".
        blocks.append(
            Text(
                f"reported usage: {board_stats.input_tokens} in / {board_stats.output_tokens} "
                f"out tokens, {format_usd(board_stats.cost_micro_usd)}"
            )
        )
    return CommandResult(blocks=tuple(blocks))


def runs(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``runs``."""
    task_id = args.task_id
    board = ctx.board()
    attempts = board.runs(task_id)
    if args.json:
        return CommandResult(data=[r.to_json() for r in attempts], as_json=True)
    if not attempts:
        return text(f"(no runs yet for {format_task_id(task_id)})")
    now = board.stats().now_ms
    rows = []
    for run in attempts:
        note = first_line(run.summary, 100) if run.summary else ""
        if run.error:
            note = (note + "  " if note else "") + "✖ " + first_line(run.error, 100)
        if usage := _usage_text(run):
            note = (note + "  " if note else "") + usage
        rows.append(
            (
                format_run_id(run.id),
                str(run.attempt),
                (run.outcome.value if run.outcome else run.status),
                run.profile or "-",
                run_elapsed(run, now),
                timestamp(run.started_ms),
                note,
            )
        )
    return CommandResult(
        blocks=(
            Table(("RUN", "#", "OUTCOME", "PROFILE", "ELAPSED", "STARTED", "NOTE"), tuple(rows)),
        )
    )


def assignees(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``assignees``: every assignee with tasks on the board, and its counts per status."""
    by_assignee = ctx.board().stats().by_assignee
    if args.json:
        return CommandResult(
            data=[{"name": name, "counts": counts} for name, counts in by_assignee.items()],
            as_json=True,
        )
    if not by_assignee:
        return text("(no assignees on the board yet)")
    rows = tuple(
        (name, " ".join(f"{s}={n}" for s, n in sorted(c.items())) or "(idle)")
        for name, c in by_assignee.items()
    )
    return CommandResult(blocks=(Table(("ASSIGNEE", "TASKS"), rows),))


def _answer_hint(ctx: CommandContext, ref: str) -> str:
    """How to answer a request where ``show`` was asked: a chat's commands, or the CLI's."""
    if ctx.from_chat:
        return f"/allow {ref} or /deny {ref}"
    return f"kanban allow {ref} / deny {ref}"
