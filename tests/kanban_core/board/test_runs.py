"""board.runs: claims, fenced worker writes, DB-clock leases and every way a run ends."""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

import pytest

from kanban_core import (
    Actor,
    BlockKind,
    Claim,
    InvalidTransition,
    Kanban,
    PermissionDenied,
    RunId,
    RunOutcome,
    RunProof,
    StaleRun,
    TaskId,
    TaskNotFound,
    TaskStatus,
    ValidationError,
)
from kanban_core.board import runs as runs_module
from kanban_core.board.runs import hash_token
from tests.kanban_core.support import (
    count,
    db_now,
    event_kinds,
    rows,
    set_columns,
    snapshot,
    worker,
)

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


def deliveries(board: Kanban) -> list[tuple[Any, ...]]:
    return rows(
        board,
        "SELECT event_id, task_id, platform, chat_id, thread_id, status, attempts "
        "FROM notify_deliveries ORDER BY id",
    )


# -- claim ------------------------------------------------------------------------------------


def test_claim_by_id(board, operator, make_task):
    task = make_task(assignee="coder", max_runtime_s=600)
    before = db_now(board)
    claim = board.claim(operator, task.id, ttl_s=TTL_S)
    after = db_now(board)
    assert claim is not None
    assert claim.task.id == task.id
    assert claim.task.status is TaskStatus.RUNNING
    assert claim.task.attempts == claim.attempt == 1
    assert claim.task.current_run_id == claim.run_id
    assert claim.task.started_ms is not None
    assert len(claim.token) >= 32
    assert before + TTL_S * 1000 <= claim.lease_expires_ms <= after + TTL_S * 1000
    stored = board.get(task.id)
    assert stored.status is TaskStatus.RUNNING
    assert stored.current_run_id == claim.run_id
    assert stored.lease_expires_ms == claim.lease_expires_ms
    (run,) = board.runs(task.id)
    assert (run.id, run.attempt, run.profile, run.claimer, run.status, run.outcome) == (
        claim.run_id,
        1,
        "coder",
        "alice",
        "running",
        None,
    )
    assert run.lease_expires_ms == claim.lease_expires_ms
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.run_id) == ("claimed", claim.run_id)
    assert event.payload == {"claimer": "alice", "lease_expires_ms": claim.lease_expires_ms}


def test_the_token_is_stored_hashed(board, claimed):
    claim = claimed()
    stored = rows(board, "SELECT token_hash FROM task_runs WHERE id = :id", id=claim.run_id)
    assert stored == [(hash_token(claim.token),)]
    assert claim.token not in repr(snapshot(board))


@pytest.mark.parametrize("state", ["todo", "triage", "running", "blocked", "done", "archived"])
def test_claim_by_id_of_a_task_that_is_not_ready(board, operator, make_task, state):
    task = make_task()
    set_columns(board, task.id, status=state)
    before = snapshot(board)
    assert board.claim(operator, task.id) is None
    assert snapshot(board) == before


def test_claim_next_by_priority_then_age_then_id(board, operator, make_task):
    low = make_task(priority=-1)
    young = make_task(priority=5)
    old = make_task(priority=5)
    tie_a = make_task(priority=0)
    tie_b = make_task(priority=0)
    set_columns(board, young.id, created_ms=2_000_000)
    set_columns(board, old.id, created_ms=1_000_000)  # created later, but older
    set_columns(board, tie_a.id, created_ms=3_000_000)
    set_columns(board, tie_b.id, created_ms=3_000_000)
    order = []
    while (claim := board.claim(operator)) is not None:
        order.append(claim.task.id)
    assert order == [old.id, young.id, tie_a.id, tie_b.id, low.id]


def test_claim_next_for_an_assignee(board, operator, make_task):
    make_task(assignee="other", priority=10)
    make_task(priority=10)
    mine_low = make_task(assignee="coder", priority=1)
    mine_high = make_task(assignee="coder", priority=2)
    first = board.claim(operator, assignee="coder")
    second = board.claim(operator, assignee="coder")
    assert first is not None
    assert second is not None
    assert (first.task.id, second.task.id) == (mine_high.id, mine_low.id)
    assert board.claim(operator, assignee="coder") is None
    assert board.claim(operator, assignee="nobody") is None


