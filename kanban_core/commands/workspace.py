"""The ``ws`` verb: workspaces, sessions, follow-ups and the queue (git lives in workspace_git)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kanban_core.board.domain import TaskId
from kanban_core.board.exec_records import ExecCommand
from kanban_core.commands import workspace_git, workspace_show
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import Action, CommandResult, Heading, Table, Text
from kanban_core.commands.workspace_access import caller, host_of, service, workspace, ws_json
from kanban_core.commands.workspace_remote import ask_host, elsewhere, on_workspace_host

if TYPE_CHECKING:
    # The workspace machinery (git, GitHub, the service) loads only for `ws` commands, so
    # `kanban list` stays a short process.
    from kanban_core.workspaces.interactive.turns import TurnRequest


def register(sub: Any) -> None:
    """Add ``ws`` and its subcommands to the tree."""
    ws = sub.add_parser(
        "ws",
        help="workspaces: git worktrees per task where an agent works in sessions",
        description="Workspaces: a task's git worktrees (one per repository, on its own branch) "
        "where a coding agent works in sessions. Commits, pushes and PRs happen only when you "
        "ask, after you confirm.",
    )
    verbs = ws.add_subparsers(
        dest="ws_verb", metavar="<subcommand>", required=True, parser_class=type(ws)
    )

    p = verbs.add_parser("new", help="create a workspace and start its first session")
    p.add_argument("title")
    p.add_argument("--body")
    p.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="NAME",
        help="a configured repository (repeat for several)",
    )
    p.add_argument("--base", help="the branch to start from (default: the repo's default)")
    p.add_argument("--branch", help="a branch name of your own (default: kanban/<id>-<slug>)")
    p.add_argument("--agent", help="the agent profile (default: workspaces.agent)")
    p.add_argument(
        "--spec",
        default="",
        metavar="ID",
        help="the spec id for a feature/task-{spec_id}-{task_number}-… template",
    )
    p.add_argument("--task-number", default="", metavar="N")
    p.set_defaults(handler=new)

    p = verbs.add_parser("list", help="active workspaces (--archived for the others)")
    p.add_argument("--archived", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=listing)

    p = verbs.add_parser("show", help="a workspace: repos, sessions, queue, pending requests")
    _ws_arg(p, positional=True)
    p.add_argument(
        "--audit",
        type=workspace_show.audit_count,
        default=workspace_show.AUDIT_SHOWN,
        metavar="N",
        help=f"how many of the newest audit rows to show (default {workspace_show.AUDIT_SHOWN}, "
        f"at most {workspace_show.AUDIT_MAX})",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=workspace_show.show)

    for name, helptext in (
        ("use", "make this chat talk to a workspace"),
        ("pin", "list it first"),
        ("unpin", "stop listing it first"),
        ("archive", "hide it; worktrees, branches and history stay"),
    ):
        p = verbs.add_parser(name, help=helptext)
        _ws_arg(p, positional=True)
        p.set_defaults(handler=lifecycle, action=name)

    p = verbs.add_parser("unarchive", help="bring it back (recreating removed worktrees)")
    _ws_arg(p, positional=True)
    p.set_defaults(handler=unarchive)

    p = verbs.add_parser("rename", help="change the display name")
    p.add_argument("name")
    _ws_arg(p)
    p.set_defaults(handler=rename)

    p = verbs.add_parser("new-session", help="start another conversation with the agent")
    p.add_argument("message", nargs="?", help="the first message (optional)")
    p.add_argument("--name")
    p.add_argument("--executor", help="the agent profile for this session")
    _ws_arg(p)
    p.set_defaults(handler=new_session)

    p = verbs.add_parser("sessions", help="list sessions, show one's history, or switch")
    p.add_argument("action", nargs="?", choices=("list", "show", "use"), default="list")
    p.add_argument("session", nargs="?", help="a session number or id")
    p.add_argument("--json", action="store_true", help="show: the session and its messages")
    _ws_arg(p)
    p.set_defaults(handler=sessions)

    p = verbs.add_parser("follow-up", help="send the agent a message (queued while it runs)")
    p.add_argument("message")
    p.add_argument("--executor", help="refuse unless the session uses this agent")
    _ws_arg(p)
    p.set_defaults(handler=follow_up)

    p = verbs.add_parser("stop", help="stop the agent's current turn (the queue pauses)")
    _ws_arg(p)
    p.set_defaults(handler=stop)

    p = verbs.add_parser("queue", help="queued follow-ups: show, run the next, or clear")
    p.add_argument("action", nargs="?", choices=("show", "run", "clear"), default="show")
    _ws_arg(p)
    p.set_defaults(handler=queue)

    p = verbs.add_parser("summary", help="what the agent said last and what changed")
    _ws_arg(p)
    p.set_defaults(handler=summary)

    workspace_git.register(verbs)


def _ws_arg(p: argparse.ArgumentParser, *, positional: bool = False) -> None:
    if positional:
        p.add_argument("ws", nargs="?", metavar="WS", help="workspace id (default: this chat's)")
    else:
        p.add_argument("--ws", metavar="WS", help="workspace id (default: this chat's)")


# -- handlers --------------------------------------------------------------------------------


def new(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws new``."""
    svc = service(ctx)
    made = svc.create(
        caller(ctx),
        title=args.title,
        body=args.body,
        repos=args.repo,
        base=args.base,
        branch=args.branch,
        executor=args.agent,
        spec_id=args.spec,
        task_number=args.task_number,
    )
    ws = made.workspace
    lines = [
        f"{'Created' if made.created else 'Already created'} {ws.id} — {ws.name}",
        f"task t{ws.task_id}, branch {ws.branch}, agent {ws.executor}",
        *(f"  {r.slug}: {r.worktree} (from {r.base_ref} @ {r.base_oid[:12]})" for r in ws.repos),
        *(f"⚠ {w}" for w in made.warnings),
    ]
    if made.first_turn is not None:
        lines.append("The agent starts on it now (session 1). Talk to it here; /diff to review.")
    return CommandResult(
        blocks=(Text("\n".join(lines)),),
        data={"workspace": ws.id},
        created=(ws.task_id,) if made.created else (),
    )


