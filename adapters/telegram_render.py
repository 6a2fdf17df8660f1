"""Telegram rendering: HTML parts within the UTF-16 limit, inline keyboards and uploads."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile

from gateway import Block, Document, Heading, Paragraph, Preformatted, split_text
from gateway.messages import Attachment, Button

__all__ = ["MAX_MESSAGE_CHARS", "Outgoing", "outgoing", "render_parts", "upload"]

#: Telegram's limit for one message's text (telegram.constants.MessageLimit.MAX_TEXT_LENGTH).
MAX_MESSAGE_CHARS = 4096
#: Shown above buttons when a document has nothing else to say (Telegram needs some text).
BUTTONS_ONLY_TEXT = "Choose:"

_PRE_OPEN, _PRE_CLOSE = "<pre>", "</pre>"
# Every part may gain a reopened <pre> at its start and a closing </pre> at its end.
_PRE_OVERHEAD = len(_PRE_OPEN) + len(_PRE_CLOSE)
_BOLD_OVERHEAD = len("<b></b>")
# A core-supplied footer must never eat the message; cap it well below any budget.
_MAX_FOOTER_CHARS = 256
_TAG = re.compile(r"<[^>]*>")
# Telegram refuses a keyboard of more than 100 buttons; rows of three keep labels readable.
_MAX_BUTTONS = 100
_ROW_WIDTH = 3
_WIDE_LABEL = 16
# A file name is a multipart header value: no paths, no control characters, a sane length.
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f\"]")
_MAX_NAME = 128
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to send: an HTML text (maybe with a keyboard) or a file."""

    text: str = ""
    keyboard: InlineKeyboardMarkup | None = None
    file: Attachment | None = None


def outgoing(document: Document, *, max_parts: int, max_file_bytes: int) -> list[Outgoing]:
    """The messages ``document`` becomes: text parts, buttons on the last one, then files."""
    texts = render_parts(document, max_parts=max_parts)
    keyboard = inline_keyboard(document.buttons)
    if keyboard is not None and not texts:
        texts = [BUTTONS_ONLY_TEXT]
    messages = [Outgoing(text=text) for text in texts]
    if keyboard is not None:
        messages[-1] = Outgoing(text=messages[-1].text, keyboard=keyboard)
    for attachment in document.attachments:
        size = len(attachment.content)
        if 0 < size <= max_file_bytes:
            messages.append(Outgoing(file=attachment))
            continue
        # Telegram refuses empty files, and larger ones than we allow are not tried at all.
        name = upload_name(attachment.filename)
        note = (
            f"{name} is empty, so it was not sent."
            if size == 0
            else f"{name} was too large to send ({_size(size)}; the limit is "
            f"{_size(max_file_bytes)})."
        )
        messages.append(Outgoing(text=html.escape(note, quote=False)))
    return messages


def inline_keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """Buttons in rows of up to three (a long label gets its own row); callback_data = action."""
    if not buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for button in buttons[:_MAX_BUTTONS]:
        # The action goes back to the gateway untouched; Button already keeps it within 64 bytes.
        key = InlineKeyboardButton(button.label.strip() or "…", callback_data=button.action)
        wide = len(key.text) > _WIDE_LABEL
        last = rows[-1] if rows else None
        if wide or last is None or len(last) >= _ROW_WIDTH or len(last[0].text) > _WIDE_LABEL:
            rows.append([key])
        else:
            last.append(key)
    return InlineKeyboardMarkup(rows)


def upload(attachment: Attachment) -> InputFile:
    """The multipart file for ``sendDocument``, named and typed as the gateway said."""
    file = InputFile(attachment.content, filename=upload_name(attachment.filename))
    if _MIME.fullmatch(attachment.mime):
        file.mimetype = attachment.mime
    return file


