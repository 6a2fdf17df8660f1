"""board.recovery: usage-limit pauses (not failures), per-run usage and budgets."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from kanban_core import (
    Actor,
    BlockKind,
    Claim,
    Kanban,
    PermissionDenied,
    RunOutcome,
    StaleRun,
    TaskId,
    TaskStatus,
    ValidationError,
)
from kanban_core.board.recovery import USAGE_GRACE_MS, FailurePolicy, QuotaPause
from tests.kanban_core.support import db_now, event_kinds, execute, rows, set_columns, worker

TTL_S = 120
BACKOFF_S = 900


def _claim(board: Kanban, operator: Actor, task_id: TaskId) -> Claim:
    claim = board.claim(operator, task_id, ttl_s=TTL_S)
    assert claim is not None
    return claim


def _pause(
    board: Kanban, claim: Claim, *, resume_at_ms: int | None = None, message: str = "x"
) -> QuotaPause:
    """The claim's own worker reports a usage limit."""
    return board.record_quota(
        worker(claim),
        claim.task.id,
        claim.run_id,
        resume_at_ms=resume_at_ms,
        message=message,
        backoff_s=BACKOFF_S,
    )


def test_quota_pauses_until_the_reset_and_is_not_a_failure(board, operator, make_task) -> None:
    task = make_task()
    set_columns(board, task.id, max_retries=2)
    for _ in range(5):
        claim = _claim(board, operator, task.id)
        resume = db_now(board) + 3_600_000
        pause = _pause(board, claim, resume_at_ms=resume, message="limit")
        assert pause.resume_at_ms == resume
        after = board.get(task.id)
        assert after.status is TaskStatus.READY
        assert after.consecutive_failures == 0
        assert after.not_before_ms == resume
        clock = datetime.fromtimestamp(resume / 1000, UTC).strftime("%H:%M")
        assert after.pause_reason == f"usage limit reached; resumes at {clock} UTC"
        assert board.claim(operator, ttl_s=TTL_S) is None  # waits for the reset
        set_columns(board, task.id, not_before_ms=None)
    outcomes = [run.outcome for run in board.runs(task.id)]
    assert outcomes == [RunOutcome.QUOTA] * 5
    assert "gave_up" not in event_kinds(board, task.id)


def test_unknown_reset_waits_the_backoff(board, operator, make_task) -> None:
    task = make_task()
    claim = _claim(board, operator, task.id)
    before = db_now(board)
    pause = _pause(board, claim, message="quota exceeded")
    assert before + BACKOFF_S * 1000 <= pause.resume_at_ms <= db_now(board) + BACKOFF_S * 1000
    past = _claim_after_reset(board, operator, task.id)
    assert past.task.pause_reason is None


def _claim_after_reset(board: Kanban, operator: Actor, task_id: TaskId) -> Claim:
    set_columns(board, task_id, not_before_ms=db_now(board) - 1)
    return _claim(board, operator, task_id)


def test_a_reset_in_the_past_still_waits_the_backoff(board, operator, make_task) -> None:
    task = make_task()
    claim = _claim(board, operator, task.id)
    before = db_now(board)
    pause = _pause(board, claim, resume_at_ms=before - 60_000)
    assert pause.resume_at_ms >= before + BACKOFF_S * 1000


def test_pause_and_resume_events_notify_subscribed_chats(board, operator, make_task) -> None:
    task = make_task()
    board.subscribe(operator, task.id, platform="telegram", chat_id="42")
    claim = _claim(board, operator, task.id)
    _pause(board, claim, message="usage limit")
    again = _claim_after_reset(board, operator, task.id)
    assert again.task.pause_reason is None
    assert board.get(task.id).pause_reason is None
    kinds = event_kinds(board, task.id)
    assert kinds[-3:] == ["quota_paused", "claimed", "quota_resumed"]
    delivered = rows(
        board,
        "SELECT e.kind FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id "
        "WHERE d.task_id = :id ORDER BY d.id",
        id=task.id,
    )
    assert [row[0] for row in delivered] == ["quota_paused", "quota_resumed"]


def test_an_unpaused_claim_emits_no_resume(board, operator, make_task) -> None:
    task = make_task()
    _claim(board, operator, task.id)
    assert "quota_resumed" not in event_kinds(board, task.id)


def test_quota_is_fenced(board, operator, make_task) -> None:
    task = make_task()
    claim = _claim(board, operator, task.id)
    board.record_failure(
        operator, task.id, claim.run_id, RunOutcome.CRASHED, "boom", FailurePolicy(limit=5)
    )
    with pytest.raises(StaleRun):
        board.record_quota(
            operator, task.id, claim.run_id, resume_at_ms=None, message="x", backoff_s=BACKOFF_S
        )
    other = make_task()
    other_claim = _claim(board, operator, other.id)
    with pytest.raises(PermissionDenied):
        board.record_quota(
            worker(other_claim),
            task.id,
            claim.run_id,
            resume_at_ms=None,
            message="x",
            backoff_s=BACKOFF_S,
        )
    with pytest.raises(PermissionDenied):
        board.record_usage(worker(other_claim), task.id, claim.run_id, 1, 1, 1)


