"""The shared command tree: one argparse tree for the ``kanban`` CLI and every chat platform.

``run_command(argv, ctx)`` never prints and never exits; it returns a CommandResult that the CLI
prints and the gateway renders.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
from collections.abc import Callable, Sequence
from typing import Any

from kanban_core.board.kanban import OnMissing
from kanban_core.commands import (
    admin,
    authoring,
    hosts,
    inspection,
    lifecycle,
    local,
    notifications,
    operations,
    permissions,
    streams,
    workspace,
)
from kanban_core.commands.chat_view import hide_paths
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

_MODULES = (
    admin,
    authoring,
    lifecycle,
    inspection,
    streams,
    notifications,
    operations,
    permissions,
    workspace,
)

# What chat keyboards substitute for what the user meant to type.
_TYPOGRAPHY = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00a0": " "})
# A curly single quote at the edge of a word is a quote; inside a word it is an apostrophe.
_CURLY_SINGLE = re.compile(r"(?<!\w)[\u2018\u2019]|[\u2018\u2019](?!\w)")


def build_parser(
    *,
    prog: str = "kanban",
    with_db_option: bool = True,
    local_verbs: bool = True,
    extra: Sequence[Callable[[Any], None]] = (),
) -> CommandParser:
    """Build the tree. Chat front ends pass ``with_db_option=False``: a chat never picks a DB,
    and ``local_verbs=False``: verbs like ``mcp`` talk to this machine's stdin, not a chat.
    ``extra`` registers verbs from layers above the kernel (the gateway adds ``gateway``)."""
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
    for register in extra:
        register(sub)
    if local_verbs:
        local.register(sub)
        hosts.register(sub)
    _register_help(sub, parser)
    parser.verb_parsers = dict(sub.choices)
    return parser


def _register_help(sub: Any, tree: CommandParser) -> None:
    """``help [VERB]``: what people type first, in a terminal and in every chat."""
    p = sub.add_parser(
        "help",
        help="list the verbs, or show one verb's options",
        description="List the verbs, or show one verb's options (same as VERB --help).",
    )
    p.add_argument("topic", nargs="?", metavar="VERB")

    def show(ctx: CommandContext, args: Any) -> CommandResult:
        del ctx
        if args.topic is None:
            return CommandResult(blocks=(Text(tree.format_help().rstrip()),))
        verb = tree.verb_parsers.get(args.topic)
        if verb is None:
            raise UsageError(f"unknown verb {args.topic!r}; `help` lists them")
        return CommandResult(blocks=(Text(verb.format_help().rstrip()),))

    p.set_defaults(handler=show)


def run_command(
    argv: Sequence[str], ctx: CommandContext, *, parser: CommandParser | None = None
) -> CommandResult:
    """Parse and run one command; every failure comes back as a result with an exit code."""
    tree = parser or _default_tree()
    try:
        args, extras = tree.parse_known_args(list(argv))
        if extras:
            verb_parser = tree.verb_parsers.get(getattr(args, "verb", None) or "", tree)
            raise UsageError(
                f"unrecognized arguments: {' '.join(extras)}",
                usage=verb_parser.format_usage().strip(),
            )
        if getattr(args, "verb", None) is None:
            raise HelpRequested(tree.format_help())
        if getattr(args, "db", None):
            ctx.db_url = args.db
        ctx.on_missing = getattr(args, "on_missing", OnMissing.REFUSE)
        result: CommandResult = args.handler(ctx, args)
    except HelpRequested as exc:
        return CommandResult(blocks=(Text(exc.text.rstrip()),))
    except UsageError as exc:
        usage = exc.usage or _usage_of(tree, argv)
        message = f"usage error: {exc}"
        return CommandResult(exit_code=2, errors=((usage + "\n" if usage else "") + message,))
    except KanbanError as exc:
        return CommandResult(exit_code=exc.exit_code, errors=(str(exc),))
    if ctx.from_chat and result.data is not None:
        # One seam for every --json shape: chat users never see the server's paths.
        result = dataclasses.replace(result, data=hide_paths(result.data))
    return result


def split_command_line(line: str) -> list[str]:
    """Split a chat line like a shell would, after undoing smart quotes and em dashes."""
    try:
        words = shlex.split(_CURLY_SINGLE.sub("'", line.translate(_TYPOGRAPHY)))
    except ValueError as exc:
        raise UsageError(f"cannot parse the command line: {exc} (check your quotes)") from None
    # A word that starts with an em or en dash and a letter is a flag the keyboard "corrected";
    # dashes inside quoted prose are left alone.
    return [
        "--" + word[1:] if word[:1] in ("\u2014", "\u2013") and word[1:2].isalpha() else word
        for word in words
    ]


def _usage_of(tree: CommandParser, argv: Sequence[str]) -> str:
    """The usage line of the verb in argv (for errors a handler raises after parsing)."""
    verb = next((word for word in argv if word in tree.verb_parsers), None)
    parser = tree.verb_parsers.get(verb or "", tree)
    return parser.format_usage().strip()


@functools.lru_cache(maxsize=1)
def _default_tree() -> CommandParser:
    # Building the tree costs milliseconds (argparse looks up translations for every verb);
    # parsing never changes it, so one is enough per process.
    return build_parser()
