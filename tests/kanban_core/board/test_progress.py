"""board.progress and Kanban.progress: the bounded snapshot, fenced writes, per-chat fan-out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kanban_core import Claim, PermissionDenied, StaleRun
from kanban_core.board.progress import (
    MAX_ENTRY_CHARS,
    MAX_MESSAGE_CHARS,
    MAX_PLAN_ENTRIES,
    bounded_snapshot,
)
from tests.kanban_core.support import rows, snapshot, worker


@pytest.fixture
def claimed(board, operator, make_task):
    """Factory: a fresh task claimed by the operator; returns the Claim."""

    def factory() -> Claim:
        claim: Claim | None = board.claim(operator, make_task().id, ttl_s=120)
        assert claim is not None
        return claim

    return factory


def test_the_snapshot_is_bounded_and_stripped_of_control_characters():
    raw: dict[str, Any] = {
        "plan": [{"content": "x" * 1000, "status": "in_progress"}] * 50 + ["plain"],
        "tool": "run\x1b[31m tests\n",
        "message": "m" * 5000,
        "tool_calls": 7,
        "updates": True,  # not a count
        "secret": "dropped",
    }
    out = bounded_snapshot(raw)
    assert len(out["plan"]) == MAX_PLAN_ENTRIES
    assert all(len(e["content"]) <= MAX_ENTRY_CHARS for e in out["plan"])
    assert out["plan"][0]["status"] == "in_progress"
    assert out["tool"] == "run [31m tests"
    assert len(out["message"]) <= MAX_MESSAGE_CHARS
    assert (out["tool_calls"], out["updates"], out["messages"]) == (7, 0, 0)
    assert "secret" not in out


def test_an_unknown_plan_status_is_shown_as_pending():
    out = bounded_snapshot({"plan": [{"content": "a", "status": "evil\n"}]})
    assert out["plan"] == [{"content": "a", "status": "pending"}]


def test_progress_appends_a_bounded_event_for_the_current_run(board, claimed):
    claim = claimed()
    event_id = board.progress(worker(claim), claim.task.id, {"message": "hi\x00", "plan": []})
    ((kind, run_id, payload),) = rows(
        board, "SELECT kind, run_id, payload FROM task_events WHERE id = :id", id=event_id
    )
    assert (kind, run_id) == ("progress", claim.run_id)
    assert json.loads(payload)["message"] == "hi"


def test_progress_from_a_stale_run_is_refused_and_changes_nothing(board, operator, claimed):
    old = claimed()
    board.reclaim(operator, old.task.id)
    assert board.claim(operator, old.task.id) is not None
    before = snapshot(board)
    with pytest.raises(StaleRun):
        board.progress(worker(old), old.task.id, {"message": "late"})
    assert snapshot(board) == before


def test_progress_needs_run_credentials(board, operator, claimed):
    claim = claimed()
    with pytest.raises(PermissionDenied):
        board.progress(operator, claim.task.id, {})


def test_progress_reaches_only_chats_with_progress_on(board, operator, claimed):
    claim = claimed()
    for chat in ("1", "2"):
        board.subscribe(operator, claim.task.id, platform="telegram", chat_id=chat)
    assert board.set_progress(
        operator, claim.task.id, platform="telegram", chat_id="2", thread_id=None, on=False
    )
    event_id = board.progress(worker(claim), claim.task.id, {"message": "working"})
    chats = rows(board, "SELECT chat_id FROM notify_deliveries WHERE event_id = :e", e=event_id)
    assert chats == [("1",)]
    board.complete(worker(claim), claim.task.id, summary="ok")
    done = rows(
        board,
        "SELECT d.chat_id FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id "
        "WHERE e.kind = 'completed' ORDER BY d.chat_id",
    )
    assert done == [("1",), ("2",)]  # the terminal notification still reaches both


def test_turning_progress_on_an_unsubscribed_chat_says_so(board, operator, claimed):
    claim = claimed()
    assert not board.set_progress(
        operator, claim.task.id, platform="telegram", chat_id="9", thread_id=None, on=True
    )
