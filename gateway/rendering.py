"""Kernel results and events into neutral documents (adapters do the platform markup)."""

from __future__ import annotations

import json

from gateway.messages import Block, Button, Document, Heading, Paragraph, Preformatted
from kanban_core.board.deliveries import Delivery
from kanban_core.commands import CommandResult
from kanban_core.commands.render import render_table
from kanban_core.commands.result import Heading as ResultHeading, Table, Text

_KIND_ICONS = {
    "completed": "✔",
    "blocked": "⏸",
    "gave_up": "✖",
    "crashed": "✖",
    "timed_out": "⏱",
    "workspace_notice": "🔔",
    "permission_requested": "🔐",
    "permission_expired": "⌛",
    "quota_paused": "⏳",
    "quota_resumed": "▶",
}


def result_document(result: CommandResult) -> Document:
    """A command's result for chat: JSON in a code block, tables preformatted, errors flagged."""
    blocks: list[Block] = []
    if result.as_json:
        blocks.append(Preformatted(json.dumps(result.data, indent=2, ensure_ascii=False)))
    for block in result.blocks:
        if isinstance(block, Table):
            blocks.append(Preformatted(render_table(block)))
        elif isinstance(block, ResultHeading):
            blocks.append(Heading(block.text))
        elif isinstance(block, Text):
            blocks.append(Paragraph(block.text))
    for error in result.errors:
        usage, _, message = error.rpartition("\n")
        if usage:
            blocks.append(Preformatted(usage))
        blocks.append(Paragraph(f"⚠ {message}"))
    if not blocks:
        blocks.append(Paragraph("(no output)"))
    return Document(tuple(blocks))


def event_document(delivery: Delivery) -> Document:
    """A terminal event as a notification: title first, then what happened."""
    if delivery.kind == "permission_requested":
        return permission_card(delivery)
    icon = _KIND_ICONS.get(delivery.kind, "•")
    who = f" by @{delivery.assignee}" if delivery.assignee else ""
    head = f"{icon} t{delivery.task_id} {delivery.title}"
    payload = delivery.payload
    if delivery.kind == "completed":
        line = f"completed{who}" + (f": {payload['summary']}" if payload.get("summary") else "")
    elif delivery.kind == "blocked" and payload.get("stopped"):
        # A person stopped the agent's turn: say who, and what waits (not the agent's block).
        icon, queued = "⏹", int(payload.get("queued") or 0)
        head = f"{icon} t{delivery.task_id} {delivery.title}"
        line = f"stopped by {payload.get('by') or 'an operator'}" + (
            f"; {queued} queued follow-up(s) paused — nothing runs until you choose"
            if queued
            else "; your next message continues it"
        )
    elif delivery.kind == "blocked" and payload.get("kind") == "budget":
        icon = "💰"
        head = f"{icon} t{delivery.task_id} {delivery.title}"
        line = (
            f"stopped at its budget{who}: {payload.get('reason') or 'budget reached'}"
            " — unblock it to let it run again"
        )
    elif delivery.kind == "blocked" and payload.get("kind") == "placement":
        # Its host was revoked: no one may claim it until an admin re-places it.
        line = f"blocked: {payload.get('reason') or 'its host was revoked'}"
    elif delivery.kind == "blocked":
        # An operator's own block names them; a worker's block names the agent.
        by = f" by {payload['by']}" if payload.get("by") else who
        line = f"blocked{by}: {payload.get('reason') or 'needs a human'}"
    elif delivery.kind == "gave_up":
        line = (
            f"gave up after {payload.get('failures', '?')} failed attempts: "
            f"{payload.get('error') or 'see kanban show'} — unblock it to retry"
        )
    elif delivery.kind == "timed_out":
        line = f"timed out{who}: {payload.get('error') or 'exceeded its max runtime'}"
    elif delivery.kind == "crashed":
        line = f"crashed{who}: {payload.get('error') or 'the worker died'}"
    elif delivery.kind == "workspace_notice":
        line = str(payload.get("text") or "")
    else:
        line = _waiting_line(delivery, who) or delivery.kind
    return Document((Paragraph(head), Paragraph(line)), buttons=_fast_path(delivery))


