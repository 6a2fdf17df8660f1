"""Command results and terminal events as neutral documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.messages import Button, Document, Heading, Paragraph, Preformatted
from gateway.rendering import event_document, result_document
from kanban_core import TaskId
from kanban_core.board.deliveries import Delivery
from kanban_core.board.placement import stranded_reason
from kanban_core.commands import CommandResult
from kanban_core.commands.result import Action, FileOut, Heading as ResultHeading, Table, Text


def test_text_and_headings_become_paragraphs_and_headings():
    result = CommandResult(blocks=(ResultHeading("t1 fix it"), Text("line one\nline two")))
    assert result_document(result) == Document(
        (Heading("t1 fix it"), Paragraph("line one\nline two"))
    )


def test_tables_are_preformatted_and_aligned():
    table = Table(("ID", "STATUS", "TITLE"), (("t1", "ready", "a"), ("t10", "done", "b c")))
    document = result_document(CommandResult(blocks=(table,)))
    assert document == Document(
        (Preformatted("ID   STATUS  TITLE\nt1   ready   a\nt10  done    b c"),)
    )


def test_json_is_one_code_block_that_parses_back():
    data = {"id": "t1", "title": "café ☕", "tags": [1, 2]}
    document = result_document(CommandResult(data=data, as_json=True))
    (block,) = document.blocks
    assert isinstance(block, Preformatted)
    assert "café ☕" in block.text  # not \\u-escaped
    assert json.loads(block.text) == data


def test_a_usage_error_shows_the_usage_then_the_message():
    usage = "usage: /kanban show [-h] [--json]\n                    task_id"
    result = CommandResult(exit_code=2, errors=(f"{usage}\nusage error: bad id",))
    assert result_document(result).blocks == (
        Preformatted(usage),
        Paragraph("⚠ usage error: bad id"),
    )


def test_plain_errors_are_flagged_after_any_output():
    result = CommandResult(
        exit_code=1, blocks=(Text("Archived t1"),), errors=("t2 not found", "t3 not found")
    )
    assert result_document(result).blocks == (
        Paragraph("Archived t1"),
        Paragraph("⚠ t2 not found"),
        Paragraph("⚠ t3 not found"),
    )


def test_no_output_says_so():
    assert result_document(CommandResult()).blocks == (Paragraph("(no output)"),)


def delivery(
    kind: str, payload: dict[str, Any], assignee: str | None = "coder", workspace: str = "scratch"
) -> Delivery:
    return Delivery(
        id=1,
        event_id=2,
        task_id=TaskId(7),
        platform="telegram",
        chat_id="100",
        thread_id="",
        attempts=1,
        kind=kind,
        payload=payload,
        title="migrate the database",
        assignee=assignee,
        workspace_kind=workspace,
    )


@pytest.mark.parametrize(
    ("kind", "payload", "assignee", "head", "line"),
    [
        (
            "completed",
            {"summary": "moved 3 tables"},
            "coder",
            "✔",
            "completed by @coder: moved 3 tables",
        ),
        ("completed", {"summary": None}, None, "✔", "completed"),
        ("blocked", {"reason": "which region?"}, "coder", "⏸", "blocked by @coder: which region?"),
        ("blocked", {}, None, "⏸", "blocked: needs a human"),
        (
            "blocked",
            {"reason": "waiting on legal", "by": "alice"},
            "coder",
            "⏸",
            "blocked by alice: waiting on legal",
        ),
        (
            "blocked",
            {"reason": "stopped by alice", "by": "alice", "stopped": True, "queued": 2},
            "coder",
            "⏹",
            "stopped by alice; 2 queued follow-up(s) paused — nothing runs until you choose",
        ),
        (
            "blocked",
            {"reason": "stopped by alice", "by": "alice", "stopped": True, "queued": 0},
            "coder",
            "⏹",
            "stopped by alice; your next message continues it",
        ),
        (
            "gave_up",
            {"error": "lease expired", "failures": 3},
            "coder",
            "✖",
            "gave up after 3 failed attempts: lease expired — unblock it to retry",
        ),
        (
            "gave_up",
            {},
            None,
            "✖",
            "gave up after ? failed attempts: see kanban show — unblock it to retry",
        ),
        ("crashed", {"error": "exit 137"}, "coder", "✖", "crashed by @coder: exit 137"),
        ("crashed", {}, None, "✖", "crashed: the worker died"),
        ("timed_out", {"error": "over 30m"}, "coder", "⏱", "timed out by @coder: over 30m"),
        ("timed_out", {}, None, "⏱", "timed out: exceeded its max runtime"),
        ("archived", {}, "coder", "•", "archived"),
        (
            "blocked",
            {"reason": "budget reached: $1.2000 of $1.0000 (2000 tokens)", "kind": "budget"},
            "coder",
            "💰",
            "stopped at its budget by @coder: budget reached: $1.2000 of $1.0000 (2000 tokens)"
            " — unblock it to let it run again",
        ),
        (
            "quota_paused",
            {"reason": "usage limit reached; resumes at 14:05 UTC", "resume_at_ms": 1},
            "coder",
            "⏳",
            "paused by @coder: usage limit reached; resumes at 14:05 UTC",
        ),
        ("quota_resumed", {"after": "x"}, "coder", "▶", "resumed after the usage limit by @coder"),
        (
            "permission_expired",
            {"ref": "p3"},
            "coder",
            "⌛",
            "nobody answered p3 in time; the agent was told no",
        ),
    ],
)
def test_each_event_kind_reads_title_first_then_what_happened(kind, payload, assignee, head, line):
    document = event_document(delivery(kind, payload, assignee))
    assert document.blocks == (Paragraph(f"{head} t7 migrate the database"), Paragraph(line))


def test_a_workspace_notice_shows_its_text_and_its_buttons():
    notice = delivery(
        "workspace_notice",
        {"text": "ws-1: 2 queued follow-up(s) paused", "buttons": [["Run next", "k:queue run"]]},
    )
    document = event_document(notice)
    assert document.blocks[1] == Paragraph("ws-1: 2 queued follow-up(s) paused")
    assert document.buttons == (Button("Run next", "k:queue run"),)


def test_notifications_offer_the_next_steps_as_buttons():
    plain = event_document(delivery("completed", {"summary": "done"}))
    assert [b.action for b in plain.buttons] == ["k:kanban show t7"]
    blocked = event_document(delivery("blocked", {"reason": "?"}, workspace="worktree"))
    assert [b.label for b in blocked.buttons] == ["Show", "Unblock", "Diff", "Commit", "PR"]
    assert Button("Diff", "k:diff --ws t7") in blocked.buttons


def test_a_budget_block_offers_unblock_and_a_pause_only_show():
    budget = event_document(delivery("blocked", {"reason": "budget reached", "kind": "budget"}))
    assert [b.label for b in budget.buttons] == ["Show", "Unblock"]
    paused = event_document(delivery("quota_paused", {"reason": "usage limit reached"}))
    assert [b.label for b in paused.buttons] == ["Show"]


def test_a_stopped_turn_offers_the_queue_and_the_review_never_unblock():
    stopped = {"reason": "stopped by alice", "by": "alice", "stopped": True, "workspace": "ws-1"}
    queued = event_document(delivery("blocked", stopped | {"queued": 1}, workspace="worktree"))
    assert queued.buttons == (
        Button("Run next", "k:queue run --ws ws-1"),
        Button("Clear queue", "k:queue clear --ws ws-1"),
        Button("Diff", "k:diff --ws ws-1"),
        Button("Commit", "k:commit --ws ws-1"),
    )
    idle = event_document(delivery("blocked", stopped | {"queued": 0}, workspace="worktree"))
    assert [b.label for b in idle.buttons] == ["Diff", "Commit"]


def test_result_actions_and_files_reach_the_document():
    result = CommandResult(
        blocks=(Text("card"),),
        actions=(Action("Confirm", "ap:ap-1:abc"),),
        files=(FileOut("ws.diff", b"+x\n"),),
    )
    from gateway.router import _document

    document = _document(result, "ws")
    assert document.buttons == (Button("Confirm", "ap:ap-1:abc"),)
    assert [(a.filename, a.content) for a in document.attachments] == [("ws.diff", b"+x\n")]


def test_a_placement_block_says_why_and_offers_no_unblock():
    reason = stranded_reason(TaskId(7), "alpha", None)
    assert "re-place it (`edit t7 --host H`" in reason  # the verb alone: it reads right in chat
    doc = event_document(
        delivery("blocked", {"reason": reason, "kind": "placement", "host": "alpha"})
    )
    assert doc.blocks[-1] == Paragraph(f"blocked: {reason}")
    # Unblocking is refused until an admin re-places it: the button would only fail.
    assert [b.label for b in doc.buttons] == ["Show"]
