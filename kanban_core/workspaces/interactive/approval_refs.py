"""Which request a typed /approve or /deny means: its id, the end of it, or the chat's only one."""

from __future__ import annotations

from kanban_core.errors import ValidationError
from kanban_core.storage import Transaction
from kanban_core.workspaces.interactive import approvals
from kanban_core.workspaces.interactive.records import Approval, ChatPlace

_SHOWN = 5


def short(approval_id: str) -> str:
    """The short form shown in hints: the id's last part (``ap-1796455365-bf45d1`` → bf45d1)."""
    return approval_id.rsplit("-", 1)[-1]


def resolve(tx: Transaction, ref: str | None, place: ChatPlace | None, verb: str) -> str:
    """The full id of the request ``ref`` names among those open in ``place``.

    ``ref`` may be the full id, its last part or last digits (``bf45d1``, ``5365``,
    ``5365-bf45d1``), or nothing when exactly one request is open there. A full id is passed
    on as typed, so a used or expired request gets its own clear refusal.
    """
    text = (ref or "").strip()
    if text.startswith("ap-"):
        return text
    candidates = approvals.open_requests(tx, place)
    if text:
        candidates = [a for a in candidates if _matches(a.id, text)]
    if len(candidates) == 1:
        return candidates[0].id
    where = "in this chat" if place is not None else "open"
    if not candidates:
        named = f" matching {text!r}" if text else ""
        raise ValidationError(f"no pending request{named} {where}")
    listed = "; ".join(_line(a, verb) for a in candidates[:_SHOWN])
    more = f" and {len(candidates) - _SHOWN} more" if len(candidates) > _SHOWN else ""
    raise ValidationError(f"{len(candidates)} requests are open {where}, say which: {listed}{more}")


def _matches(approval_id: str, text: str) -> bool:
    _prefix, stamp, tail = [*approval_id.split("-", 2), "", ""][:3]
    return (
        approval_id.endswith(text)
        or (text.isdigit() and stamp.endswith(text))
        or tail.startswith(text)
    )


def _line(approval: Approval, verb: str) -> str:
    return f"/{verb} {short(approval.id)} ({approval.op} on {approval.workspace_id})"
