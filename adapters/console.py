"""The console adapter: commands typed on stdin, replies and notifications on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Mapping
from typing import TextIO

from gateway import (
    Capabilities,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    MessageKind,
    MessageSink,
    Preformatted,
)

CHAT = ChatRef("console", "local")
USER = ChatUser("console", "local", "operator")


class ConsoleAdapter:
    """The embedded default: no tokens, no network. Lines may start with ``/kanban`` or not."""

    name = "console"
    capabilities = Capabilities(max_message_chars=1_000_000, max_parts=1)

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._reader: asyncio.Task[None] | None = None
        self._count = 0

    async def start(self, sink: MessageSink) -> None:
        """Start reading lines in the background."""
        self._reader = asyncio.create_task(self._read(sink), name="console-reader")
        self._write("kanban gateway console: type `help` or a command like `list`.")

    async def stop(self) -> None:
        """Stop reading (a blocked stdin read is abandoned, not awaited)."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def send(self, chat: ChatRef, document: Document) -> None:
        """Print a notification."""
        del chat
        self._write(render(document))

    async def _read(self, sink: MessageSink) -> None:
        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str] = asyncio.Queue()

        def pump() -> None:
            # A daemon thread, not the loop's executor: a read blocked on a silent terminal must
            # not hold up shutdown.
            for line in iter(self._stdin.readline, ""):
                loop.call_soon_threadsafe(lines.put_nowait, line)
            loop.call_soon_threadsafe(lines.put_nowait, "")

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        while True:
            line = await lines.get()
            if not line:
                return  # stdin closed: keep serving notifications, stop reading
            message = self._message(line.strip())
            if message is None:
                continue
            reply = await sink(message)
            if reply is not None:
                self._write(render(reply))

    def _message(self, text: str) -> IncomingMessage | None:
        """``/diff x`` is a command, ``> fix it`` a message to the agent, anything else kanban."""
        for prefix in ("/kanban", "kanban"):
            if text == prefix or text.startswith(prefix + " "):
                text = text[len(prefix) :].strip()
        if not text:
            return None
        self._count += 1
        delivery = f"console-{self._count}"
        if text.startswith(">"):
            said = text[1:].strip()
            return (
                IncomingMessage(CHAT, USER, said, delivery, "", MessageKind.TEXT) if said else None
            )
        if text.startswith("/") and len(text) > 1:
            word, _, rest = text[1:].partition(" ")
            return IncomingMessage(CHAT, USER, rest.strip(), delivery, word)
        return IncomingMessage(CHAT, USER, text, delivery)

    def _write(self, text: str) -> None:
        self._stdout.write(text.rstrip("\n") + "\n")
        self._stdout.flush()


def render(document: Document) -> str:
    """Plain text: headings as lines, tables as they are."""
    parts = []
    for block in document.blocks:
        if isinstance(block, Heading):
            parts.append(f"== {block.text}")
        elif isinstance(block, Preformatted):
            parts.append(block.text)
        else:
            parts.append(block.text)
    if document.buttons:
        parts.append("  ".join(f"[{b.label}: {_typed(b.action)}]" for b in document.buttons))
    for attached in document.attachments:
        parts.append(f"--- {attached.filename} ({len(attached.content)} bytes) ---")
        parts.append(attached.content.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _typed(action: str) -> str:
    """What to type for a button the console cannot press."""
    kind, _, rest = action.partition(":")
    if kind in ("ap", "dn"):
        verb = "approve" if kind == "ap" else "deny"
        return f"/{verb} {rest.partition(':')[0]}"
    return f"/{rest}" if kind == "k" else action


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> ConsoleAdapter:
    """Entry point: the console needs no configuration."""
    del config, environ
    return ConsoleAdapter()
