"""Helpers shared by the command-tree tests: reading results and driving followers."""

from __future__ import annotations

from collections.abc import Callable

from kanban_core.commands import CommandResult
from kanban_core.commands.render import render_blocks
from kanban_core.commands.result import Heading, Table, Text

#: Every verb the tree registers (checked against the parser in test_parser.py).
VERBS = (
    "init",
    "gc",
    "create",
    "edit",
    "assign",
    "comment",
    "link",
    "unlink",
    "claim",
    "complete",
    "block",
    "unblock",
    "accept",
    "heartbeat",
    "reclaim",
    "archive",
    "permissions",
    "allow",
    "deny",
    "list",
    "ls",
    "show",
    "stats",
    "runs",
    "assignees",
    "tail",
    "watch",
    "notify-subscribe",
    "notify-list",
    "notify-unsubscribe",
    "progress",
    "dispatch",
    "status",
    "context",
    "log",
    "audit",
    "mcp",
    "worker",
    "host",
    "hosts",
    "ws",
    "help",
)


class StopFollow(Exception):
    """Raised by a fake ``ctx.sleep`` to end a follow loop."""


def output(result: CommandResult) -> str:
    """The result's document as a terminal would show it."""
    return render_blocks(result.blocks)


def texts(result: CommandResult) -> list[str]:
    """The text of every Text block, in order."""
    return [block.text for block in result.blocks if isinstance(block, Text)]


def headings(result: CommandResult) -> list[str]:
    """The text of every Heading block, in order."""
    return [block.text for block in result.blocks if isinstance(block, Heading)]


def tables(result: CommandResult) -> list[Table]:
    """Every Table block, in order."""
    return [block for block in result.blocks if isinstance(block, Table)]


def only_table(result: CommandResult) -> Table:
    """The single Table of a result."""
    found = tables(result)
    assert len(found) == 1, result
    return found[0]


def facts(table: Table) -> dict[str, str]:
    """A two-column table as a mapping from its first cell to its second."""
    return {row[0]: row[1] for row in table.rows}


def assert_ok(result: CommandResult) -> CommandResult:
    """The command succeeded without errors; returns the result for chaining."""
    assert result.exit_code == 0, result.errors
    assert result.errors == ()
    return result


def assert_usage_error(result: CommandResult, *fragments: str) -> str:
    """An exit-2 usage error carrying every fragment; returns the error text."""
    assert result.exit_code == 2, result
    assert result.blocks == ()
    assert len(result.errors) == 1
    message = result.errors[0]
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def scripted_sleep(*steps: Callable[[], object]) -> tuple[Callable[[float], None], list[float]]:
    """A fake ``ctx.sleep`` running one step per call and raising StopFollow after the last.

    Returns the sleep function and the list of intervals it was called with.
    """
    pending = list(steps)
    calls: list[float] = []

    def sleep(seconds: float) -> None:
        calls.append(seconds)
        if not pending:
            raise StopFollow
        pending.pop(0)()

    return sleep, calls


def drain(result: CommandResult, *, limit: int = 50) -> list[CommandResult]:
    """Everything a follower yields until its fake clock raises StopFollow."""
    assert result.follow is not None
    collected: list[CommandResult] = []
    try:
        for more in result.follow():
            collected.append(more)
            assert len(collected) <= limit, "the follower never stopped"
    except StopFollow:
        pass
    return collected
