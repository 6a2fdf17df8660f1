"""A run's live progress as one short document, edited in place as the agent works."""

from __future__ import annotations

from typing import Any

from gateway.messages import Block, Document, Paragraph
from kanban_core.board.deliveries import Delivery

_STATUS_MARKS = {"completed": "☑", "in_progress": "▶", "pending": "☐"}
#: Plan entries shown; the rest is counted (the whole message stays short on every platform).
_SHOWN_ENTRIES = 8


def progress_document(delivery: Delivery) -> Document:
    """The progress snapshot of a delivery: the plan, the current tool, the agent's last words."""
    snap: dict[str, Any] = delivery.payload
    who = f" @{delivery.assignee}" if delivery.assignee else ""
    blocks: list[Block] = [Paragraph(f"⏳ t{delivery.task_id} {delivery.title} —{who} working")]
    plan = snap.get("plan") or []
    lines = [
        f"{_STATUS_MARKS.get(str(e.get('status')), '☐')} {e.get('content', '')}"
        for e in plan[:_SHOWN_ENTRIES]
    ]
    if len(plan) > _SHOWN_ENTRIES:
        lines.append(f"… {len(plan) - _SHOWN_ENTRIES} more steps")
    if lines:
        blocks.append(Paragraph("\n".join(lines)))
    if snap.get("tool"):
        blocks.append(Paragraph(f"🔧 {snap['tool']}"))
    if snap.get("message"):
        blocks.append(Paragraph(f"💬 {snap['message']}"))
    counts = (
        f"{int(snap.get('tool_calls') or 0)} tool calls, {int(snap.get('updates') or 0)} updates"
    )
    blocks.append(Paragraph(counts))
    return Document(tuple(blocks))


def progress_line(delivery: Delivery) -> Document:
    """The snapshot as one line, for platforms that cannot edit (a line per update)."""
    snap: dict[str, Any] = delivery.payload
    plan = snap.get("plan") or []
    current = next((e for e in plan if e.get("status") == "in_progress"), None)
    parts = [f"⏳ t{delivery.task_id} {delivery.title}"]
    if current is not None:
        done = sum(1 for e in plan if e.get("status") == "completed")
        parts.append(f"step {done + 1}/{len(plan)}: {current.get('content', '')}")
    if snap.get("tool"):
        parts.append(f"🔧 {snap['tool']}")
    parts.append(f"{int(snap.get('updates') or 0)} updates")
    return Document.text(" · ".join(parts))
