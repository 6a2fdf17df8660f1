"""Verbs for the machine the caller runs on, never offered in chat: mcp, worker."""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Any

from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "mcp",
        help="serve the board to a coding agent over MCP (stdio)",
        description="Serve the board's worker tools (kanban_show, kanban_complete, kanban_block, "
        "kanban_heartbeat, kanban_comment, kanban_create, kanban_link) over MCP on stdin/stdout "
        "until stdin closes. A worker's identity comes from KANBAN_TASK, KANBAN_RUN_ID and "
        "KANBAN_RUN_TOKEN.",
    )
    p.set_defaults(handler=mcp)

    p = sub.add_parser(
        "worker",
        help="internal: supervise one worker run (started by the dispatcher)",
        description="Internal. Reads a worker spec on stdin and the run token from "
        "KANBAN_SUPERVISOR_TOKEN, then prepares the workspace, runs the agent, renews its "
        "lease and records a verdict if the agent leaves none.",
    )
    p.set_defaults(handler=worker)


def mcp(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``mcp``: serve until the client closes stdin, then exit quietly."""
    del args
    # Imported here so that every other verb (and chat) runs without loading the MCP SDK.
    from kanban_core.dispatch.mcp_server import run_stdio

    # Opened before serving so a wrong database URL fails the command, not the first tool call.
    board = ctx.board()
    # Ctrl-C is how a person stops a server they started by hand; not an error.
    with contextlib.suppress(KeyboardInterrupt):
        run_stdio(board, ctx.actor, ctx.environ)
    return CommandResult()


def worker(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``worker``: the supervisor's entry point (the spec arrives on stdin, never in argv)."""
    del args
    from kanban_core.commands.capability import RunDoor
    from kanban_core.dispatch import supervisor

    code = supervisor.main(sys.stdin.read(), ctx.environ, open_door=RunDoor)
    return CommandResult(exit_code=code)