def test_claim_next_skips_tasks_that_are_not_ready(board, operator, make_task):
    parent = make_task(priority=-5)
    make_task(parents=[parent.id], priority=9)  # todo
    make_task(triage=True, priority=9)
    blocked = make_task(priority=9)
    board.block(operator, blocked.id, "hold")
    claim = board.claim(operator)
    assert claim is not None
    assert claim.task.id == parent.id


def test_nothing_ready_gives_none(board, operator, make_task):
    assert board.claim(operator) is None
    assert board.claim(operator, TaskId(404)) is None
    make_task(triage=True)
    before = snapshot(board)
    assert board.claim(operator) is None
    assert board.claim(operator, assignee="coder") is None
    assert snapshot(board) == before
    assert count(board, "task_runs") == 0


@pytest.mark.parametrize("ttl", [0, -1, 7 * 86400 + 1])
def test_claim_ttl_bounds(board, operator, make_task, ttl):
    task = make_task()
    with pytest.raises(ValidationError, match="--ttl"):
        board.claim(operator, task.id, ttl_s=ttl)
    assert board.get(task.id).status is TaskStatus.READY


def test_claim_uses_the_settings_ttl_by_default(board, operator, make_task):
    task = make_task()
    before = db_now(board)
    claim = board.claim(operator, task.id)
    assert claim is not None
    ttl_ms = board.settings.claim_ttl_s * 1000
    assert before + ttl_ms <= claim.lease_expires_ms <= db_now(board) + ttl_ms


def test_a_worker_may_not_claim(board, operator, claimed, make_task):
    claim = claimed()
    other = make_task()
    with pytest.raises(PermissionDenied):
        board.claim(worker(claim), other.id)


def test_reclaimed_task_is_claimed_again_with_a_new_attempt(board, operator, claimed):
    first = claimed()
    board.reclaim(operator, first.task.id)
    second = board.claim(operator, first.task.id)
    assert second is not None
    assert second.attempt == 2
    assert second.run_id != first.run_id
    assert second.token != first.token
    assert [r.attempt for r in board.runs(first.task.id)] == [1, 2]


# -- fencing ----------------------------------------------------------------------------------


