"""The chat answer of a request run on another host: stored as JSON, rebuilt as a document."""

from __future__ import annotations

import base64
from typing import Any

from gateway.messages import Attachment, Block, Button, Document, Heading, Paragraph, Preformatted
from gateway.rendering import result_document
from kanban_core.board.deliveries import Delivery
from kanban_core.commands import CommandResult

#: A file bigger than this is not carried in the reply (it would sit in the event log); the
#: chat is told where to get it instead.
MAX_FILE_BYTES = 1024 * 1024
_BLOCKS: dict[str, type[Paragraph] | type[Heading] | type[Preformatted]] = {
    "p": Paragraph,
    "h": Heading,
    "pre": Preformatted,
}
_KINDS = {cls: kind for kind, cls in _BLOCKS.items()}
_ENDINGS = {
    "expired": "⌛",
    "failed": "⚠",
    "refused": "⛔",
}


def reply_payload(result: CommandResult) -> dict[str, Any]:
    """A command's result as the JSON the outbox carries to the asking chat."""
    document = result_document(result)
    files = [
        [f.filename, base64.b64encode(f.content).decode(), f.mime]
        for f in result.files
        if len(f.content) <= MAX_FILE_BYTES
    ]
    blocks = [[_KINDS[type(b)], b.text] for b in document.blocks]
    blocks += [
        [
            "p",
            f"⚠ {f.filename} ({len(f.content) // 1024} KiB) is too large to send from another "
            "host; ask for it on the workspace's host",
        ]
        for f in result.files
        if len(f.content) > MAX_FILE_BYTES
    ]
    return {
        "blocks": blocks,
        "buttons": [[a.label, a.action] for a in result.actions],
        "files": files,
    }


def reply_document(delivery: Delivery) -> Document:
    """The answer as the asking chat sees it: which host and request, then the result."""
    payload = delivery.payload
    state = str(payload.get("state") or "")
    icon = _ENDINGS.get(state, "↩")
    head = f"{icon} host {payload.get('host')} · request {payload.get('request')} · " + str(
        payload.get("command") or ""
    )
    blocks: list[Block] = [Paragraph(head.rstrip(" ·"))]
    for kind, text in payload.get("blocks") or ():
        blocks.append(_BLOCKS.get(str(kind), Paragraph)(str(text)))
    if payload.get("text"):
        blocks.append(Paragraph(str(payload["text"])))
    return Document(
        tuple(blocks),
        buttons=tuple(
            Button(str(label), str(action)) for label, action in payload.get("buttons") or ()
        ),
        attachments=tuple(
            Attachment(str(name), base64.b64decode(str(content)), str(mime))
            for name, content, mime in payload.get("files") or ()
        ),
    )
