"""The ``kanban`` console script: the kernel's command tree plus the gateway's own verb."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from kanban_core import cli as kernel_cli
from kanban_core.commands import CommandContext, CommandResult


def register(sub: Any) -> None:
    """Add ``gateway`` to the tree (a local verb: never offered in chat)."""
    p = sub.add_parser(
        "gateway",
        help="run the chat gateway: adapters, dispatcher schedule, notifications",
        description="Run the long-lived gateway: every platform enabled in config.yaml (the "
        "console when none is), the dispatcher on a schedule and on every nudge, and "
        "notifications to subscribed chats. SIGTERM or Ctrl-C stops it cleanly; running "
        "workers carry on.",
    )
    p.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default: WARNING when serving the console, whose chat is "
        "on the same terminal; INFO otherwise)",
    )
    p.set_defaults(handler=gateway)
    d = sub.add_parser(
        "doctor",
        help="check this host: database, leases, platform credentials",
        description="Check the database (reachable, schema current), the leases (which gateway "
        "runs each platform connection and the maintenance) and every enabled platform's "
        "credentials (present in the environment, never printed) and server (reachable). "
        "Exit 0 when all is well, 1 otherwise.",
    )
    d.add_argument("--json", action="store_true", help="print the checks as JSON")
    d.set_defaults(handler=doctor)


def doctor(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``doctor``: say what is wrong with this host's setup, in plain words."""
    from gateway.doctor import Status, diagnose, render
    from kanban_core import KanbanError, KernelSettings
    from kanban_core.commands.result import text
    from kanban_core.config import config_path

    try:
        settings = KernelSettings.from_environ(ctx.environ, db_url=ctx.db_url)
    except KanbanError as exc:
        return CommandResult(exit_code=1, errors=(f"FAIL config: {exc}",))
    checks = diagnose(settings, config_path(ctx.environ, settings.home), ctx.environ)
    code = 1 if any(c.status is Status.FAIL for c in checks) else 0
    if args.json:
        data = {"ok": code == 0, "checks": [c.to_json() for c in checks]}
        return CommandResult(exit_code=code, data=data, as_json=True)
    return text(*render(checks), exit_code=code)


def gateway(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``gateway``: serve until stopped."""
    import logging

    from gateway.app import run_gateway  # the asyncio stack loads only for this verb
    from gateway.config import load_gateway_config
    from gateway.errors import ConfigError, GatewayError
    from kanban_core import KanbanError, KernelSettings
    from kanban_core.config import config_path, load_config

    # The whole file (the kernel's sections, the gateway's, every platform's) is one schema:
    # every problem is reported in one go, one line each.
    try:
        settings = KernelSettings.from_environ(ctx.environ, db_url=ctx.db_url)
        load_config(config_path(ctx.environ, settings.home), ctx.environ)
        gateway_config = load_gateway_config(config_path(ctx.environ, settings.home))
    except KanbanError as exc:
        return CommandResult(exit_code=1, errors=(str(exc),))
    except ConfigError as exc:
        return CommandResult(exit_code=1, errors=("\n".join(exc.problems),))
    # The console's chat shares the terminal with stderr: only warnings and errors, unless asked.
    level = args.log_level or (
        "WARNING" if "console" in gateway_config.enabled_platforms else "INFO"
    )
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = run_gateway(settings, ctx.environ)
    except GatewayError as exc:
        return CommandResult(exit_code=1, errors=(str(exc),))
    return CommandResult(exit_code=code)


#: The kernel's everyday verbs: for these the verbs of installed surfaces (``kanban web``) are
#: not looked up, since scanning the installed packages' entry points costs a good part of a
#: short call. A verb missing here only costs that scan.
_KERNEL_VERBS = frozenset(
    {
        "list", "ls", "show", "create", "edit", "assign", "comment", "link", "unlink",
        "complete", "block", "unblock", "accept", "archive", "claim", "heartbeat", "reclaim",
        "stats",
        "runs", "tail", "watch", "context", "log", "status", "dispatch", "mcp", "worker",
        "init", "allow", "deny", "permissions", "ws", "progress", "assignees", "audit", "gc",
    }
)  # fmt: skip


def _verb(args: Sequence[str]) -> str | None:
    """The verb of a command line (the word after the global options), if any."""
    words = iter(args)
    for word in words:
        if word == "--db":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kanban`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _verb(args) in _KERNEL_VERBS:
        return kernel_cli.main(args, extra=(register,))
    from gateway.surfaces import verb_registrars

    return kernel_cli.main(args, extra=(register, *verb_registrars()))


if __name__ == "__main__":
    sys.exit(main())
