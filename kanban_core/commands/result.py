"""CommandResult and the neutral document blocks handlers return; edges render them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kanban_core.board.domain import TaskId


@dataclass(frozen=True, slots=True)
class Text:
    """A paragraph of plain text (may span lines)."""

    text: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A section title."""

    text: str


@dataclass(frozen=True, slots=True)
class Table:
    """Rows of cells under column headers; terminals align it, chats put it in a code block."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    show_header: bool = True


Block = Text | Heading | Table


@dataclass(frozen=True, slots=True)
class Action:
    """A button a chat shows under the result; pressing it sends ``action`` back."""

    label: str
    action: str


@dataclass(frozen=True, slots=True)
class FileOut:
    """A file that goes with the result (a full diff); terminals print it."""

    filename: str
    content: bytes
    mime: str = "text/plain"


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command produced: a document for people, data for ``--json``, and an exit code.

    ``errors`` are one-line messages for stderr (a bulk verb reports each failed id there and
    carries on). ``follow`` is set by streaming verbs in an interactive terminal: an iterator of
    further results the CLI prints until interrupted. ``created`` names tasks a create made, so
    a chat front end can subscribe without scraping text.
    """

    exit_code: int = 0
    blocks: tuple[Block, ...] = ()
    errors: tuple[str, ...] = ()
    data: Any = None
    as_json: bool = False
    follow: Callable[[], Iterator[CommandResult]] | None = None
    created: tuple[TaskId, ...] = field(default_factory=tuple)
    actions: tuple[Action, ...] = ()
    files: tuple[FileOut, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.exit_code == 0


def text(*lines: str, exit_code: int = 0) -> CommandResult:
    """A result of plain lines."""
    return CommandResult(exit_code=exit_code, blocks=tuple(Text(line) for line in lines))


def failure(message: str, *, exit_code: int = 1) -> CommandResult:
    """A one-line refusal for stderr."""
    return CommandResult(exit_code=exit_code, errors=(message,))
