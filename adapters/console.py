"""The console adapter: commands typed on stdin, replies and notifications on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
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
from gateway.slash import SLASH_COMMANDS, SlashCommand

log = logging.getLogger(__name__)
_READ_BYTES = 65_536

CHAT = ChatRef("console", "local")
USER = ChatUser("console", "local", "operator")
GREETING = """\
kanban gateway console: type `help` for the verbs, or a command like `list`.
  list, create "title" --assignee demo …   a kanban command (as /kanban … in chat)
  /ws new "title" --repo web, /diff …       a workspace command, as in chat
  > text                                    a message to the agent of this console's workspace"""
NO_WORKSPACE = (
    '(no workspace is bound to this console: `/ws new "title" --repo <name>` creates one, '
    "`/ws use <id>` picks one)"
)


class ConsoleAdapter:
    """The embedded default: no tokens, no network. Lines may start with ``/kanban`` or not."""

    name = "console"
    capabilities = Capabilities(max_message_chars=1_000_000, max_parts=1)

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._reader: asyncio.Task[None] | None = None
        # Delivery ids must never repeat, across restarts too: workspaces keep them durably as
        # idempotency keys, so a counter from 1 made the lines after a restart "already seen".
        self._run = uuid.uuid4().hex[:12]
        self._count = 0

    async def start(
        self, sink: MessageSink, *, menu: Sequence[SlashCommand] = SLASH_COMMANDS
    ) -> None:
        """Start reading lines in the background."""
        del menu  # a terminal has no command menu to fill
        self._reader = asyncio.create_task(self._read(sink), name="console-reader")
        self._write(GREETING)

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
        read_line = self._line_reader()

        def pump() -> None:
            # A daemon thread, not the loop's executor: a read blocked on a silent terminal must
            # not hold up shutdown.
            try:
                for line in iter(read_line, ""):
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except Exception:  # a broken stdin ends reading, loudly
                log.exception("console: reading stdin failed; no more commands are read")
            loop.call_soon_threadsafe(lines.put_nowait, "")

        threading.Thread(target=pump, name="console-stdin", daemon=True).start()
        while True:
            line = await lines.get()
            if not line:
                return  # stdin closed: keep serving notifications, stop reading
            message = self._message(line.strip())
            if message is None:
                continue
            try:
                reply = await sink(message)
            except Exception:
                # The router answers every message itself; this is the last line of defence so
                # that one line can never end the console.
                # Only the kind: what was typed may be a secret meant for the agent.
                log.exception("console: the gateway failed on a %s", message.kind.value)
                reply = Document.text("⚠ internal error; the gateway log has the details")
            if reply is None and message.kind is MessageKind.TEXT:
                reply = Document.text(NO_WORKSPACE)
            if reply is not None:
                self._write(render(reply))

    def _line_reader(self) -> Callable[[], str]:
        """Reads one line; bytes that are not valid in the terminal's encoding become U+FFFD
        (a strict text stdin would raise and end the reading for good)."""
        try:
            fd = self._stdin.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return self._stdin.readline  # an in-memory stream: already text
        encoding = getattr(self._stdin, "encoding", None) or "utf-8"
        # The descriptor itself, not sys.stdin.buffer: a daemon thread blocked inside the
        # buffered reader holds its lock, and the interpreter aborts at exit waiting for it.
        pending = bytearray()
        scanned = 0

        def read_line() -> str:
            nonlocal scanned
            while True:
                end = pending.find(b"\n", scanned)
                if end >= 0:
                    line = bytes(pending[: end + 1])
                    del pending[: end + 1]
                    scanned = 0
                    return line.decode(encoding, errors="replace")
                scanned = len(pending)
                chunk = os.read(fd, _READ_BYTES)
                if not chunk:  # end of input; a last line without a newline still counts
                    line, scanned = bytes(pending), 0
                    pending.clear()
                    return line.decode(encoding, errors="replace")
                pending.extend(chunk)

        return read_line

    def _message(self, text: str) -> IncomingMessage | None:
        """``/diff x`` is a command, ``> fix it`` a message to the agent, anything else kanban."""
        if not text:
            return None
        for prefix in ("/kanban", "kanban"):
            if text == prefix or text.startswith(prefix + " "):
                text = text[len(prefix) :].strip()
        self._count += 1
        delivery = f"console-{self._run}-{self._count}"
        if text.startswith(">"):
            said = text[1:].strip()
            return (
                IncomingMessage(CHAT, USER, said, delivery, "", MessageKind.TEXT, private=True)
                if said
                else None
            )
        if text.startswith("/") and len(text) > 1:
            word, _, rest = text[1:].partition(" ")
            return IncomingMessage(CHAT, USER, rest.strip(), delivery, word, private=True)
        return IncomingMessage(CHAT, USER, text, delivery, private=True)

    def _write(self, text: str) -> None:
        text = text.rstrip("\n") + "\n"
        try:
            self._stdout.write(text)
        except UnicodeEncodeError:
            # A reply may quote what was typed; what the terminal cannot show is replaced.
            encoding = getattr(self._stdout, "encoding", None) or "utf-8"
            self._stdout.write(text.encode(encoding, "replace").decode(encoding))
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
