"""Workspace commands asked on a host that does not hold the workspace's files.

A ``ws`` handler that needs the disk is wrapped by ``on_workspace_host``: when the workspace is
bound to another enrolled host, the command becomes an execution request for that host (typed
command plus its parsed arguments; never a command line) instead of running here. A chat gets
"sent to host …" at once and the answer later through the outbox; a terminal waits for it.
A command answered mostly from the board (``ws summary``) sends only its disk part with
``ask_host``; one that only shows (``ws show``) asks ``elsewhere`` and reads no disk for it.
"""

from __future__ import annotations

import argparse
import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kanban_core.board import exec_records as records, exec_requests
from kanban_core.board.exec_records import ExecCommand
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, Text
from kanban_core.errors import ValidationError

Handler = Callable[[CommandContext, argparse.Namespace], CommandResult]
#: Places whose answers are not chat messages any gateway can send: the web board (a browser
#: session) and a gateway's console (its own terminal; another host's console must not print it).
UNFORWARDED_PLACES = frozenset({"web", "console"})
#: How often a waiting terminal looks at its request (a local read; the wait is bounded).
POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ArgSpec:
    """The arguments a command carries: positionals, valued options, and on/off flags."""

    positional: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    flags: dict[str, str] = field(default_factory=dict)


_REPO = {"repo": "--repo"}
SPECS: dict[ExecCommand, ArgSpec] = {
    ExecCommand.STATUS: ArgSpec(options=_REPO),
    ExecCommand.DIFF: ArgSpec(("path",), _REPO),
    ExecCommand.COMMIT: ArgSpec(("message",), {"scope": "--scope", **_REPO}),
    ExecCommand.PUSH: ArgSpec(options=_REPO, flags={"force_with_lease": "--force-with-lease"}),
    ExecCommand.PR: ArgSpec(("title",), _REPO, {"draft": "--draft"}),
    ExecCommand.ATTACH: ArgSpec(("ref",), _REPO, {"force_attach": "--force-attach"}),
    ExecCommand.RUN: ArgSpec(("script",), _REPO),
    ExecCommand.DELETE: ArgSpec(flags={"delete_branch": "--delete-branch"}),
    ExecCommand.UNARCHIVE: ArgSpec(),
    ExecCommand.FOLLOW_UP: ArgSpec(("message",), {"executor": "--executor"}),
    ExecCommand.NEW_SESSION: ArgSpec(("message",), {"name": "--name", "executor": "--executor"}),
    ExecCommand.APPROVE: ArgSpec(("request",), {"nonce": "--nonce"}),
    ExecCommand.DENY: ArgSpec(("request",), {"nonce": "--nonce"}),
}
#: What a request carries besides the command's arguments: the asking chat's inline budget.
META = frozenset({"_budget"})
#: Commands whose workspace is named by a positional word rather than ``--ws``, and those that
#: name none (an approval knows its workspace).
_WS_POSITIONAL = frozenset({ExecCommand.DELETE, ExecCommand.UNARCHIVE})
_WS_IMPLIED = frozenset({ExecCommand.APPROVE, ExecCommand.DENY})


def to_args(command: ExecCommand, ns: argparse.Namespace) -> dict[str, Any]:
    """The parsed arguments a request carries (only the command's own, typed)."""
    spec = SPECS[command]
    out: dict[str, Any] = {}
    for name in (*spec.positional, *spec.options):
        value = getattr(ns, name, None)
        if value is not None:
            out[name] = str(value)
    for name in spec.flags:
        if getattr(ns, name, False):
            out[name] = True
    return out


def to_argv(command: ExecCommand, args: dict[str, Any], ws_id: str) -> list[str]:
    """The argv the target host runs: rebuilt from the typed arguments, refusing anything else."""
    spec = SPECS[command]
    known = {*spec.positional, *spec.options, *spec.flags, *META}
    if unknown := sorted(set(args) - known):
        raise ValidationError(f"request carries unknown arguments: {', '.join(unknown)}")
    argv = ["ws", command.value]
    if command in _WS_POSITIONAL:
        argv.append(ws_id)
    elif command not in _WS_IMPLIED:
        argv += ["--ws", ws_id]
    for name, flag in spec.options.items():
        if name in args:
            argv += [flag, _text(args[name], name)]
    for name, flag in spec.flags.items():
        if args.get(name) is True:
            argv.append(flag)
    positional = [_text(args[name], name) for name in spec.positional if name in args]
    # After "--" a word is never an option, whatever it starts with.
    return argv + (["--", *positional] if positional else [])


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"request argument {name} is not text")
    return value


def on_workspace_host(
    command: ExecCommand,
    ws_of: Callable[[CommandContext, argparse.Namespace], Any] | None = None,
    pick: Callable[[argparse.Namespace], ExecCommand] | None = None,
) -> Callable[[Handler], Handler]:
    """Run the handler here, or send it to the host that holds the workspace's files.

    ``ws_of`` finds the workspace for commands that do not name it (an approval's); ``pick``
    chooses the command for a handler that serves two (approve and deny).
    """

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
            if ctx.exec_request is not None:
                return handler(ctx, args)  # already on the workspace's host
            ws = (ws_of or _named_workspace)(ctx, args)
            host = None if ws is None else elsewhere(ctx, ws)
            if host is None:
                return handler(ctx, args)
            chosen = pick(args) if pick is not None else command
            return _forward(ctx, chosen, to_args(chosen, args), ws, host)

        return run

    return wrap