def _waiting_line(delivery: Delivery, who: str) -> str | None:
    """The line of a notice about an agent's wait: an unanswered card, its usage limit."""
    payload = delivery.payload
    if delivery.kind == "permission_expired":
        ref = payload.get("ref") or "the request"
        return f"nobody answered {ref} in time; the agent was told no"
    if delivery.kind == "quota_paused":
        # The reason carries the resume time; it runs again by itself, nothing to press.
        return f"paused{who}: {payload.get('reason') or 'usage limit reached'}"
    if delivery.kind == "quota_resumed":
        return f"resumed after the usage limit{who}"
    return None


def permission_card(delivery: Delivery) -> Document:
    """An agent's question: what it wants to run, and one button per answer.

    The typed commands are spelled out too: a platform without buttons, or a person who wants
    to give a reason, answers with them.
    """
    payload = delivery.payload
    ref = str(payload.get("ref") or "")
    tool = str(payload.get("tool") or "a tool")
    blocks: list[Block] = [
        Paragraph(f"🔐 t{delivery.task_id} asks to run: {payload.get('summary') or tool}"),
        Paragraph(f"{delivery.title} · {tool}"),
    ]
    if payload.get("detail"):
        blocks.append(Preformatted(str(payload["detail"])))
    blocks.append(Paragraph(f"/allow {ref} · /allow {ref} --run · /deny {ref} [reason]"))
    buttons = (
        Button("Allow once", f"k:kanban allow {ref}"),
        Button("Allow for this run", f"k:kanban allow {ref} --run"),
        Button("Deny", f"k:kanban deny {ref}"),
    )
    return Document(tuple(blocks), buttons=buttons if ref else ())


_SETTLED = {"allow_once": "allowed once", "allow_run": "allowed for the rest of its run"}


def settled_card(delivery: Delivery) -> Document:
    """What a permission card becomes once answered or expired: how, by whom, no buttons."""
    payload = delivery.payload
    ref = str(payload.get("ref") or "the request")
    if delivery.kind == "permission_expired":
        line = f"⌛ nobody answered {ref} in time; the agent was told no"
    else:
        decision = str(payload.get("decision") or "")
        by = str(payload.get("by") or "someone")
        by = by if by.startswith("@") or ":" in by else f"@{by}"
        verdict = _SETTLED.get(decision, "denied")
        line = f"{'✅' if decision in _SETTLED else '⛔'} {ref} {verdict} by {by}"
        if payload.get("reason"):
            line += f": {payload['reason']}"
    tool = str(payload.get("tool") or "a tool")
    return Document(
        (
            Paragraph(f"🔐 t{delivery.task_id} asked to run: {payload.get('summary') or tool}"),
            Paragraph(f"{delivery.title} · {tool}"),
            Paragraph(line),
        )
    )


def _fast_path(delivery: Delivery) -> tuple[Button, ...]:
    """Buttons under a notification: the next things people do after it."""
    ref = f"t{delivery.task_id}"
    if delivery.kind == "workspace_notice":
        extra = delivery.payload.get("buttons") or []
        return tuple(Button(str(label), str(action)) for label, action in extra)[:5]
    if delivery.kind == "blocked" and delivery.payload.get("stopped"):
        return _stopped_turn(delivery)
    buttons = [Button("Show", f"k:kanban show {ref}")]
    if delivery.payload.get("kind") == "placement":
        return tuple(buttons)  # unblocking is refused until an admin re-places it
    if delivery.kind in ("blocked", "gave_up"):
        buttons.append(Button("Unblock", f"k:kanban unblock {ref}"))
    if delivery.workspace_kind == "worktree":
        buttons += [
            Button("Diff", f"k:diff --ws {ref}"),
            Button("Commit", f"k:commit --ws {ref}"),
            Button("PR", f"k:pr --ws {ref}"),
        ]
    return tuple(buttons)


def _stopped_turn(delivery: Delivery) -> tuple[Button, ...]:
    """A stopped turn: the paused queue's choices and the review, never a bare unblock."""
    ws = str(delivery.payload.get("workspace") or f"t{delivery.task_id}")
    buttons = []
    if int(delivery.payload.get("queued") or 0):
        buttons += [
            Button("Run next", f"k:queue run --ws {ws}"),
            Button("Clear queue", f"k:queue clear --ws {ws}"),
        ]
    return (*buttons, Button("Diff", f"k:diff --ws {ws}"), Button("Commit", f"k:commit --ws {ws}"))