def forged(claim: Claim, **changes: Any) -> Actor:
    return Actor(name="w", run=dataclasses.replace(claim.proof, **changes))


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_a_wrong_token_is_refused_and_changes_nothing(board, claimed, verb):
    claim = claimed()
    actor = forged(claim, token=secrets.token_urlsafe(24))
    before = snapshot(board)
    with pytest.raises(StaleRun, match=f"{claim.task.ref}.*nothing was changed"):
        call(board, verb, actor, claim.task.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_a_stale_run_after_reclaim_is_refused(board, operator, claimed, verb):
    old = claimed()
    board.reclaim(operator, old.task.id, reason="stuck")
    new = board.claim(operator, old.task.id)
    assert new is not None
    before = snapshot(board)
    with pytest.raises(StaleRun, match=f"current run r{new.run_id}"):
        call(board, verb, worker(old), old.task.id)
    assert snapshot(board) == before
    assert board.get(old.task.id).current_run_id == new.run_id


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_a_worker_may_not_touch_another_task(board, claimed, make_task, verb):
    claim = claimed()
    other = make_task()
    before = snapshot(board)
    with pytest.raises(PermissionDenied, match=f"scoped to {claim.task.ref}"):
        call(board, verb, worker(claim), other.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_a_proof_naming_another_task_is_refused(board, claimed, verb):
    mine = claimed()
    theirs = claimed()
    # The token and run of one task, presented as if they belonged to another.
    actor = forged(mine, task_id=theirs.task.id)
    before = snapshot(board)
    with pytest.raises(StaleRun):
        call(board, verb, actor, theirs.task.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_the_previous_run_token_does_not_open_the_current_run(board, operator, claimed, verb):
    old = claimed()
    board.reclaim(operator, old.task.id)
    new = board.claim(operator, old.task.id)
    assert new is not None
    actor = forged(old, run_id=new.run_id)  # right run id, old token
    before = snapshot(board)
    with pytest.raises(StaleRun):
        call(board, verb, actor, old.task.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("verb", ["complete", "block", "heartbeat"])
def test_a_finished_run_is_refused(board, operator, claimed, verb):
    claim = claimed()
    board.complete(operator, claim.task.id)
    before = snapshot(board)
    with pytest.raises(StaleRun, match="the task is done"):
        call(board, verb, worker(claim), claim.task.id)
    assert snapshot(board) == before


def call(board: Kanban, verb: str, actor: Actor, task_id: TaskId) -> object:
    if verb == "complete":
        return board.complete(actor, task_id, summary="s")
    if verb == "block":
        return board.block(actor, task_id, "need help")
    return board.heartbeat(actor, task_id, note="n")


def test_unknown_run_proof_is_refused(board, claimed):
    claim = claimed()
    actor = forged(claim, run_id=RunId(claim.run_id + 1000))
    with pytest.raises(StaleRun):
        board.complete(actor, claim.task.id)


# -- heartbeat --------------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_from_the_database_clock(board, claimed):
    claim = claimed()
    set_columns(board, claim.task.id, lease_expires_ms=1)  # about to expire, by a long way
    before = db_now(board)
    expires = board.heartbeat(worker(claim), claim.task.id)
    after = db_now(board)
    assert before + TTL_S * 1000 <= expires <= after + TTL_S * 1000
    assert board.get(claim.task.id).lease_expires_ms == expires
    heartbeat_ms = rows(
        board, "SELECT heartbeat_ms FROM task_runs WHERE id = :id", id=claim.run_id
    )[0][0]
    assert before <= heartbeat_ms <= after


def test_heartbeat_without_a_note_writes_no_event(board, claimed):
    claim = claimed()
    board.heartbeat(worker(claim), claim.task.id)
    board.heartbeat(worker(claim), claim.task.id, note="   ")
    assert event_kinds(board, claim.task.id) == ["created", "claimed"]
    board.heartbeat(worker(claim), claim.task.id, note="50% done")
    event = board.detail(claim.task.id).events[-1]
    assert (event.kind, event.payload, event.run_id) == (
        "heartbeat",
        {"note": "50% done"},
        claim.run_id,
    )


def test_heartbeat_needs_a_proof(board, operator, claimed):
    claim = claimed()
    before = snapshot(board)
    with pytest.raises(PermissionDenied, match="run credentials"):
        board.heartbeat(operator, claim.task.id)
    assert snapshot(board) == before


# -- complete ---------------------------------------------------------------------------------


def test_worker_complete_closes_its_run_with_the_handoff(board, claimed):
    claim = claimed(assignee="coder")
    done = board.complete(
        worker(claim),
        claim.task.id,
        result="merged",
        summary="fixed the race\nsecond line",
        metadata={"files": 3},
    )
    assert done.status is TaskStatus.DONE
    assert done.result == "merged"
    assert done.completed_ms is not None
    assert done.current_run_id is None
    assert done.lease_expires_ms is None
    (run,) = board.runs(claim.task.id)
    assert (run.status, run.outcome, run.summary, run.metadata) == (
        "done",
        RunOutcome.COMPLETED,
        "fixed the race\nsecond line",
        {"files": 3},
    )
    assert run.ended_ms is not None
    event = board.detail(claim.task.id).events[-1]
    assert (event.kind, event.run_id, event.payload) == (
        "completed",
        claim.run_id,
        {"summary": "fixed the race", "result_len": 6},
    )


def test_operator_complete_of_a_ready_task_without_a_summary_makes_no_run(
    board, operator, make_task
):
    task = make_task()
    done = board.complete(operator, task.id, result="by hand")
    assert done.status is TaskStatus.DONE
    assert done.result == "by hand"
    assert board.runs(task.id) == []
    assert done.attempts == 0
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.run_id, event.payload) == (
        "completed",
        None,
        {"summary": "by hand", "result_len": 7},
    )


@pytest.mark.parametrize("state", ["ready", "blocked"])
def test_operator_complete_with_a_summary_records_a_synthetic_run(
    board, operator, make_task, state
):
    task = make_task(assignee="coder")
    if state == "blocked":
        board.block(operator, task.id, "parked")
    board.complete(operator, task.id, summary="done by hand", metadata={"ok": True})
    *earlier, run = board.runs(task.id)
    attempt = len(earlier) + 1
    assert [r.outcome for r in earlier] == ([RunOutcome.BLOCKED] if state == "blocked" else [])
    assert (run.attempt, run.profile, run.claimer, run.status, run.outcome) == (
        attempt,
        "coder",
        "manual",
        "done",
        RunOutcome.COMPLETED,
    )
    assert (run.summary, run.metadata) == ("done by hand", {"ok": True})
    assert run.started_ms == run.ended_ms
    assert board.get(task.id).attempts == attempt
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.run_id) == ("completed", run.id)


@pytest.mark.parametrize("state", ["triage", "todo", "ready"])
def test_operator_block_of_a_never_claimed_task_keeps_the_reason_on_a_closed_run(
    board, operator, make_task, state
):
    parent = make_task()
    task = (
        make_task(assignee="coder", parents=[parent.id])
        if state == "todo"
        else make_task(assignee="coder", triage=state == "triage")
    )
    assert task.status.value == state
    board.block(operator, task.id, "  waiting for the vendor's answer  ")
    (run,) = board.runs(task.id)
    assert (run.attempt, run.profile, run.claimer, run.status, run.outcome, run.summary) == (
        1,
        "coder",
        "manual",
        "blocked",
        RunOutcome.BLOCKED,
        "waiting for the vendor's answer",
    )
    assert run.started_ms == run.ended_ms
    assert board.get(task.id).attempts == 1
    event = board.detail(task.id).events[-1]
    assert (event.kind, event.run_id) == ("blocked", run.id)


def test_operator_block_without_a_reason_records_no_run(board, operator, make_task):
    task = make_task()
    board.block(operator, task.id, "   ")
    assert board.runs(task.id) == []
    assert board.get(task.id).attempts == 0
    assert board.detail(task.id).comments == ()


def test_operator_complete_after_a_blocked_run_uses_the_next_attempt(board, operator, claimed):
    claim = claimed()
    board.block(worker(claim), claim.task.id, "stuck on creds")
    board.complete(operator, claim.task.id, summary="fixed the creds myself")
    first, synthetic = board.runs(claim.task.id)
    assert (first.attempt, first.outcome) == (1, RunOutcome.BLOCKED)
    assert (synthetic.attempt, synthetic.outcome, synthetic.claimer) == (
        2,
        RunOutcome.COMPLETED,
        "manual",
    )


def test_operator_complete_of_a_running_task_closes_its_run(board, operator, claimed):
    claim = claimed()
    board.complete(operator, claim.task.id, summary="finished for it")
    (run,) = board.runs(claim.task.id)
    assert (run.id, run.outcome, run.summary) == (
        claim.run_id,
        RunOutcome.COMPLETED,
        "finished for it",
    )
    assert board.get(claim.task.id).current_run_id is None


@pytest.mark.parametrize("state", ["todo", "triage", "done", "archived"])
def test_complete_is_refused_from_other_states(board, operator, make_task, state):
    parent = make_task()
    task = (
        make_task(parents=[parent.id]) if state == "todo" else make_task(triage=state == "triage")
    )
    if state == "done":
        board.complete(operator, task.id)
    elif state == "archived":
        board.archive(operator, task.id)
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match=f"it is {state}"):
        board.complete(operator, task.id, summary="nope")
    assert snapshot(board) == before


def test_complete_of_an_unknown_task(board, operator):
    with pytest.raises(TaskNotFound):
        board.complete(operator, TaskId(404))


def test_complete_refuses_bad_metadata(board, operator, make_task):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(ValidationError):
        board.complete(operator, task.id, metadata=["not", "an", "object"])
    assert snapshot(board) == before


# -- block / unblock --------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_worker_must_say_why_it_is_blocked(board, claimed, reason):
    claim = claimed()
    before = snapshot(board)
    with pytest.raises(ValidationError, match="must say why"):
        board.block(worker(claim), claim.task.id, reason)
    assert snapshot(board) == before


def test_worker_block_closes_its_run(board, claimed):
    claim = claimed(assignee="coder")
    blocked = board.block(worker(claim), claim.task.id, "  need the API key  ")
    assert (blocked.status, blocked.block_kind, blocked.current_run_id) == (
        TaskStatus.BLOCKED,
        BlockKind.HUMAN,
        None,
    )
    (run,) = board.runs(claim.task.id)
    assert (run.status, run.outcome, run.summary) == (
        "blocked",
        RunOutcome.BLOCKED,
        "need the API key",
    )
    detail = board.detail(claim.task.id)
    assert [(c.author, c.body) for c in detail.comments] == [
        (f"coder@r{claim.run_id}", "BLOCKED: need the API key")
    ]
    event = detail.events[-1]
    assert (event.kind, event.run_id, event.payload) == (
        "blocked",
        claim.run_id,
        {"reason": "need the API key", "kind": "human"},
    )


def test_operator_block_without_a_reason(board, operator, make_task):
    task = make_task()
    board.block(operator, task.id, None)
    detail = board.detail(task.id)
    assert detail.task.status is TaskStatus.BLOCKED
    assert detail.comments == ()
    assert detail.events[-1].payload == {
        "reason": "blocked by alice",
        "kind": "human",
        "by": "alice",
    }


@pytest.mark.parametrize("state", ["triage", "todo", "ready"])
def test_operator_may_block_anything_unfinished(board, operator, make_task, state):
    parent = make_task()
    task = (
        make_task(parents=[parent.id]) if state == "todo" else make_task(triage=state == "triage")
    )
    assert task.status.value == state
    assert board.block(operator, task.id, "parked").status is TaskStatus.BLOCKED


@pytest.mark.parametrize("state", ["blocked", "done", "archived"])
def test_block_is_refused_from_finished_or_blocked_states(board, operator, make_task, state):
    task = make_task()
    if state == "blocked":
        board.block(operator, task.id, "first")
    elif state == "done":
        board.complete(operator, task.id)
    else:
        board.archive(operator, task.id)
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match=f"it is {state}"):
        board.block(operator, task.id, "again")
    assert snapshot(board) == before


