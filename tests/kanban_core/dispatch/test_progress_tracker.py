"""dispatch.progress_tracker: folding session updates, and coalescing them to a bounded rate."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from kanban_core.dispatch.progress_tracker import ProgressTracker


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chunk(text: str) -> Any:
    return SimpleNamespace(content=SimpleNamespace(text=text))


def entry(content: str, status: str) -> Any:
    return SimpleNamespace(content=content, status=status)


def test_ten_thousand_updates_yield_a_bounded_number_of_events():
    clock = Clock()
    tracker = ProgressTracker(interval_s=3, clock=clock)
    emitted = []
    for i in range(10_000):
        clock.now = i * 0.001  # 10 s of updates, one per millisecond
        tracker.update("agent_message_chunk", chunk("x"))
        if (snap := tracker.take()) is not None:
            emitted.append(snap)
    if (final := tracker.take(final=True)) is not None:
        emitted.append(final)
    assert 2 <= len(emitted) <= 5  # one at the start, one per 3 s, the final flush
    assert emitted[-1]["updates"] == 10_000


def test_the_latest_state_wins_and_the_final_state_is_flushed():
    clock = Clock()
    tracker = ProgressTracker(interval_s=3, clock=clock)
    tracker.update("plan", SimpleNamespace(entries=[entry("read", "in_progress")]))
    first = tracker.take()
    assert first is not None
    assert first["plan"] == [{"content": "read", "status": "in_progress"}]
    tracker.update("tool_call", SimpleNamespace(title="Read foo.py", tool_call_id="c1"))
    tracker.update("plan", SimpleNamespace(entries=[entry("read", "completed")]))
    assert tracker.take() is None  # too soon
    final = tracker.take(final=True)
    assert final is not None
    assert final["plan"] == [{"content": "read", "status": "completed"}]
    assert (final["tool"], final["tool_calls"]) == ("Read foo.py", 1)
    assert tracker.take(final=True) is None  # nothing new since


def test_a_message_is_its_latest_text_and_counts_once():
    tracker = ProgressTracker(interval_s=3, clock=Clock())
    for part in ("Hel", "lo"):
        tracker.update("agent_message_chunk", chunk(part))
    tracker.update("tool_call_update", SimpleNamespace(title=None, status="completed"))
    tracker.update("agent_message_chunk", chunk("x" * 1000))
    snap = tracker.snapshot()
    assert snap["messages"] == 2
    assert snap["message"] == "x" * 300
    assert snap["tool"] == "tool (completed)"
