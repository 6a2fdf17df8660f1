"""The shared command tree: one argparse tree for the ``kanban`` CLI and every chat platform.

``run_command(argv, ctx)`` never prints and never exits; it returns a CommandResult that the CLI
prints and the gateway renders.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from kanban_core.commands import (
    admin,
    authoring,
    inspection,
    lifecycle,
    notifications,
    streams,
)
from kanban_core.commands.context import CommandContext
from kanban_core.commands.parser import CommandParser
from kanban_core.commands.result import CommandResult, Text
from kanban_core.errors import HelpRequested, KanbanError, UsageError

__all__ = [
    "CommandContext",
    "CommandParser",
    "CommandResult",
    "build_parser",
    "run_command",
    "split_command_line",
]

_MODULES = (admin, authoring, lifecycle, inspection, streams, notifications)

# What chat keyboards substitute for what the user meant to type.
_TYPOGRAPHY = str.maketrans(
    {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "}
)


def build_parser(*, prog: str = "kanban", with_db_option: bool = True) -> CommandParser:
    """Build the tree. Chat front ends pass ``with_db_option=False``: a chat never picks a DB."""
    parser = CommandParser(
        prog=prog,
        description="A kanban board of agent work. Every verb also works from chat as /kanban.",
    )
    if with_db_option:
        parser.add_argument(
            "--db",
            metavar="URL",
            help="database URL: sqlite:///path or postgresql://user@host/db "
            "(env: KANBAN_DB_URL; default: $KANBAN_HOME/kanban.db)",
        )
    sub = parser.add_subparsers(dest="verb", metavar="<verb>", parser_class=CommandParser)
    for module in _MODULES:
        module.register(sub)
    return parser


def run_command(
    argv: Sequence[str], ctx: CommandContext, *, parser: CommandParser | None = None
) -> CommandResult:
    """Parse and run one command; every failure comes back as a result with an exit code."""
    tree = parser or build_parser()
    try:
        args = tree.parse_args(list(argv))
        if getattr(args, "verb", None) is None:
            raise HelpRequested(tree.format_help())
        if getattr(args, "db", None):
            ctx.db_url = args.db
        result: CommandResult = args.handler(ctx, args)
    except HelpRequested as exc:
        return CommandResult(blocks=(Text(exc.text.rstrip()),))
    except UsageError as exc:
        message = f"usage error: {exc}"
        return CommandResult(
            exit_code=2, errors=((exc.usage + "\n" if exc.usage else "") + message,)
        )
    except KanbanError as exc:
        return CommandResult(exit_code=exc.exit_code, errors=(str(exc),))
    return result


def split_command_line(line: str) -> list[str]:
    """Split a chat line like a shell would, after undoing smart quotes and em dashes."""
    normalised = line.translate(_TYPOGRAPHY)
    # An em or en dash at the start of a word is a flag prefix the keyboard "corrected".
    normalised = " ".join(
        "--" + word[1:] if word[:1] in ("\u2014", "\u2013") else word
        for word in normalised.split(" ")
    )
    try:
        return shlex.split(normalised)
    except ValueError as exc:
        raise UsageError(f"cannot parse the command line: {exc} (check your quotes)") from None
