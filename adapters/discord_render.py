"""Discord rendering: markdown parts with balanced fences, button rows, and files to upload."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, assert_never

import discord

from gateway import Block, Document, Heading, Paragraph, Preformatted, split_text
from gateway.messages import Attachment, Button

__all__ = ["MAX_BUTTONS", "Outgoing", "button_view", "outgoing", "render"]

log = logging.getLogger(__name__)

_FENCE: Final = "```"
# Room for reopening a fence at the start of a part and closing it at the end.
_FENCE_RESERVE: Final = 2 * (len(_FENCE) + 1)
# Discord's component limits: 5 buttons to an action row, 5 rows (25 buttons) to a message, and
# a label of at most 80 characters.
_BUTTONS_PER_ROW: Final = 5
MAX_BUTTONS: Final = 25
_MAX_LABEL: Final = 80


@dataclass(slots=True)
class Outgoing:
    """One message to post: text, buttons under it, or a single file (never more than one)."""

    content: str | None = None
    view: discord.ui.View | None = None
    file: discord.File | None = None

    def kwargs(self) -> dict[str, Any]:
        """Only the fields that are set: a webhook send refuses ``view=None`` / ``file=None``."""
        fields: dict[str, Any] = {"allowed_mentions": discord.AllowedMentions.none()}
        if self.content is not None:
            fields["content"] = self.content
        if self.view is not None:
            fields["view"] = self.view
        if self.file is not None:
            fields["file"] = self.file
        return fields


def render(document: Document, max_chars: int, max_parts: int) -> list[str]:
    """Discord markdown parts of at most ``max_chars``, every code fence closed within its part."""
    text = "\n".join(_render_block(block) for block in document.blocks)
    limit = max_chars - _FENCE_RESERVE
    footer = document.overflow_footer
    cut = len(split_text(text, limit, max_parts=sys.maxsize, footer=footer)) > max_parts
    parts = split_text(text, limit, max_parts=max_parts, footer=footer)
    return [part for part in _balance_fences(parts, footer if cut else None) if part.strip()]


def outgoing(
    document: Document, *, max_chars: int, max_parts: int, max_file_bytes: int
) -> list[Outgoing]:
    """The messages a document becomes: its text parts (buttons on the last), then its files."""
    messages = [Outgoing(content=part) for part in render(document, max_chars, max_parts)]
    view = button_view(document.buttons)
    if view is not None:
        if messages:
            messages[-1].view = view
        else:
            # Discord accepts a message whose only content is components.
            messages.append(Outgoing(view=view))
    messages.extend(_attachment(a, max_file_bytes) for a in document.attachments)
    return messages


def button_view(buttons: tuple[Button, ...]) -> discord.ui.View | None:
    """Buttons as a discord.py View whose custom_ids are the buttons' opaque actions."""
    unique: dict[str, Button] = {}
    for button in buttons:
        # Discord refuses a message with two components sharing a custom_id.
        unique.setdefault(button.action, button)
    if not unique:
        return None
    if len(unique) > MAX_BUTTONS:
        log.warning("discord: %d buttons, only the first %d are shown", len(unique), MAX_BUTTONS)
    view = discord.ui.View(timeout=None)
    for index, button in enumerate(list(unique.values())[:MAX_BUTTONS]):
        view.add_item(
            discord.ui.Button(
                label=button.label[:_MAX_LABEL] or button.action[:_MAX_LABEL],
                custom_id=button.action,
                style=discord.ButtonStyle.secondary,
                row=index // _BUTTONS_PER_ROW,
            )
        )
    # A view that is not finished is kept in discord.py's view store for the message it was sent
    # with — forever, with timeout=None. Presses are handled for every message alike in the
    # adapter's on_interaction (they keep working after a restart), so nothing needs storing.
    view.stop()
    return view


def _attachment(attachment: Attachment, max_bytes: int) -> Outgoing:
    size = len(attachment.content)
    name = discord.utils.escape_markdown(attachment.filename)
    if size > max_bytes:
        return Outgoing(
            content=f"📎 {name} ({_size(size)}) is too large to send here "
            f"(the limit is {_size(max_bytes)})."
        )
    # discord.py uploads every file as application/octet-stream; Discord sniffs the type itself,
    # so the attachment's mime is not sent.
    return Outgoing(file=discord.File(io.BytesIO(attachment.content), filename=attachment.filename))


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB"


def _render_block(block: Block) -> str:
    match block:
        case Heading():
            return f"**{discord.utils.escape_markdown(block.text)}**"
        case Paragraph():
            return discord.utils.escape_markdown(block.text)
        case Preformatted():
            # A zero-width space keeps a literal ``` in the text from closing our fence early.
            body = block.text.replace(_FENCE, "``\u200b`")
            return f"{_FENCE}\n{body}\n{_FENCE}"
        case _:
            assert_never(block)


def _balance_fences(parts: list[str], footer: str | None) -> Iterator[str]:
    """Close a code fence left open at the end of a part and reopen it at the next one."""
    inside = False
    for index, part in enumerate(parts):
        body, tail = part, ""
        if footer is not None and index == len(parts) - 1 and part.endswith(footer):
            # The cut footer belongs after the closing fence, not inside the code block.
            body, tail = part[: -len(footer)].rstrip("\n"), footer
        opened = inside
        for line in body.split("\n"):
            if line.startswith(_FENCE):
                inside = not inside
        text = f"{_FENCE}\n{body}" if opened else body
        if inside:
            text = f"{text}\n{_FENCE}"
        if tail:
            text = f"{text}\n{tail}" if text else tail
        yield text