def elsewhere(ctx: CommandContext, ws: Any) -> records.WorkspaceHost | None:
    """The enrolled host holding the workspace's files, when it is not this one; else None."""
    if ctx.exec_request is not None:
        return None  # a request being run: this is the workspace's host
    board = ctx.board()
    with board.db.transaction(write=False) as tx:
        return exec_requests.workspace_elsewhere(tx, ws.task_id, board.host)


def unsendable(ctx: CommandContext, ws: Any, host: records.WorkspaceHost) -> str | None:
    """Why this caller's command cannot be sent to ``host``; None when it can."""
    if ctx.place is not None and ctx.place[0] in UNFORWARDED_PLACES:
        # No chat for the answer to go to, and the surface must not hold the gateway's thread
        # until the expiry: it is asked in chat, a terminal, or on that host.
        return (
            f"workspace {ws.id} is on host {host.name!r}; ask in chat or in a terminal "
            "(`kanban ws …` waits for the answer), or on that host"
        )
    if not ctx.from_chat and ctx.board().host is None:
        return (
            f"workspace {ws.id} is on host {host.name!r}; run this there, or enroll this "
            "machine (`kanban host enroll`) to send it"
        )
    return None


def ask_host(
    ctx: CommandContext, command: ExecCommand, ws: Any, host: records.WorkspaceHost
) -> CommandResult:
    """``command`` (no arguments) sent to ``host`` as part of an answer given here.

    A chat gets the "sent to host" line (the answer follows as its own message), a terminal the
    answer itself; where nothing can be sent, the reason as a line, and nothing is queued. A
    refusal (a revoked host) is this part's error: the rest of the answer stands.
    """
    if (reason := unsendable(ctx, ws, host)) is not None:
        return CommandResult(blocks=(Text(reason),))
    try:
        return _forward(ctx, command, {}, ws, host)
    except ValidationError as exc:
        return CommandResult(exit_code=1, errors=(str(exc),))


def _named_workspace(ctx: CommandContext, args: argparse.Namespace) -> Any:
    from kanban_core.commands.workspace_access import service, workspace

    return workspace(ctx, args, service(ctx))


def _forward(
    ctx: CommandContext,
    command: ExecCommand,
    args: dict[str, Any],
    ws: Any,
    host: records.WorkspaceHost,
) -> CommandResult:
    if (reason := unsendable(ctx, ws, host)) is not None:
        raise ValidationError(reason)
    board = ctx.board()
    here = board.host
    if ctx.chat_budget is not None:
        args = {**args, "_budget": ctx.chat_budget}
    platform, chat_id, thread_id = ctx.place or (records.CLI_PLATFORM, ctx.actor.name, "")
    requester = records.Requester(
        platform=platform,
        user_id=ctx.principal or f"cli:{ctx.actor.name}",
        user_name=ctx.actor.name,
        chat_id=chat_id,
        thread_id=thread_id,
        role=ctx.role or "terminal",
        host_id=here.host_id if here is not None else None,
    )
    # A chat message retried or redelivered carries the same delivery key: one request.
    key = f"{ctx.source_key}:{command.value}" if ctx.source_key else secrets.token_hex(16)
    ttl_s = ctx.config().workspaces.request_expiry_seconds
    with board.db.transaction(write=True) as tx:
        request_id, seen = exec_requests.create(
            tx,
            command=command,
            args=args,
            workspace_id=ws.id,
            task_id=ws.task_id,
            host=host,
            requester=requester,
            key=key,
            ttl_ms=ttl_s * 1000,
        )
    line = f"{'already ' if seen else ''}sent to host {host.name} (request {request_id})"
    if ctx.from_chat:
        return CommandResult(blocks=(Text(line),), data={"exec_request": request_id})
    return _wait(ctx, request_id, ttl_s, line)


def _wait(ctx: CommandContext, request_id: int, ttl_s: int, line: str) -> CommandResult:
    """A terminal waits for the answer, up to the request's expiry (then expires it itself)."""
    import time

    board = ctx.board()
    deadline = time.monotonic() + ttl_s + 1.0
    while True:
        with board.db.transaction(write=False) as tx:
            request = exec_requests.get(tx, request_id)
        if request is None or request.state in records.FINAL_STATES:
            return _answer(request, line)
        if time.monotonic() >= deadline:
            with board.db.transaction(write=True) as tx:
                exec_requests.expire_overdue(tx)
                request = exec_requests.get(tx, request_id)
            if request is None or request.state in records.FINAL_STATES:
                return _answer(request, line)
            deadline = time.monotonic() + 1.0  # running: the host finishes or is seen missing
        ctx.sleep(POLL_S)


def _answer(request: records.ExecRequest | None, line: str) -> CommandResult:
    if request is None:  # only a gc with no retention removes a finished request this soon
        return CommandResult(
            exit_code=1, errors=(f"{line}: it ended and gc removed it; see `kanban audit`",)
        )
    text = request.result or ""
    if request.state is records.ExecState.DONE:
        code = request.exit_code or 0
        return CommandResult(exit_code=code, blocks=(Text(f"{line}:"), Text(text)))
    return CommandResult(exit_code=1, errors=(f"{line}: {text}",))
