"""Fixtures for running the command tree in-process against the fixture board."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from kanban_core import Actor, Kanban, Task
from kanban_core.commands import CommandContext, CommandParser, CommandResult, run_command


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"a test tried to really sleep for {seconds}s")


def _argv(argv: str | Sequence[str]) -> list[str]:
    return shlex.split(argv) if isinstance(argv, str) else list(argv)


@pytest.fixture
def opened() -> list[str | None]:
    """The ``--db`` URL of every ``open_board`` call, in order."""
    return []


@pytest.fixture
def make_ctx(
    board: Kanban, operator: Actor, opened: list[str | None]
) -> Callable[..., CommandContext]:
    """Factory: a CommandContext on the fixture board (a chat, non-interactive, by default)."""

    def factory(
        *,
        actor: Actor | None = None,
        interactive: bool = False,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = _no_sleep,
        place: tuple[str, str, str] | None = None,
    ) -> CommandContext:
        def open_board(db_url: str | None) -> Kanban:
            opened.append(db_url)
            return board

        return CommandContext(
            actor=actor or operator,
            open_board=open_board,
            environ=dict(environ or {}),
            interactive=interactive,
            sleep=sleep,
            place=place,
            principal=None if place is None else f"{place[0]}:1",
        )

    return factory


@pytest.fixture
def run(make_ctx: Callable[..., CommandContext]) -> Callable[..., CommandResult]:
    """Run one command line (a string is split like a shell would) on the fixture board."""

    def runner(
        argv: str | Sequence[str], *, parser: CommandParser | None = None, **ctx_options: Any
    ) -> CommandResult:
        return run_command(_argv(argv), make_ctx(**ctx_options), parser=parser)

    return runner


@pytest.fixture
def run_offline(operator: Actor) -> Callable[..., CommandResult]:
    """Run a command whose context must never open a board (help and usage errors)."""

    def refuse(db_url: str | None) -> Kanban:
        raise AssertionError(f"the board was opened (db_url={db_url!r})")

    def runner(
        argv: str | Sequence[str], *, parser: CommandParser | None = None, **ctx_options: Any
    ) -> CommandResult:
        ctx = CommandContext(actor=operator, open_board=refuse, sleep=_no_sleep, **ctx_options)
        return run_command(_argv(argv), ctx, parser=parser)

    return runner


@pytest.fixture
def worker_on(board: Kanban, operator: Actor) -> Callable[[Task], Actor]:
    """Factory: claim a ready task and return the worker actor holding its run credentials."""

    def factory(task: Task) -> Actor:
        granted = board.claim(operator, task.id)
        assert granted is not None, f"{task.ref} was not claimable"
        return Actor(name=task.assignee or "worker", run=granted.proof)

    return factory


@pytest.fixture
def blocked_task(
    board: Kanban, operator: Actor, make_task: Callable[..., Task]
) -> Callable[..., Task]:
    """Factory: a task blocked by the operator."""

    def factory(**create_kwargs: Any) -> Task:
        task = make_task(**create_kwargs)
        return board.block(operator, task.id, "waiting on a human")

    return factory
