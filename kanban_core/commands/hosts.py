"""Host verbs for the local terminal: host enroll, hosts, hosts revoke."""

from __future__ import annotations

import argparse
import secrets
import socket
import time
from typing import Any

from kanban_core import enrollment
from kanban_core.board.domain import format_task_id
from kanban_core.board.hosts import HostInfo
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import CommandResult, text
from kanban_core.errors import PermissionDenied, ValidationError


def register(sub: Any) -> None:
    """Add this module's verbs to the tree."""
    p = sub.add_parser(
        "host",
        help="enroll this machine as a host of the board",
        description="This machine's host enrollment.",
    )
    verbs = p.add_subparsers(dest="host_verb", metavar="<verb>", required=True)
    enroll = verbs.add_parser(
        "enroll",
        help="register this machine on the board",
        description="Register this machine as a host of the board: its id and secret are kept "
        "in $KANBAN_HOME/host.json (mode 0600); from then on its dispatchers and workers act "
        "as this host. Re-enrolling a revoked host's name needs --readmit (an admin's act).",
    )
    enroll.add_argument("--name", help="the host's name (default: this machine's hostname)")
    enroll.add_argument(
        "--label", action="append", default=[], dest="labels", help="a label (repeatable)"
    )
    enroll.add_argument(
        "--readmit", action="store_true", help="admin: give a revoked host a new secret"
    )
    enroll.set_defaults(handler=enroll_host)

    p = sub.add_parser(
        "hosts",
        help="list the enrolled hosts, or revoke one",
        description="List the board's hosts (labels, last seen by the database clock, open "
        "runs, state live/missing/revoked, the platform connections its gateway holds and "
        "whether it is the leader); `hosts revoke NAME` cuts one off (admin).",
    )
    p.add_argument("action", nargs="?", choices=("revoke",), help="revoke: cut a host off")
    p.add_argument("name", nargs="?", help="the host to revoke")
    p.add_argument("--json", action="store_true", help="print the hosts as JSON")
    p.set_defaults(handler=hosts)


def _require_admin(ctx: CommandContext, verb: str) -> None:
    # The local terminal's user is the board's admin; a worker or a chat user is not.
    if ctx.from_chat or ctx.actor.run is not None:
        raise PermissionDenied(f"only an admin at a local terminal may {verb}")


def enroll_host(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``host enroll``: the board records the host, then this machine keeps its secret."""
    _require_admin(ctx, "enroll a host")
    board = ctx.board()
    if board.host is not None and not args.readmit:
        raise ValidationError(
            f"this machine is already enrolled as {board.host.name!r} "
            f"({enrollment.path(board.settings.home)})"
        )
    identity = board.enroll_host(
        ctx.actor,
        name=args.name or socket.gethostname(),
        labels=args.labels,
        secret=secrets.token_urlsafe(32),
        readmit=args.readmit,
    )
    saved = enrollment.save(board.settings.home, identity)
    labels = ", ".join(args.labels) or "none"
    return text(f"Enrolled host {identity.name!r} (labels: {labels}); identity kept in {saved}")


def hosts(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``hosts`` and ``hosts revoke NAME``."""
    board = ctx.board()
    if args.action == "revoke":
        _require_admin(ctx, "revoke a host")
        if not args.name:
            raise ValidationError("hosts revoke needs the host's name")
        blocked = board.revoke_host(ctx.actor, args.name)
        lines = [f"Revoked host {args.name!r}: it claims nothing more and its runs are fenced"]
        if blocked:
            refs = " ".join(format_task_id(t) for t in blocked)
            lines.append(
                f"Blocked {len(blocked)} task(s) bound to it: {refs} — re-place each "
                "(`edit ID --host H`, --label L or --any-host), then unblock it"
            )
        return text(*lines)
    if args.name:
        raise ValidationError(f"unexpected argument {args.name!r} (did you mean `hosts revoke`?)")
    listed = board.list_hosts(missing_after_ms=missing_after_ms(ctx))
    if args.json:
        return CommandResult(data={"hosts": [h.to_json() for h in listed]}, as_json=True)
    if not listed:
        return text("No enrolled hosts: this board runs as one implicit host.")
    me = board.host.host_id if board.host is not None else None
    return text(*(_line(h, me) for h in listed))


def _line(host: HostInfo, me: int | None) -> str:
    seen = "never" if host.last_seen_ms is None else _ago(host.last_seen_ms)
    mark = " (this machine)" if host.host_id == me else ""
    role = "  leader" if host.leader else ""
    return (
        f"{host.name}{mark}  {host.state.value}{role}  labels={','.join(host.labels) or '-'}  "
        f"last seen {seen}  running={host.running}  "
        f"platforms={','.join(host.platforms) or '-'}"
    )


def missing_after_ms(ctx: CommandContext) -> int:
    """When a host counts as missing: three dispatch intervals (it is seen on every dispatcher
    pass), at least two minutes; the default interval when config.yaml cannot be read."""
    from kanban_core.commands.operations import dispatch_interval_s
    from kanban_core.dispatch.health import stale_after_s

    return int(stale_after_s(dispatch_interval_s(ctx)) * 1000)


def _ago(ms: int) -> str:
    seconds = max(0, int(time.time() - ms / 1000))
    return f"{seconds}s ago" if seconds < 120 else f"{seconds // 60}m ago"
