"""Another host's answer: a command result as JSON in the outbox, rebuilt for the asking chat."""

from __future__ import annotations

import json

from gateway.messages import Attachment, Button, Paragraph, Preformatted
from gateway.remote_reply import MAX_FILE_BYTES, reply_document, reply_payload
from kanban_core.board.deliveries import Delivery
from kanban_core.board.domain import TaskId
from kanban_core.commands.result import Action, CommandResult, FileOut, Table, Text


def _delivery(payload: dict[str, object]) -> Delivery:
    # Through JSON, as the event log stores it.
    stored = json.loads(json.dumps(payload))
    return Delivery(1, 1, TaskId(3), "telegram", "100", "", 1, "exec_reply", stored, "t", None)


def test_a_result_comes_back_with_its_blocks_buttons_and_files() -> None:
    result = CommandResult(
        blocks=(Text("Commit 1 file(s)"), Table(("A",), (("b",),))),
        actions=(Action("Confirm", "ap:ap-1:n"),),
        files=(FileOut("ws.diff", b"+x\n", "text/x-diff"),),
    )
    head = {"request": 7, "host": "build-2", "command": "commit", "state": "done"}
    document = reply_document(_delivery(head | reply_payload(result)))
    assert document.blocks[0] == Paragraph("↩ host build-2 · request 7 · commit")
    assert document.blocks[1] == Paragraph("Commit 1 file(s)")
    assert isinstance(document.blocks[2], Preformatted)
    assert document.buttons == (Button("Confirm", "ap:ap-1:n"),)
    assert document.attachments == (Attachment("ws.diff", b"+x\n", "text/x-diff"),)


def test_a_file_too_large_is_named_not_carried() -> None:
    big = FileOut("ws.diff", b"x" * (MAX_FILE_BYTES + 1), "text/x-diff")
    payload = reply_payload(CommandResult(blocks=(Text("diff"),), files=(big,)))
    assert payload["files"] == []
    assert "ws.diff (1024 KiB) is too large" in payload["blocks"][-1][1]


def test_an_expiry_is_flagged_in_its_first_line() -> None:
    payload = {"request": 9, "host": "build-2", "command": "diff", "state": "expired"}
    document = reply_document(_delivery(payload | {"text": "request 9 expired unrun"}))
    assert document.blocks == (
        Paragraph("⌛ host build-2 · request 9 · diff"),
        Paragraph("request 9 expired unrun"),
    )