def test_unblock_goes_back_to_ready(board, operator, make_task):
    task = make_task()
    board.block(operator, task.id, "hold")
    set_columns(board, task.id, consecutive_failures=2, last_failure_error="boom")
    unblocked = board.unblock(operator, task.id, reason="go ahead")
    assert (unblocked.status, unblocked.block_kind) == (TaskStatus.READY, None)
    assert (unblocked.consecutive_failures, unblocked.last_failure_error) == (0, None)
    detail = board.detail(task.id)
    assert detail.comments[-1].body == "UNBLOCK: go ahead"
    assert detail.events[-2].kind == "unblocked"
    assert detail.events[-2].payload == {"status": "ready"}


def test_unblock_goes_back_to_todo_while_parents_are_unfinished(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    board.block(operator, child.id, "hold")
    assert board.unblock(operator, child.id).status is TaskStatus.TODO
    board.complete(operator, parent.id)
    assert board.get(child.id).status is TaskStatus.READY


def test_unblock_lifts_gave_up_too(board, operator, make_task):
    task = make_task()
    with board.db.transaction(write=True) as tx:
        runs_module.block(tx, task.id, proof=None, reason="3 failures", kind=BlockKind.GAVE_UP)
    assert board.get(task.id).block_kind is BlockKind.GAVE_UP
    assert board.unblock(operator, task.id).status is TaskStatus.READY


def test_unblock_refusals(board, operator, claimed, make_task):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match="it is ready"):
        board.unblock(operator, task.id)
    with pytest.raises(TaskNotFound):
        board.unblock(operator, TaskId(404))
    assert snapshot(board) == before
    claim = claimed()
    board.block(operator, task.id, "hold")
    with pytest.raises(PermissionDenied):
        board.unblock(worker(claim), task.id)