def upload_name(filename: str) -> str:
    """``filename`` safe for a multipart header: the last path part, no control characters."""
    name = _UNSAFE_NAME.sub("_", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[-_MAX_NAME:] if name.strip("._") else "attachment.txt"


def _size(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size} bytes"


def render_parts(
    document: Document, *, limit: int = MAX_MESSAGE_CHARS, max_parts: int = 5
) -> list[str]:
    """Telegram HTML for ``document`` in at most ``max_parts`` messages of ``limit`` characters.

    Every part is valid HTML on its own: a code block cut between parts is closed at the end of
    one part and reopened at the start of the next. Parts are also within ``limit`` in UTF-16
    code units, which is how Telegram counts.
    """
    footer = html.escape(document.overflow_footer[:_MAX_FOOTER_CHARS], quote=False)
    budget = limit - _PRE_OVERHEAD
    parts = _render_within(document.blocks, budget, max_parts, footer)
    if any(_utf16_len(part) > limit for part in parts):
        # Astral characters (emoji) count twice; half the budget holds whatever the text is.
        parts = _render_within(document.blocks, budget // 2, max_parts, footer)
    return parts


def _render_within(
    blocks: tuple[Block, ...], budget: int, max_parts: int, footer: str
) -> list[str]:
    # Lines no longer than this never need split_text's hard cut (which could cut a tag or an
    # entity) nor its mid-line trim when the footer goes on.
    width = budget - len(footer) - 1
    if width < _PRE_OVERHEAD + 8:
        raise ValueError("limit too small for Telegram parts")
    lines = list(_html_lines(blocks, width))
    if not lines:
        return []
    parts = split_text("\n".join(lines), budget, max_parts=max_parts, footer=footer)
    cut = len(parts) == max_parts and parts[-1].endswith("\n" + footer)
    balanced = _balance_pre(parts, footer if cut else None)
    # Telegram rejects a message with no visible text (only blank lines or empty tags).
    return [part for part in balanced if _TAG.sub("", part).strip()]


def _html_lines(blocks: tuple[Block, ...], width: int) -> Iterator[str]:
    """One line of HTML per output line; only <pre> spans lines, bold is closed per line."""
    for block in blocks:
        if isinstance(block, Paragraph):
            for line in block.text.split("\n"):
                yield from _escaped_chunks(line, width)
        elif isinstance(block, Heading):
            for line in block.text.split("\n"):
                if not line.strip():
                    yield ""
                    continue
                for chunk in _escaped_chunks(line, width - _BOLD_OVERHEAD):
                    yield f"<b>{chunk}</b>"
        elif isinstance(block, Preformatted):
            text = block.text.strip("\n")
            if not text.strip():
                continue
            chunks = [
                chunk
                for line in text.split("\n")
                for chunk in _escaped_chunks(line, width - _PRE_OVERHEAD)
            ]
            chunks[0] = _PRE_OPEN + chunks[0]
            chunks[-1] += _PRE_CLOSE
            yield from chunks


def _escaped_chunks(line: str, width: int) -> list[str]:
    """``line`` escaped, cut into pieces of at most ``width`` characters between entities."""
    escaped = html.escape(line, quote=False)
    if len(escaped) <= width:
        return [escaped]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        piece = html.escape(char, quote=False)
        if size + len(piece) > width:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    chunks.append("".join(current))
    return chunks


def _balance_pre(parts: list[str], footer: str | None) -> list[str]:
    """Close a <pre> left open at the end of a part and reopen it at the next part's start."""
    balanced: list[str] = []
    inside = False
    for index, part in enumerate(parts):
        body, tail = part, ""
        if footer is not None and index == len(parts) - 1:
            # The footer is plain text after the cut: it goes after any closing </pre>.
            body, tail = part[: -len(footer) - 1], part[-len(footer) - 1 :]
        opened = _PRE_OPEN if inside else ""
        last_open, last_close = body.rfind(_PRE_OPEN), body.rfind(_PRE_CLOSE)
        if last_open != -1 or last_close != -1:
            inside = last_open > last_close
        closed = _PRE_CLOSE if inside else ""
        balanced.append(opened + body + closed + tail)
    return balanced


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