def test_quota_with_a_waiting_parent_goes_to_todo(board, operator, make_task) -> None:
    task = make_task()
    claim = _claim(board, operator, task.id)
    parent = make_task()
    board.link(operator, parent.id, task.id)
    _pause(board, claim)
    assert board.get(task.id).status is TaskStatus.TODO


def test_usage_is_cumulative_per_run_and_summed_per_task(board, operator, make_task) -> None:
    task = make_task(max_cost_micro_usd=1_000_000)
    claim = _claim(board, operator, task.id)
    totals = board.record_usage(worker(claim), task.id, claim.run_id, 100, 20, 300_000)
    assert (totals.tokens, totals.cost_micro_usd) == (120, 300_000)
    totals = board.record_usage(worker(claim), task.id, claim.run_id, 200, 40, 600_000)
    assert (totals.tokens, totals.cost_micro_usd) == (240, 600_000)
    assert totals.over_budget() is None
    _pause(board, claim)
    second = _claim_after_reset(board, operator, task.id)
    totals = board.record_usage(worker(second), task.id, second.run_id, 10, 10, 600_000)
    assert totals.cost_micro_usd == 1_200_000
    assert totals.over_budget() == "budget reached: $1.2000 of $1.0000 (260 tokens)"
    run = board.runs(task.id)[0]
    assert run.to_json()["cost_usd"] == pytest.approx(0.6)
    assert (run.input_tokens, run.output_tokens) == (200, 40)


def test_token_budget_and_budget_block(board, operator, make_task) -> None:
    task = make_task(max_tokens=100)
    claim = _claim(board, operator, task.id)
    totals = board.record_usage(worker(claim), task.id, claim.run_id, 90, 10, None)
    reason = totals.over_budget()
    assert reason == "budget reached: 100 of 100 tokens ($0.0000)"
    blocked = board.block_for_budget(worker(claim), task.id, reason)
    assert blocked.status is TaskStatus.BLOCKED
    assert blocked.block_kind is BlockKind.BUDGET
    assert board.claim(operator, ttl_s=TTL_S) is None
    assert board.unblock(operator, task.id).status is TaskStatus.READY


@pytest.mark.parametrize("field", ["max_cost_micro_usd", "max_tokens"])
def test_budgets_must_be_positive(board, operator, field) -> None:
    with pytest.raises(ValidationError):
        board.create(operator, title="x", **{field: 0})
    assert board.list() == []


def test_the_runs_worker_reports_its_last_usage_after_the_verdict(board, operator, make_task):
    task = make_task()
    claim = _claim(board, operator, task.id)
    board.record_usage(worker(claim), task.id, claim.run_id, 40, 7, None)
    board.complete(worker(claim), task.id, summary="done")
    # The agent's final report (Claude Code's result line) follows its verdict.
    totals = board.record_usage(worker(claim), task.id, claim.run_id, 50, 9, 250_000)
    assert (totals.tokens, totals.cost_micro_usd) == (59, 250_000)
    # Only growing: a late, older report does not undo it.
    board.record_usage(worker(claim), task.id, claim.run_id, 45, None, 100_000)
    (run,) = board.runs(task.id)
    assert (run.input_tokens, run.output_tokens, run.cost_micro_usd) == (50, 9, 250_000)
    assert run.outcome is RunOutcome.COMPLETED
    # An operator reports on open runs only; nothing changes.
    board.record_usage(operator, task.id, claim.run_id, 500, 90, 900_000)
    assert board.runs(task.id)[0].input_tokens == 50


def test_late_usage_is_refused_to_another_token_and_after_the_grace(board, operator, make_task):
    task = make_task()
    first = _claim(board, operator, task.id)
    board.block(worker(first), task.id, reason="needs a look")
    board.unblock(operator, task.id)
    second = _claim(board, operator, task.id)
    forged = replace(first, run_id=second.run_id)  # the old attempt's token
    with pytest.raises(StaleRun, match="token does not match"):
        board.record_usage(worker(forged), task.id, second.run_id, 1, 1, 1)
    with pytest.raises(PermissionDenied, match="its own run"):
        board.record_usage(worker(second), task.id, first.run_id, 1, 1, 1)
    board.complete(worker(second), task.id)
    execute(
        board,
        "UPDATE task_runs SET ended_ms = ended_ms - :grace - 1000 WHERE id = :id",
        grace=USAGE_GRACE_MS,
        id=second.run_id,
    )
    with pytest.raises(StaleRun, match="ended too long ago"):
        board.record_usage(worker(second), task.id, second.run_id, 5, 5, 5)
    assert [run.input_tokens for run in board.runs(task.id)] == [None, None]