# -- reclaim ----------------------------------------------------------------------------------


def test_reclaim(board, operator, claimed):
    claim = claimed()
    set_columns(board, claim.task.id, consecutive_failures=2)
    task = board.reclaim(operator, claim.task.id, reason="worker vanished")
    assert (task.status, task.current_run_id, task.lease_expires_ms) == (
        TaskStatus.READY,
        None,
        None,
    )
    assert task.consecutive_failures == 0
    (run,) = board.runs(claim.task.id)
    assert (run.status, run.outcome, run.error) == (
        "reclaimed",
        RunOutcome.RECLAIMED,
        "reclaimed by alice: worker vanished",
    )
    event = board.detail(claim.task.id).events[-1]
    assert (event.kind, event.run_id, event.payload) == (
        "reclaimed",
        claim.run_id,
        {"manual": True, "reason": "worker vanished", "by": "alice"},
    )


def test_reclaim_refusals(board, operator, claimed, make_task):
    task = make_task()
    with pytest.raises(InvalidTransition, match=r"cannot reclaim .* it is ready"):
        board.reclaim(operator, task.id)
    with pytest.raises(TaskNotFound):
        board.reclaim(operator, TaskId(404))
    claim = claimed()
    before = snapshot(board)
    with pytest.raises(PermissionDenied):
        board.reclaim(worker(claim), claim.task.id)
    assert snapshot(board) == before