def listing(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws list``."""
    found = service(ctx).listing(archived=args.archived)
    hosts = [host_of(ctx, ws) for ws in found]
    data = [ws_json(ws, host) for ws, host in zip(found, hosts, strict=True)]
    if args.json:
        return CommandResult(data=data, as_json=True)
    if not found:
        empty = (
            "no archived workspaces"
            if args.archived
            else 'no workspaces yet: /ws new "title" --repo <name>'
        )
        return CommandResult(blocks=(Text(empty),))
    # The host column appears once some workspace lives on an enrolled host.
    shown = any(hosts)
    rows = tuple(
        (
            ws.id,
            ("📌 " if ws.pinned else "") + ws.name[:40],
            ws.shown_status,
            f"t{ws.task_id}",
            ",".join(r.slug for r in ws.repos),
            ws.branch,
            *((host or "-",) if shown else ()),
        )
        for ws, host in zip(found, hosts, strict=True)
    )
    heads = ("ID", "NAME", "STATUS", "TASK", "REPOS", "BRANCH", *(("HOST",) if shown else ()))
    return CommandResult(blocks=(Table(heads, rows),))


def lifecycle(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws use|pin|unpin|archive``: the board only, so they run wherever they are asked."""
    svc = service(ctx)
    ws = svc.resolve(args.ws, caller(ctx).place)
    who = caller(ctx)
    if args.action == "use":
        svc.use(ws, who)
        done = f"this chat now talks to {ws.id} — {ws.name}"
    elif args.action in ("pin", "unpin"):
        svc.pin(ws, args.action == "pin", who)
        done = f"{ws.id} {args.action}ned"
    else:
        svc.archive(ws, who)
        done = (
            f"{ws.id} archived: hidden from /ws list; worktrees, branch {ws.branch} and the "
            "sessions are kept (/ws unarchive brings it back)"
        )
    return CommandResult(blocks=(Text(done),))


@on_workspace_host(ExecCommand.UNARCHIVE)
def unarchive(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws unarchive``: on the workspace's host, which recreates removed worktrees on its disk."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    notes = svc.unarchive(ws, caller(ctx))
    return CommandResult(blocks=tuple(Text(line) for line in (f"{ws.id} unarchived", *notes)))


def rename(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws rename``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    svc.rename(ws, args.name, caller(ctx))
    return CommandResult(blocks=(Text(f"{ws.id} renamed (the branch and paths are unchanged)"),))


@on_workspace_host(ExecCommand.NEW_SESSION)
def new_session(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws new-session``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    who = caller(ctx)
    session = svc.new_session(ws, who, name=args.name, executor=args.executor)
    lines = [
        f"session {session.position} started with {session.executor}; it is now active "
        "(switch back: /sessions use 1)"
    ]
    started: tuple[TaskId, ...] = ()
    if args.message:
        request = svc.follow_up(svc.get(ws.id), who, args.message)
        lines.append(_turn_line(request))
        if request.turn_id is not None and not request.duplicate:
            started = (ws.task_id,)
    # `created` names the task whose turn started: the chat is subscribed, the dispatcher woken.
    return CommandResult(blocks=tuple(Text(line) for line in lines), created=started)


def sessions(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws sessions [list|show N|use N]``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    if args.action == "use":
        session = svc.use_session(ws, args.session or "")
        return CommandResult(blocks=(Text(f"session {session.position} is now active"),))
    if args.action == "show" or args.session:
        session = svc.session_of(ws, args.session)
        history = svc.history(session)
        if args.json:
            return CommandResult(
                data=workspace_show.session_json(ws, session, history), as_json=True
            )
        lines = [f"[{m.role}] {m.author}: {m.text[:1000]}" for m in history]
        return CommandResult(
            blocks=(
                Heading(
                    f"session {session.position} ({session.executor}, agent session "
                    f"{session.agent_session_id})"
                ),
                Text("\n".join(lines) or "(no messages yet)"),
            )
        )
    rows = tuple(
        (
            ("▶ " if s.id == ws.active_session_id else "") + str(s.position),
            s.name or "-",
            s.executor,
            state.value,
            str(count),
            s.id,
        )
        for s, state, count in svc.sessions(ws)
    )
    return CommandResult(blocks=(Table(("#", "NAME", "AGENT", "STATE", "MESSAGES", "ID"), rows),))


@on_workspace_host(ExecCommand.FOLLOW_UP)
def follow_up(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws follow-up``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    request = svc.follow_up(ws, caller(ctx), args.message, executor=args.executor)
    result = CommandResult(blocks=(Text(_turn_line(request)),), data={"turn": request.turn_id})
    if request.turn_id is not None and not request.duplicate:
        return CommandResult(blocks=result.blocks, data=result.data, created=(ws.task_id,))
    return result


def stop(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws stop``."""
    svc = service(ctx)
    return CommandResult(blocks=(Text(svc.stop(workspace(ctx, args, svc), caller(ctx))),))


def queue(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws queue [show|run|clear]``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    if args.action == "run":
        started = svc.queue_run(ws, caller(ctx))
        line = f"started turn {started}" if started else "nothing to start (or a turn is running)"
        return CommandResult(blocks=(Text(line),), created=(ws.task_id,) if started else ())
    if args.action == "clear":
        return CommandResult(
            blocks=(Text(f"{svc.queue_clear(ws, caller(ctx))} follow-up(s) cancelled"),)
        )
    lines = []
    for session, items in svc.queue(ws):
        if session.queue_paused:
            lines.append(f"session {session.position}: PAUSED — {session.pause_reason}")
        lines += [f"  {n}. {item.text[:200]} ({item.principal})" for n, item in enumerate(items, 1)]
    paused = any(s.queue_paused for s, _ in svc.queue(ws))
    actions = (
        (
            Action("Run next", f"k:queue run --ws {ws.id}"),
            Action("Clear", f"k:queue clear --ws {ws.id}"),
        )
        if paused
        else ()
    )
    return CommandResult(blocks=(Text("\n".join(lines) or "the queue is empty"),), actions=actions)


def summary(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws summary``: the agent's last words in each session and the changed files."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    blocks: list[Any] = [Heading(f"{ws.id} — {ws.name} ({ws.shown_status})")]
    for session, _state, _count in svc.sessions(ws):
        said = [m for m in svc.history(session, limit=10) if m.role == "assistant"]
        if said:
            blocks.append(Text(f"session {session.position}: {said[-1].text[:1500]}"))
    actions = workspace_git.review_actions(ws)
    host = elsewhere(ctx, ws)
    if host is None:
        blocks.append(Text("\n".join(workspace_git.flow(ctx, svc).status(ws, None))))
        return CommandResult(blocks=tuple(blocks), actions=actions)
    # The changed files are on the other host's disk: this one's is never read for them (a
    # checkout at the same path here is another tree). The board's part is answered at once.
    blocks.append(Text(f"changed files: on host {host.name}'s disk"))
    there = ask_host(ctx, ExecCommand.STATUS, ws, host)
    return CommandResult(
        exit_code=there.exit_code,
        blocks=(*blocks, *there.blocks),
        errors=there.errors,
        data=there.data,
        actions=actions,
    )


def _turn_line(request: TurnRequest) -> str:
    if request.duplicate:
        return "(already received)"
    if request.turn_id is not None:
        return f"sent to the agent (turn {request.turn_id})"
    paused = " — the queue is PAUSED: /queue run to go on" if request.paused else ""
    return f"queued (position {request.position}); it runs when the current turn succeeds{paused}"
