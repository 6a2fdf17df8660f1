"""Live progress of a run: the bounded snapshot of what the agent is doing."""

from __future__ import annotations

import re
from typing import Any

MAX_PLAN_ENTRIES = 20
MAX_ENTRY_CHARS = 200
MAX_MESSAGE_CHARS = 300
MAX_TOOL_CHARS = 200
# Plan entry statuses an ACP agent reports; anything else is shown as pending.
_STATUSES = frozenset({"pending", "in_progress", "completed"})
# Progress is shown verbatim in chats: every control character (even newline) is dropped so
# a hostile agent cannot forge lines or corrupt a terminal.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f]")
_COUNTS = ("tool_calls", "messages", "updates")


def _clip(value: object, limit: int) -> str:
    text = _CONTROL.sub(" ", str(value)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot reduced to its known, bounded fields (unknown keys are dropped)."""
    plan = []
    raw_plan = snapshot.get("plan")
    for entry in raw_plan[:MAX_PLAN_ENTRIES] if isinstance(raw_plan, list) else []:
        if isinstance(entry, dict):
            status = str(entry.get("status", "pending"))
            text = _clip(entry.get("content", ""), MAX_ENTRY_CHARS)
        else:
            status, text = "pending", _clip(entry, MAX_ENTRY_CHARS)
        plan.append({"content": text, "status": status if status in _STATUSES else "pending"})
    out: dict[str, Any] = {"plan": plan}
    tool = snapshot.get("tool")
    out["tool"] = _clip(tool, MAX_TOOL_CHARS) if tool else None
    message = snapshot.get("message")
    out["message"] = _clip(message, MAX_MESSAGE_CHARS) if message else None
    for key in _COUNTS:
        value = snapshot.get(key, 0)
        out[key] = value if isinstance(value, int) and not isinstance(value, bool) else 0
        out[key] = max(0, min(out[key], 10**12))
    return out