# -- notifications ----------------------------------------------------------------------------


def subscribe_two(board: Kanban, operator: Actor, task_id: TaskId) -> None:
    board.subscribe(operator, task_id, platform="telegram", chat_id="100")
    board.subscribe(operator, task_id, platform="slack", chat_id="C1", thread_id="T1")


def test_complete_fans_out_one_delivery_per_subscription_and_ends_them(board, operator, claimed):
    claim = claimed()
    other = claimed()
    subscribe_two(board, operator, claim.task.id)
    board.subscribe(operator, other.task.id, platform="telegram", chat_id="999")
    board.complete(worker(claim), claim.task.id, summary="done")
    completed = board.detail(claim.task.id).events[-1]
    assert completed.kind == "completed"
    assert sorted(deliveries(board)) == sorted(
        [
            (completed.id, claim.task.id, "telegram", "100", "", "pending", 0),
            (completed.id, claim.task.id, "slack", "C1", "T1", "pending", 0),
        ]
    )
    assert board.subscriptions(claim.task.id) == []
    assert len(board.subscriptions(other.task.id)) == 1


def test_block_fans_out_but_keeps_the_subscriptions(board, operator, claimed):
    claim = claimed()
    subscribe_two(board, operator, claim.task.id)
    board.block(worker(claim), claim.task.id, "need a human")
    blocked = board.detail(claim.task.id).events[-1]
    assert blocked.kind == "blocked"
    assert {row[0] for row in deliveries(board)} == {blocked.id}
    assert len(deliveries(board)) == 2
    assert len(board.subscriptions(claim.task.id)) == 2


def test_non_terminal_events_queue_no_deliveries(board, operator, make_task):
    task = make_task()
    subscribe_two(board, operator, task.id)
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.heartbeat(worker(claim), task.id, note="working")
    board.comment(operator, task.id, "hi")
    board.reclaim(operator, task.id)
    board.edit(operator, task.id, priority=3)
    board.block(operator, task.id, "hold")  # terminal: the only one
    board.unblock(operator, task.id)
    board.archive(operator, task.id)
    assert event_kinds(board, task.id) == [
        "created",
        "claimed",
        "heartbeat",
        "commented",
        "reclaimed",
        "reprioritized",
        "commented",
        "blocked",
        "unblocked",
        "archived",
    ]
    blocked_id = board.detail(task.id).events[-3].id
    assert [row[0] for row in deliveries(board)] == [blocked_id, blocked_id]


def test_a_proof_is_a_value():
    proof = RunProof(TaskId(1), RunId(2), "tok")
    assert dataclasses.astuple(proof) == (1, 2, "tok")
