"""board.links: dependencies, cycle checks and event-driven promotion of waiting children."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kanban_core import (
    BlockKind,
    InvalidTransition,
    Kanban,
    PermissionDenied,
    Task,
    TaskId,
    TaskNotFound,
    TaskStatus,
    ValidationError,
)
from kanban_core.board import runs as runs_module
from tests.kanban_core.support import event_kinds, set_columns, snapshot, worker


def make_chain(make_task: Callable[..., Task], length: int) -> list[Task]:
    """Tasks t_0 -> t_1 -> … -> t_{length-1}, each the parent of the next."""
    chain = [make_task()]
    for _ in range(length - 1):
        chain.append(make_task(parents=[chain[-1].id]))
    return chain


def statuses(board: Kanban, *tasks: Task) -> list[TaskStatus]:
    return [board.get(task.id).status for task in tasks]


# -- refusals ---------------------------------------------------------------------------------


def test_self_link_is_refused(board, operator, make_task):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(ValidationError, match="cannot depend on itself"):
        board.link(operator, task.id, task.id)
    assert snapshot(board) == before


def test_two_task_cycle_is_refused(board, operator, make_task):
    a = make_task()
    b = make_task(parents=[a.id])
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match=f"linking {b.ref} -> {a.ref} would create a cycle"):
        board.link(operator, b.id, a.id)
    assert snapshot(board) == before


@pytest.mark.parametrize("length", [3, 60])
def test_long_chain_cycle_is_refused(board, operator, make_task, length):
    chain = make_chain(make_task, length)
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match="would create a cycle"):
        board.link(operator, chain[-1].id, chain[0].id)
    with pytest.raises(InvalidTransition, match="would create a cycle"):
        board.link(operator, chain[-2].id, chain[0].id)
    assert snapshot(board) == before


def test_diamond_is_not_a_cycle(board, operator, make_task):
    top = make_task()
    left = make_task(parents=[top.id])
    right = make_task(parents=[top.id])
    bottom = make_task(parents=[left.id])
    assert board.link(operator, right.id, bottom.id) is True
    assert board.link(operator, top.id, bottom.id) is True  # a shortcut edge is fine
    assert board.detail(bottom.id).parents == (top.id, left.id, right.id)


def test_link_to_an_unknown_task(board, operator, make_task):
    task = make_task()
    with pytest.raises(TaskNotFound, match="t404"):
        board.link(operator, task.id, TaskId(404))
    with pytest.raises(TaskNotFound, match="t404"):
        board.link(operator, TaskId(404), task.id)
    with pytest.raises(TaskNotFound, match="t404"):
        board.unlink(operator, TaskId(404), task.id)


# -- link / unlink ----------------------------------------------------------------------------


def test_duplicate_link_is_a_no_op(board, operator, make_task):
    parent, child = make_task(), make_task()
    assert board.link(operator, parent.id, child.id) is True
    before = snapshot(board)
    assert board.link(operator, parent.id, child.id) is False
    assert snapshot(board) == before


def test_link_demotes_a_ready_child(board, operator, make_task):
    parent, child = make_task(), make_task()
    assert child.status is TaskStatus.READY
    assert board.link(operator, parent.id, child.id) is True
    assert board.get(child.id).status is TaskStatus.TODO
    event = board.detail(child.id).events[-1]
    assert (event.kind, event.payload) == (
        "linked",
        {"parent": parent.ref, "child": child.ref, "demoted": True},
    )


@pytest.mark.parametrize("finish", ["complete", "archive"])
def test_link_to_a_finished_parent_keeps_the_child_ready(board, operator, make_task, finish):
    parent, child = make_task(), make_task()
    getattr(board, finish)(operator, parent.id)
    board.link(operator, parent.id, child.id)
    assert board.get(child.id).status is TaskStatus.READY
    assert board.detail(child.id).events[-1].payload == {
        "parent": parent.ref,
        "child": child.ref,
        "demoted": False,
    }


@pytest.mark.parametrize("child_state", ["running", "blocked", "triage", "done"])
def test_link_does_not_demote_a_child_that_is_not_ready(board, operator, make_task, child_state):
    parent = make_task()
    child = make_task(triage=child_state == "triage")
    if child_state == "running":
        board.claim(operator, child.id)
    elif child_state == "blocked":
        board.block(operator, child.id, "waiting for a human")
    elif child_state == "done":
        board.complete(operator, child.id)
    board.link(operator, parent.id, child.id)
    assert board.get(child.id).status.value == child_state


def test_unlink_promotes_the_child(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    assert board.unlink(operator, parent.id, child.id) is True
    assert board.get(child.id).status is TaskStatus.READY
    assert event_kinds(board, child.id) == ["created", "unlinked", "promoted"]
    assert board.detail(child.id).parents == ()


def test_unlink_keeps_the_child_waiting_on_another_parent(board, operator, make_task):
    p1, p2 = make_task(), make_task()
    child = make_task(parents=[p1.id, p2.id])
    board.unlink(operator, p1.id, child.id)
    assert board.get(child.id).status is TaskStatus.TODO
    assert board.detail(child.id).parents == (p2.id,)


def test_unlink_without_a_link_is_a_no_op(board, operator, make_task):
    a, b = make_task(), make_task()
    before = snapshot(board)
    assert board.unlink(operator, a.id, b.id) is False
    assert snapshot(board) == before


def test_workers_may_link_but_not_unlink(board, operator, make_task):
    own = make_task()
    claim = board.claim(operator, own.id)
    assert claim is not None
    sub = board.create(worker(claim), title="sub").task
    assert board.link(worker(claim), own.id, sub.id) is True
    assert board.get(sub.id).status is TaskStatus.TODO
    before = snapshot(board)
    with pytest.raises(PermissionDenied):
        board.unlink(worker(claim), own.id, sub.id)
    assert snapshot(board) == before


# -- promotion --------------------------------------------------------------------------------


@pytest.mark.parametrize("finish", ["complete", "archive"])
def test_finishing_the_last_parent_promotes_the_child(board, operator, make_task, finish):
    parent = make_task()
    child = make_task(parents=[parent.id])
    grandchild = make_task(parents=[child.id])
    getattr(board, finish)(operator, parent.id)
    assert statuses(board, child, grandchild) == [TaskStatus.READY, TaskStatus.TODO]
    promoted = board.detail(child.id).events[-1]
    assert (promoted.kind, promoted.payload) == ("promoted", {"parent": parent.ref})


def test_a_child_with_several_parents_waits_for_all(board, operator, make_task):
    p1, p2, p3 = make_task(), make_task(), make_task()
    child = make_task(parents=[p1.id, p2.id, p3.id])
    board.complete(operator, p1.id)
    assert board.get(child.id).status is TaskStatus.TODO
    board.archive(operator, p2.id)
    assert board.get(child.id).status is TaskStatus.TODO
    claim = board.claim(operator, p3.id)
    assert claim is not None
    board.complete(worker(claim), p3.id, summary="last one")
    assert board.get(child.id).status is TaskStatus.READY
    assert event_kinds(board, child.id).count("promoted") == 1


def test_completing_a_parent_promotes_only_its_own_children(board, operator, make_task):
    p1, p2 = make_task(), make_task()
    mine = make_task(parents=[p1.id])
    theirs = make_task(parents=[p2.id])
    board.complete(operator, p1.id)
    assert statuses(board, mine, theirs) == [TaskStatus.READY, TaskStatus.TODO]


def test_a_long_chain_is_released_one_step_at_a_time(board, operator, make_task):
    chain = make_chain(make_task, 5)
    for i, task in enumerate(chain):
        expected = [TaskStatus.DONE] * i + [TaskStatus.READY] + [TaskStatus.TODO] * (4 - i)
        assert statuses(board, *chain) == expected
        board.complete(operator, task.id)
    assert statuses(board, *chain) == [TaskStatus.DONE] * 5


def test_human_blocked_children_are_never_promoted(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    board.block(operator, child.id, "needs a decision")
    assert board.get(child.id).status is TaskStatus.BLOCKED
    board.complete(operator, parent.id)
    assert board.get(child.id).status is TaskStatus.BLOCKED
    assert board.promote_all() == []
    assert board.get(child.id).status is TaskStatus.BLOCKED
    assert "promoted" not in event_kinds(board, child.id)
    assert board.unblock(operator, child.id).status is TaskStatus.READY


def test_gave_up_children_are_never_promoted(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    with board.db.transaction(write=True) as tx:
        runs_module.block(tx, child.id, proof=None, reason="3 failures", kind=BlockKind.GAVE_UP)
    assert board.get(child.id).block_kind is BlockKind.GAVE_UP
    board.archive(operator, parent.id)
    assert board.promote_all() == []
    assert board.get(child.id).status is TaskStatus.BLOCKED


def test_unlinking_a_blocked_child_does_not_promote_it(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    board.block(operator, child.id, "hold")
    board.unlink(operator, parent.id, child.id)
    assert board.get(child.id).status is TaskStatus.BLOCKED


def test_triage_children_are_never_promoted(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id], triage=True)
    board.complete(operator, parent.id)
    assert board.promote_all() == []
    assert board.get(child.id).status is TaskStatus.TRIAGE


def test_promote_all_is_a_safety_net(board, operator, make_task):
    parent = make_task()
    child = make_task(parents=[parent.id])
    stuck = make_task(parents=[make_task().id])
    # A parent finished without the promotion running (as after a crash between steps).
    set_columns(board, parent.id, status="done")
    assert board.get(child.id).status is TaskStatus.TODO
    assert board.promote_all() == [child.id]
    assert statuses(board, child, stuck) == [TaskStatus.READY, TaskStatus.TODO]
    event = board.detail(child.id).events[-1]
    assert (event.kind, event.payload) == ("promoted", {"sweep": True})
    assert board.promote_all() == []
