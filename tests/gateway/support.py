"""Helpers for the gateway tests: a fake chat platform, raw reads, waiting on conditions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from gateway import Capabilities, ChatRef, Document, MessageSink
from kanban_core import Kanban
from kanban_core.storage import Query


@dataclass(frozen=True)
class Sent:
    """One message the fake platform accepted."""

    chat: ChatRef
    document: Document

    @property
    def lines(self) -> list[str]:
        return [block.text for block in self.document.blocks]


class InMemoryAdapter:
    """A fake platform edge implementing the ChatAdapter protocol.

    ``script`` says what each send call does, in order: an exception to raise, or None to
    accept the message; once the script is used up every send is accepted.
    """

    def __init__(
        self, name: str = "telegram", script: list[Exception | None] | None = None
    ) -> None:
        self.name = name
        self.capabilities = Capabilities(max_message_chars=4096)
        self.script: list[Exception | None] = list(script or [])
        self.calls: list[float] = []  # time.monotonic() of every send call
        self.sent: list[Sent] = []
        self.sink: MessageSink | None = None

    async def start(self, sink: MessageSink, *, menu: object = ()) -> None:
        self.sink = sink

    async def stop(self) -> None:
        self.sink = None

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        self.calls.append(time.monotonic())
        if self.script:
            outcome = self.script.pop(0)
            if outcome is not None:
                raise outcome
        self.sent.append(Sent(chat, document))
        return None  # no message ids: like the console


def rows(board: Kanban, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    """All rows of a raw SELECT."""
    with board.db.transaction(write=False) as tx:
        return [tuple(row) for row in tx.fetchall(Query("test_rows", sql), params)]


async def wait_until(predicate: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    """Poll ``predicate`` on the event loop until it is truthy; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await anyio.sleep(0.01)


def text_of(document: Document) -> str:
    """Every block's text, one per line."""
    return "\n".join(block.text for block in document.blocks)
