"""The claim→complete hot path: caps checked by the claim, and one round trip each on PostgreSQL."""

from __future__ import annotations

import pytest

from kanban_core import Actor, Kanban, TaskStatus
from kanban_core.errors import StaleRun, ValidationError
from kanban_core.storage import Query
from tests.kanban_core.support import count, event_kinds, rows, snapshot
from tests.support import roundtrips

_WARM = Query("test_warm", "SELECT 1")


def _pg_only(board: Kanban) -> None:
    if board.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    with board.db.transaction(write=False) as tx:  # one pooled connection to trace
        tx.scalar(_WARM)


# -- caps ---------------------------------------------------------------------------------------


def test_a_claim_over_the_board_cap_claims_nothing_and_changes_nothing(board, operator, make_task):
    make_task(assignee="coder")
    waiting = make_task(assignee="coder")
    assert board.claim(operator, None, max_running=1) is not None
    before = snapshot(board)

    assert board.claim(operator, None, max_running=1) is None
    assert board.claim(operator, waiting.id, max_running=1) is None

    assert snapshot(board) == before
    assert board.claim(operator, waiting.id, max_running=2) is not None


def test_the_assignee_cap_counts_only_that_assignees_running_tasks(board, operator, make_task):
    make_task(assignee="coder")
    second_coder = make_task(assignee="coder")
    reviewer = make_task(assignee="reviewer")
    assert board.claim(operator, None, assignee="coder", max_running_assignee=1) is not None

    assert board.claim(operator, None, assignee="coder", max_running_assignee=1) is None
    assert board.claim(operator, second_coder.id, max_running_assignee=1) is None
    # The next ready task is the capped coder's: the cap applies to the task picked.
    assert board.claim(operator, None, max_running_assignee=1) is None
    claimed = board.claim(operator, reviewer.id, max_running_assignee=1)
    assert claimed is not None
    assert board.get(second_coder.id).status is TaskStatus.READY


def test_unassigned_tasks_share_one_assignee_cap_and_a_zero_cap_claims_nothing(
    board, operator, make_task
):
    first, second = make_task(), make_task()
    coder = make_task(assignee="coder")
    assert board.claim(operator, first.id, max_running_assignee=0) is None
    assert board.claim(operator, first.id, max_running_assignee=1) is not None

    # The unassigned running task counts against the next unassigned claim, not the coder's.
    assert board.claim(operator, second.id, max_running_assignee=1) is None
    assert board.claim(operator, coder.id, max_running_assignee=1) is not None
    assert board.claim(operator, second.id, max_running=2) is None
    assert board.claim(operator, second.id, max_running=3, max_running_assignee=2) is not None


def test_without_caps_nothing_is_counted(board, operator, make_task):
    for _ in range(3):
        make_task()
    assert all(board.claim(operator, None) is not None for _ in range(3))


def test_a_negative_cap_is_refused_with_a_clear_message(board, operator, make_task):
    make_task()
    with pytest.raises(ValidationError, match="cannot be negative"):
        board.claim(operator, None, max_running=-1)
    assert count(board, "task_runs") == 0


# -- one round trip each on PostgreSQL -----------------------------------------------------------


@pytest.mark.parametrize("form", ["next", "by id", "for assignee", "capped"])
def test_a_claim_is_one_round_trip_on_postgresql(board, operator, make_task, form):
    task = make_task(assignee="coder")
    _pg_only(board)
    kwargs: dict[str, object] = {
        "next": {},
        "by id": {"task_id": task.id},
        "for assignee": {"assignee": "coder"},
        "capped": {"max_running": 5, "max_running_assignee": 2},
    }[form]
    with roundtrips.counting(board.db) as trips:
        claim = board.claim(operator, **kwargs)

    assert claim is not None
    assert trips.count == 1, trips.lines
    assert event_kinds(board, task.id)[-1] == "claimed"
    run = rows(
        board, "SELECT attempt, status, claimer FROM task_runs WHERE id = :id", id=claim.run_id
    )
    assert run == [(1, "running", operator.name)]


def test_a_workers_completion_with_ten_children_and_a_chat_is_one_round_trip(
    board, operator, make_task
):
    parent = make_task()
    children = [make_task(parents=[parent.id]) for _ in range(10)]
    board.subscribe(operator, parent.id, platform="telegram", chat_id="42", thread_id=None)
    claim = board.claim(operator, parent.id)
    assert claim is not None
    _pg_only(board)

    with roundtrips.counting(board.db) as trips:
        board.complete(Actor("w", run=claim.proof), parent.id, result="ok", summary="all good")

    assert trips.count == 1, trips.lines
    assert board.get(parent.id).status is TaskStatus.DONE
    assert {board.get(c.id).status for c in children} == {TaskStatus.READY}
    assert event_kinds(board, children[0].id)[-1] == "promoted"
    delivered = rows(
        board, "SELECT chat_id, status FROM notify_deliveries WHERE task_id = :id", id=parent.id
    )
    assert delivered == [("42", "pending")]
    assert board.subscriptions(parent.id) == []
    run = rows(board, "SELECT outcome, summary FROM task_runs WHERE id = :id", id=claim.run_id)
    assert run == [("completed", "all good")]


def test_a_refused_stale_completion_still_says_why(board, operator, make_task):
    task = make_task()
    first = board.claim(operator, task.id)
    assert first is not None
    board.reclaim(operator, task.id, reason="stuck")
    second = board.claim(operator, task.id)
    assert second is not None
    before = snapshot(board)

    with pytest.raises(StaleRun, match=r"refused to complete t\d+: run r\d+ is not its current"):
        board.complete(Actor("w", run=first.proof), task.id, result="late")

    assert snapshot(board) == before


def test_the_claim_and_completion_events_read_the_same_on_both_databases(
    board, operator, make_task
):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.complete(Actor("w", run=claim.proof), task.id, result="line one\nline two")

    claimed, completed = board.detail(task.id).events[-2:]
    assert (claimed.kind, claimed.run_id) == ("claimed", claim.run_id)
    assert claimed.payload == {"claimer": operator.name, "lease_expires_ms": claim.lease_expires_ms}
    assert (completed.kind, completed.run_id) == ("completed", claim.run_id)
    assert completed.payload == {"summary": "line one", "result_len": 17}
    raw = rows(board, "SELECT payload FROM task_events WHERE id = :id", id=claimed.id)
    assert raw == [(f'{{"claimer":"alice","lease_expires_ms":{claim.lease_expires_ms}}}',)]


def test_a_capped_claim_skips_a_task_row_another_transaction_holds(board, operator, make_task):
    task = make_task()
    _pg_only(board)
    hold = Query("test_hold_task", "SELECT id FROM tasks WHERE id = :id FOR UPDATE")
    with board.db.transaction(write=True) as tx:
        tx.fetchall(hold, {"id": task.id})
        # Under the cap lock a claim must not wait on the row: it claims nothing at once.
        assert board.claim(operator, task.id, max_running=5) is None
    assert board.claim(operator, task.id, max_running=5) is not None
