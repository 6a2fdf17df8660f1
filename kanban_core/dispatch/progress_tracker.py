"""Folds an agent's updates (ACP or stream-json) into a progress snapshot, at a bounded rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kanban_core.board.progress import MAX_MESSAGE_CHARS, MAX_PLAN_ENTRIES

#: Kept of the agent's running message: only its tail is ever shown.
_MESSAGE_KEEP = MAX_MESSAGE_CHARS * 2


@dataclass(slots=True)
class ProgressTracker:
    """The latest state of one run; ``due`` says when a snapshot may be emitted (coalescing).

    Pure: the clock is passed in, nothing is written. The caller emits what :meth:`take` returns.
    """

    interval_s: float
    clock: Callable[[], float]
    plan: list[dict[str, str]] = field(default_factory=list)
    tool: str | None = None
    message: str = ""
    tool_calls: int = 0
    messages: int = 0
    updates: int = 0
    _dirty: bool = False
    _last_emit: float | None = None
    _in_message: bool = False

    def update(self, kind: str, update: Any) -> None:
        """Fold one ``session/update`` into the state."""
        self.updates += 1
        self._dirty = True
        if kind == "agent_message_chunk":
            text = getattr(getattr(update, "content", None), "text", None)
            if isinstance(text, str):
                self._said(text)
            return
        self._in_message = False
        if kind == "plan":
            entries = getattr(update, "entries", None) or ()
            self.plan = [
                {"content": str(e.content), "status": str(e.status)}
                for e in list(entries)[:MAX_PLAN_ENTRIES]
            ]
        elif kind == "tool_call":
            self._tool(str(getattr(update, "title", None) or getattr(update, "tool_call_id", "")))
        elif kind == "tool_call_update":
            title = getattr(update, "title", None)
            if title:
                self.tool = str(title)
            if getattr(update, "status", None) in ("completed", "failed"):
                status = str(update.status)
                self.tool = f"{self.tool or 'tool'} ({status})"

    def said(self, text: str, *, whole: bool = False) -> None:
        """The agent said ``text``: a chunk of its running message, or a ``whole`` message."""
        self.updates += 1
        self._dirty = True
        if whole:
            self._in_message = False
        self._said(text)
        if whole:
            self._in_message = False

    def planned(self, entries: list[tuple[str, str]]) -> None:
        """The agent's plan (content, status) replaced its previous one."""
        self.updates += 1
        self._dirty = True
        self._in_message = False
        self.plan = [{"content": c, "status": s} for c, s in entries[:MAX_PLAN_ENTRIES]]

    def tool_started(self, title: str) -> None:
        """The agent started a tool call (which ends its running message)."""
        self.updates += 1
        self._dirty = True
        self._in_message = False
        self._tool(title)

    def _tool(self, title: str) -> None:
        self.tool_calls += 1
        self.tool = title

    def _said(self, text: str) -> None:
        if not self._in_message:
            self.messages += 1
            self.message = ""
        self._in_message = True
        self.message = (self.message + text)[-_MESSAGE_KEEP:]

    def snapshot(self) -> dict[str, Any]:
        """The current state as a (not yet bounded) progress payload."""
        return {
            "plan": list(self.plan),
            "tool": self.tool,
            "message": self.message[-MAX_MESSAGE_CHARS:] or None,
            "tool_calls": self.tool_calls,
            "messages": self.messages,
            "updates": self.updates,
        }

    def take(self, *, final: bool = False) -> dict[str, Any] | None:
        """The snapshot to emit now, or None: nothing new, or too soon (unless ``final``)."""
        if not self._dirty:
            return None
        now = self.clock()
        if not final and self._last_emit is not None and now - self._last_emit < self.interval_s:
            return None
        self._dirty = False
        self._last_emit = now
        return self.snapshot()
