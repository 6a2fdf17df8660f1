"""The ``kanban`` console entry point: argv in, the command tree run, its result printed."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kanban_core.board.domain import Actor, RunProof, parse_run_id, parse_task_id
from kanban_core.board.kanban import Kanban
from kanban_core.board.validation import clean_text
from kanban_core.commands import CommandContext, CommandResult, build_parser, run_command
from kanban_core.commands.capability import worker_cli
from kanban_core.commands.render import render_result
from kanban_core.errors import KanbanError
from kanban_core.settings import KernelSettings

_MAX_USER_BYTES = 100


def actor_from_environ(environ: Mapping[str, str]) -> Actor:
    """The caller's identity: a worker proving its run, or the local user."""
    name = environ.get("KANBAN_USER") or _login_name()
    try:
        name = clean_text(name, field="KANBAN_USER", max_bytes=_MAX_USER_BYTES)
    except KanbanError as exc:
        raise KanbanError(f"{exc}; set KANBAN_USER to a short plain name") from None
    run_id, token = environ.get("KANBAN_RUN_ID"), environ.get("KANBAN_RUN_TOKEN")
    if not run_id and not token:
        return Actor(name=name)
    task = environ.get("KANBAN_TASK")
    if not (run_id and token and task):
        raise KanbanError(
            "worker credentials are incomplete: KANBAN_TASK, KANBAN_RUN_ID and KANBAN_RUN_TOKEN "
            "must all be set"
        )
    return Actor(name=name, run=RunProof(parse_task_id(task), parse_run_id(run_id), token))


def print_result(result: CommandResult) -> None:
    """Write a result: JSON or text on stdout, one-line errors on stderr."""
    stdout, stderr = render_result(result)
    sys.stdout.write(stdout)
    sys.stderr.write(stderr)
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None, *, extra: Sequence[Callable[[Any], None]] = ()) -> int:
    """Run one command; returns the exit code (0 ok, 1 refused, 2 usage)."""
    environ = os.environ
    args = list(sys.argv[1:] if argv is None else argv)
    # Inside a worker run the board is reached through the run's capability, or not at all.
    code = worker_cli(args, environ)
    if code is not None:
        return code
    try:
        actor = actor_from_environ(environ)
    except KanbanError as exc:
        sys.stderr.write(f"kanban: {exc}\n")
        return 1
    boards: list[Kanban] = []

    def open_board(db_url: str | None) -> Kanban:
        settings = KernelSettings.from_environ(environ, db_url=db_url)
        board = Kanban.open(settings, on_missing=ctx.on_missing)
        boards.append(board)
        return board

    ctx = CommandContext(actor=actor, open_board=open_board, environ=environ, interactive=True)
    try:
        result = run_command(args, ctx, parser=build_parser(extra=extra))
        print_result(result)
        if result.follow is not None and result.ok:
            try:
                for more in result.follow():
                    print_result(more)
            except KeyboardInterrupt:
                return 0
            except KanbanError as exc:
                sys.stderr.write(f"kanban: {exc}\n")
                return exc.exit_code
        return result.exit_code
    except BrokenPipeError:
        # `kanban list | head` closes the pipe early; that is not an error.
        sys.stderr.close()
        return 0
    finally:
        for board in boards:
            board.close()


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


if __name__ == "__main__":
    sys.exit(main())
