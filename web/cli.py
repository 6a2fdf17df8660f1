"""``kanban web``: serve the board on its own, print a login link, list or revoke sessions.

Registered into the tree through the ``kanban_gateway.verbs`` entry point; this module stays
cheap to import (the server's stack loads only when a verb runs).
"""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.commands import CommandContext, CommandResult
from kanban_core.commands.result import Table, Text


def register(sub: Any) -> None:
    """Add ``web`` to the tree (a local verb: never offered in chat)."""
    p = sub.add_parser(
        "web",
        help="the web board: serve it, print a login link, list or revoke sessions",
        description="Serve the web board on its own (kanban gateway serves it too when "
        "web.enabled is true), print a single-use login link, or manage sign-ins.",
    )
    p.add_argument("--host", help="address to listen on (default: web.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: web.port, 8787)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"], default="INFO")
    p.set_defaults(handler=serve, web_verb=None)
    verbs = p.add_subparsers(dest="web_verb", metavar="<command>", parser_class=type(p))
    link = verbs.add_parser(
        "login-link",
        help="print a single-use sign-in link (expires in web.link_ttl_minutes)",
        description="Print a single-use link that signs a browser in. Without --user it signs "
        "in the local user with the console's role (access.console).",
    )
    link.add_argument(
        "--user", metavar="PLATFORM:ID", help="a user of access.users, e.g. telegram:123"
    )
    link.add_argument("--json", action="store_true")
    link.set_defaults(handler=login_link)
    sessions = verbs.add_parser(
        "sessions",
        help="list signed-in browsers, or end one",
        description="List live web sessions, or end one at once with --revoke ID.",
    )
    sessions.add_argument("--revoke", type=int, metavar="ID", help="end this session now")
    sessions.add_argument("--json", action="store_true")
    sessions.set_defaults(handler=list_sessions)


def _settings(ctx: CommandContext) -> Any:
    from kanban_core import KernelSettings
    from kanban_core.config import config_path
    from web.config import load_web_settings

    home = KernelSettings.from_environ(ctx.environ, db_url=ctx.db_url).home
    path = config_path(ctx.environ, home)
    return path, load_web_settings(path)


def _access(path: Any) -> Any:
    from gateway.config import load_gateway_config

    return load_gateway_config(path).access


def serve(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``web``: serve until SIGTERM or Ctrl-C."""
    import asyncio
    import logging
    import signal
    import sys

    from gateway.errors import ConfigError
    from kanban_core import KanbanError
    from web.errors import WebError

    try:
        from web.server import run_standalone
    except ImportError as exc:
        from web.surface import HINT

        return CommandResult(exit_code=1, errors=(f"{exc.name} is missing: {HINT}",))

    try:
        path, settings = _settings(ctx)
        access = _access(path)
        settings = settings.with_address(args.host, args.port)
        board = ctx.board()
    except KanbanError as exc:
        return CommandResult(exit_code=1, errors=(str(exc),))
    except ConfigError as exc:
        return CommandResult(exit_code=1, errors=("\n".join(exc.problems),))
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run_standalone(board, access, settings, ctx.environ, stop)

    try:
        asyncio.run(main())
    except WebError as exc:
        return CommandResult(exit_code=1, errors=(str(exc),))
    return CommandResult()


def login_link(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``web login-link``: a URL that signs one browser in, once, within minutes."""
    from web import store
    from web.identity import LOCAL_PLATFORM, role_of

    path, settings = _settings(ctx)
    access = _access(path)
    name = ctx.actor.name
    principal = args.user or f"{LOCAL_PLATFORM}:{name}"
    role = role_of(access, principal)
    if role is None:
        return CommandResult(
            exit_code=1,
            errors=(f"{principal} is not in access.users; add it with a role first",),
        )
    board = ctx.board()
    with board.db.transaction(write=True) as tx:
        token = store.create_link(tx, principal, ttl_s=settings.link_ttl_s)
    url = f"{settings.base_url}/auth/link?token={token}"
    minutes = settings.link_ttl_s // 60
    if args.json:
        data = {
            "url": url,
            "user": principal,
            "role": role.name.lower(),
            "expires_in_s": settings.link_ttl_s,
        }
        return CommandResult(data=data, as_json=True)
    return CommandResult(
        blocks=(
            Text(url),
            Text(f"(signs in {principal} as {role.name.lower()}; works once, for {minutes} min)"),
        )
    )


def list_sessions(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``web sessions [--revoke ID]``."""
    from web import store

    board = ctx.board()
    if args.revoke is not None:
        with board.db.transaction(write=True) as tx:
            ended = store.revoke(tx, args.revoke)
        if not ended:
            return CommandResult(exit_code=1, errors=(f"no live web session {args.revoke}",))
        return CommandResult(blocks=(Text(f"Revoked web session {args.revoke}"),))
    with board.db.transaction(write=False) as tx:
        live = store.sessions(tx)
    if args.json:
        return CommandResult(data=[s.to_json() for s in live], as_json=True)
    if not live:
        return CommandResult(blocks=(Text("(no live web sessions)"),))
    from kanban_core.commands.formatting import timestamp

    rows = tuple(
        (
            str(s.id),
            s.principal,
            timestamp(s.created_ms),
            timestamp(s.expires_ms),
            (s.client or "-")[:40],
        )
        for s in live
    )
    return CommandResult(blocks=(Table(("ID", "USER", "SIGNED IN", "EXPIRES", "BROWSER"), rows),))
