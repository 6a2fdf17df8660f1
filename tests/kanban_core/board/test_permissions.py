"""board.permissions: agents ask, a person answers once, expiry and run ends close the question."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from kanban_core import (
    Actor,
    Claim,
    InvalidTransition,
    Kanban,
    KernelSettings,
    PermissionDecision,
    PermissionDenied,
    PermissionRequest,
    PermissionStatus,
    RunOutcome,
    StaleRun,
    ValidationError,
)
from kanban_core.board.recovery import FailurePolicy
from tests.kanban_core.support import event_kinds, execute, rows, worker

TTL_S = 120


@pytest.fixture
def claimed(board, operator, make_task):
    """Factory: a fresh task claimed by the operator; returns the Claim."""

    def factory(**create_kwargs: Any) -> Claim:
        task = make_task(**create_kwargs)
        claim: Claim | None = board.claim(operator, task.id, ttl_s=TTL_S)
        assert claim is not None
        return claim

    return factory


@pytest.fixture
def durable(db_url, tmp_path) -> KernelSettings:
    """Settings a second Kanban.open reaches too (an in-memory SQLite board is per connection)."""
    url = f"sqlite:///{tmp_path / 'durable.db'}" if db_url.startswith("sqlite") else db_url
    return KernelSettings(home=tmp_path / "home", db_url=url)


@pytest.fixture
def durable_claim(durable, operator):
    """A board others can open as well, and a claimed task on it."""
    with Kanban.open(durable) as kanban:
        task = kanban.create(operator, title="asks").task
        claim = kanban.claim(operator, task.id, ttl_s=TTL_S)
        assert claim is not None
        yield kanban, claim


def ask(board: Kanban, claim: Claim, **overrides: Any) -> PermissionRequest:
    values: dict[str, Any] = {
        "tool_kind": "execute",
        "tool_name": "bash",
        "summary": "run the test suite",
        "detail": "pytest -x tests/",
        "paths": ["/repo/tests"],
        "ttl_s": 600,
    }
    return board.request_permission(worker(claim), claim.task.id, **(values | overrides))


def expire_now(board: Kanban, request: PermissionRequest) -> None:
    execute(board, "UPDATE permission_requests SET expires_ms = 0 WHERE id = :id", id=request.id)


def test_a_request_is_pending_and_notifies_subscribed_chats(board, claimed, operator):
    claim = claimed()
    board.subscribe(operator, claim.task.id, platform="telegram", chat_id="42")

    made = ask(board, claim, summary="run\x00 the tests", detail="x" * 5000)

    assert made.ref == f"p{made.id}"
    assert made.status is PermissionStatus.PENDING
    assert made.run_id == claim.run_id
    assert "\x00" not in made.summary
    assert made.detail is not None
    assert len(made.detail) == 4000
    assert made.paths == ("/repo/tests",)
    assert [r.ref for r in board.open_permissions()] == [made.ref]
    assert board.waiting_permissions() == {claim.task.id: [made.ref]}
    [event] = [e for e in board.detail(claim.task.id).events if e.kind == "permission_requested"]
    assert event.payload["ref"] == made.ref
    assert event.payload["tool"] == "bash"
    assert len(event.payload["detail"]) <= 1000
    kinds = rows(
        board,
        "SELECT e.kind FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id",
    )
    assert kinds == [("permission_requested",)]


def test_a_long_summary_is_shortened_not_refused(board, claimed):
    made = ask(board, claimed(), summary="s" * 900)
    assert len(made.summary) == 500


def test_only_the_current_run_may_ask(board, claimed, operator):
    claim = claimed()
    board.reclaim(operator, claim.task.id)
    with pytest.raises(StaleRun):
        ask(board, claim)
    with pytest.raises(PermissionDenied):
        board.request_permission(
            operator, claim.task.id, tool_kind="x", tool_name="y", summary="z", ttl_s=60
        )
    assert board.open_permissions() == []


def test_a_wrong_token_may_not_ask(board, claimed):
    claim = claimed()
    forged = Claim(claim.task, claim.run_id, claim.attempt, "forged", claim.lease_expires_ms)
    with pytest.raises(StaleRun):
        ask(board, forged)


def test_a_person_answers_and_the_answer_is_recorded(board, claimed, operator):
    claim = claimed()
    made = ask(board, claim)

    answered = board.answer_permission(operator, made.ref.upper(), PermissionDecision.ALLOW_RUN)

    assert answered.status is PermissionStatus.ALLOWED
    assert answered.decision is PermissionDecision.ALLOW_RUN
    assert answered.answered_by == "alice"
    assert board.open_permissions() == []
    assert board.run_grants(claim.run_id) == [("execute", "bash")]
    assert "permission_answered" in event_kinds(board, claim.task.id)


def test_a_denial_keeps_its_reason_and_grants_nothing(board, claimed, operator):
    claim = claimed()
    made = ask(board, claim)
    denied = board.answer_permission(operator, str(made.id), PermissionDecision.DENY, "not now")
    assert denied.status is PermissionStatus.DENIED
    assert denied.reason == "not now"
    assert board.run_grants(claim.run_id) == []


def test_a_worker_may_not_answer(board, claimed):
    claim = claimed()
    made = ask(board, claim)
    with pytest.raises(PermissionDenied):
        board.answer_permission(worker(claim), made.ref, PermissionDecision.ALLOW_ONCE)
    assert board.permission(made.ref).status is PermissionStatus.PENDING


def test_a_later_answer_is_refused_naming_the_first(board, claimed, operator):
    made = ask(board, claimed())
    board.answer_permission(operator, made.ref, PermissionDecision.ALLOW_ONCE)
    with pytest.raises(InvalidTransition, match=rf"{made.ref} was already allowed by @alice"):
        board.answer_permission(Actor(name="bob"), made.ref, PermissionDecision.DENY)
    assert board.permission(made.ref).decision is PermissionDecision.ALLOW_ONCE


def test_an_expired_request_is_refused_and_its_expiry_kept(board, claimed, operator):
    claim = claimed()
    made = ask(board, claim)
    expire_now(board, made)
    assert board.open_permissions() == []
    with pytest.raises(InvalidTransition, match=rf"{made.ref} expired unanswered"):
        board.answer_permission(operator, made.ref, PermissionDecision.ALLOW_ONCE)
    assert board.permission(made.ref).status is PermissionStatus.EXPIRED
    assert "permission_expired" in event_kinds(board, claim.task.id)


def test_housekeeping_expires_overdue_requests_and_leaves_others(board, claimed):
    late, fresh = ask(board, claimed()), ask(board, claimed())
    expire_now(board, late)
    assert board.expire_permissions() == [late.id]
    assert board.expire_permissions() == []
    assert board.permission(late.ref).status is PermissionStatus.EXPIRED
    assert board.permission(fresh.ref).status is PermissionStatus.PENDING


@pytest.mark.parametrize("ending", ["complete", "block", "reclaim", "failure", "archive"])
def test_a_run_that_ends_cancels_its_pending_requests(board, claimed, operator, ending):
    claim = claimed()
    made = ask(board, claim)
    task_id = claim.task.id
    if ending == "complete":
        board.complete(worker(claim), task_id, result="done")
    elif ending == "block":
        board.block(worker(claim), task_id, "stuck")
    elif ending == "reclaim":
        board.reclaim(operator, task_id)
    elif ending == "failure":
        board.record_failure(
            operator, task_id, claim.run_id, RunOutcome.CRASHED, "boom", FailurePolicy()
        )
    else:
        board.archive(operator, task_id)

    assert board.permission(made.ref).status is PermissionStatus.CANCELLED
    with pytest.raises(InvalidTransition, match="the run that asked has ended"):
        board.answer_permission(operator, made.ref, PermissionDecision.ALLOW_ONCE)


def test_a_request_whose_run_is_gone_is_cancelled_when_answered(board, claimed, operator):
    # A run ended by a path that did not cancel (an older kernel): the answer finds out.
    claim = claimed()
    made = ask(board, claim)
    execute(
        board,
        "UPDATE tasks SET current_run_id = NULL, status = 'ready' WHERE id = :id",
        id=claim.task.id,
    )
    with pytest.raises(InvalidTransition, match="the run that asked has ended"):
        board.answer_permission(operator, made.ref, PermissionDecision.ALLOW_ONCE)
    assert board.permission(made.ref).status is PermissionStatus.CANCELLED


def test_bad_and_unknown_refs_are_refused(board):
    for ref in ("t3", "p", "p-1", "p0", "x9"):
        with pytest.raises(ValidationError, match="not a permission request"):
            board.permission(ref)
    with pytest.raises(ValidationError, match="no such permission request: p999"):
        board.answer_permission(Actor(name="alice"), "p999", PermissionDecision.DENY)


def test_two_people_answering_at_once_one_wins(board, claimed):
    made = ask(board, claimed())
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def answer(name: str, decision: PermissionDecision) -> None:
        start.wait()
        try:
            outcomes[name] = board.answer_permission(Actor(name=name), made.ref, decision)
        except InvalidTransition as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=answer, args=("alice", PermissionDecision.ALLOW_ONCE)),
        threading.Thread(target=answer, args=("bob", PermissionDecision.DENY)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    winners = [n for n, o in outcomes.items() if isinstance(o, PermissionRequest)]
    losers = [o for o in outcomes.values() if isinstance(o, InvalidTransition)]
    assert len(winners) == 1
    assert len(losers) == 1
    final = board.permission(made.ref)
    assert final.answered_by == winners[0]
    assert f"by @{winners[0]}" in str(losers[0])
    answered = [e for e in board.detail(final.task_id).events if e.kind == "permission_answered"]
    assert len(answered) == 1


def test_a_fresh_board_sees_the_request_and_its_answer(durable, durable_claim, operator):
    board, claim = durable_claim
    made = ask(board, claim)
    board.close()
    with Kanban.open(durable) as reopened:
        assert [r.ref for r in reopened.open_permissions()] == [made.ref]
        reopened.answer_permission(operator, made.ref, PermissionDecision.DENY, "no")
    with Kanban.open(durable) as again:
        seen = again.permission(made.ref)
    assert (seen.status, seen.reason) == (PermissionStatus.DENIED, "no")


def test_a_waiter_wakes_when_an_answer_is_written_elsewhere(durable, durable_claim):
    board, claim = durable_claim
    made = ask(board, claim)
    waiting = threading.Event()
    result: list[PermissionRequest] = []

    def stop() -> bool:
        waiting.set()  # called once the request was read pending, right before waiting
        return False

    def wait() -> None:
        # A re-read only every 60 s: returning in time proves the change watch woke it.
        result.append(board.wait_permission(made.ref, timeout_s=120, stop=stop, probe_s=60))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    assert waiting.wait(timeout=30)
    with Kanban.open(durable) as elsewhere:
        elsewhere.answer_permission(Actor(name="bob"), made.ref, PermissionDecision.ALLOW_ONCE)
    waiter.join(timeout=20)

    assert not waiter.is_alive()
    assert [(r.status, r.answered_by) for r in result] == [(PermissionStatus.ALLOWED, "bob")]


def test_a_waiter_records_the_expiry_itself(board, claimed):
    made = ask(board, claimed())
    expire_now(board, made)
    ended = board.wait_permission(made.ref, timeout_s=30)
    assert ended.status is PermissionStatus.EXPIRED
    assert board.permission(made.ref).status is PermissionStatus.EXPIRED


def test_a_waiter_stops_when_asked_with_the_request_still_pending(board, claimed):
    made = ask(board, claimed())
    ended = board.wait_permission(made.ref, timeout_s=30, stop=lambda: True)
    assert ended.status is PermissionStatus.PENDING


@pytest.mark.parametrize("settle", ["answer", "expire"])
def test_a_settled_request_reaches_its_cards_with_what_was_asked(board, claimed, operator, settle):
    claim = claimed()
    board.subscribe(operator, claim.task.id, platform="telegram", chat_id="42")
    made = ask(board, claim, summary="make deploy")
    (card,) = board.claim_deliveries(platform="telegram", claimer="gw", lease_ms=60_000)
    assert board.permission_card(card) is None
    board.remember_permission_card(card, "7")
    board.remember_permission_card(card, "8")  # sent again after a crash: the newest counts
    assert board.permission_card(card) == "8"
    if settle == "answer":
        board.answer_permission(operator, made.ref, PermissionDecision.DENY, reason="not now")
    else:
        expire_now(board, made)
        assert board.expire_permissions() == [made.id]
    (settled,) = board.claim_deliveries(platform="telegram", claimer="gw", lease_ms=60_000)
    assert settled.kind == f"permission_{'answered' if settle == 'answer' else 'expired'}"
    assert settled.payload["ref"] == made.ref
    assert (settled.payload["tool"], settled.payload["summary"]) == ("bash", "make deploy")
    assert board.permission_card(settled) == "8"  # the same request, chat and thread
    board.forget_permission_card(settled)
    assert board.permission_card(card) is None
