"""Slack rendering: mrkdwn parts with balanced code fences, Block Kit sections and button rows."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, Final

from gateway import Document, Heading, Paragraph, Preformatted, split_text
from gateway.messages import Attachment, Button

__all__ = [
    "ACTION_PREFIX",
    "buttons_fallback",
    "escape",
    "render",
    "render_parts",
    "reply_blocks",
    "too_large_line",
]

MAX_MESSAGE_CHARS: Final = 4000
MAX_PARTS: Final = 5
FENCE: Final = "```"
#: Block Kit limits: a section's text, blocks per message, a button's label.
MAX_SECTION_CHARS: Final = 3000
MAX_BLOCKS: Final = 50
MAX_LABEL_CHARS: Final = 75
#: Slack allows 25 elements per actions block; 5 keeps a row of buttons readable.
BUTTONS_PER_ROW: Final = 5
#: Every button's action_id starts with this; the adapter listens for it, and only it.
ACTION_PREFIX: Final = "kb-"

Block = dict[str, Any]


# --- mrkdwn ------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three control characters and break any triple backtick.

    Backticks cannot be escaped in mrkdwn; a zero-width space keeps user text from opening or
    closing a code block, so the only fences in a rendered message are the ones we put there.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"``(?=`)", "``\u200b", text)


def render(document: Document) -> str:
    """The whole document as one mrkdwn string (before splitting)."""
    lines: list[str] = []
    for block in document.blocks:
        if isinstance(block, Heading):
            title = " ".join(block.text.split())
            if title:
                lines.append(f"*{escape(title)}*")
        elif isinstance(block, Preformatted):
            lines.extend((FENCE, escape(block.text.rstrip("\n")), FENCE))
        elif isinstance(block, Paragraph):
            lines.append(escape(block.text))
    return "\n".join(lines)


def render_parts(
    document: Document, limit: int = MAX_MESSAGE_CHARS, max_parts: int = MAX_PARTS
) -> list[str]:
    """Render and split: at most ``max_parts`` parts of at most ``limit`` chars, fences balanced."""
    text = render(document)
    footer = escape(document.overflow_footer)
    # Room for a reopening fence at the start and a closing one at the end of every part.
    room = limit - 2 * (len(FENCE) + 1)
    every = split_text(text, room, max_parts=sys.maxsize, footer=footer)
    if len(every) <= max_parts:
        return _balance_fences(every)
    kept = split_text(text, room, max_parts=max_parts, footer=footer)
    # split_text put the footer at the end of the last part; it may be inside a code block, so
    # take it off, balance, and put it back after the closing fence.
    kept[-1] = kept[-1][: -(len(footer) + 1)]
    parts = _balance_fences(kept)
    if parts:
        parts[-1] = f"{parts[-1]}\n{footer}"
    else:
        parts = [footer]
    return parts


def _balance_fences(parts: list[str]) -> list[str]:
    """Close a code block left open at the end of a part and reopen it in the next."""
    balanced: list[str] = []
    open_block = False
    for part in parts:
        lines = part.split("\n")
        if open_block:
            if lines[0] == FENCE:
                # The block closes right at the start: drop the fence we closed it with already.
                lines = lines[1:]
            else:
                lines.insert(0, FENCE)
        open_block = False
        for line in lines:
            if line == FENCE:
                open_block = not open_block
        if open_block:
            if lines and lines[-1] == FENCE:
                # A block opened on the last line: move the opener to the next part instead.
                lines.pop()
            else:
                lines.append(FENCE)
        body = "\n".join(lines)
        if body.strip():
            balanced.append(body)
    return balanced


# --- Block Kit ---------------------------------------------------------------------------------


def reply_blocks(text: str, buttons: Sequence[Button]) -> list[Block]:
    """``text`` as section blocks (≤ 3000 chars each, fences balanced) then rows of buttons.

    A message part is up to 4000 chars, more than one section takes, so it is cut again on line
    boundaries. Buttons that would take the message past Slack's 50 blocks are left off.
    """
    room = MAX_SECTION_CHARS - 2 * (len(FENCE) + 1)
    chunks = (
        _balance_fences(split_text(text, room, max_parts=sys.maxsize, footer="")) if text else []
    )
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks
    ]
    for start in range(0, len(buttons), BUTTONS_PER_ROW):
        if len(blocks) >= MAX_BLOCKS:
            break
        row = buttons[start : start + BUTTONS_PER_ROW]
        elements = [_button(start + offset, button) for offset, button in enumerate(row)]
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def _button(index: int, button: Button) -> Block:
    label = " ".join(button.label.split()) or button.action
    if len(label) > MAX_LABEL_CHARS:
        label = label[: MAX_LABEL_CHARS - 1] + "…"
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        # Unique within the message, as Slack requires; the press is matched by the prefix.
        "action_id": f"{ACTION_PREFIX}{index}",
        # Opaque to us: passed back verbatim when pressed.
        "value": button.action,
    }


def buttons_fallback(buttons: Sequence[Button]) -> str:
    """The notification text of a message that is only buttons (Slack wants a text too)."""
    return escape(" · ".join(" ".join(button.label.split()) for button in buttons)) or "…"


def too_large_line(attachment: Attachment, limit: int) -> str:
    """What is said instead of sending a file past ``limit`` bytes."""
    return escape(
        f"📎 {attachment.filename} was not sent: {_size(len(attachment.content))} is over the "
        f"{_size(limit)} limit for files here."
    )


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count} bytes"
    return f"{count / (1024 * 1024):.1f} MB"
