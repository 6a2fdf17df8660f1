"""Tasks bound to a revoked host: blocked with a reason, never stranded in ready; re-placed."""

from __future__ import annotations

import json

import pytest

from kanban_core import Kanban, TaskStatus
from kanban_core.board.domain import BlockKind, WorkspaceKind
from kanban_core.errors import InvalidTransition, PermissionDenied, ValidationError
from tests.kanban_core.support import as_host, execute, rows, snapshot, worker


def _events(board: Kanban, task_id: int, kind: str) -> list[dict[str, object]]:
    found = rows(
        board,
        "SELECT payload FROM task_events WHERE task_id = :id AND kind = :kind ORDER BY id",
        id=task_id,
        kind=kind,
    )
    return [json.loads(r[0]) for r in found]


def test_revoking_a_host_blocks_the_ready_and_waiting_tasks_bound_to_it(
    board, operator, make_task, enroll
):
    enroll("alpha")
    enroll("beta")
    ready = make_task(host="alpha")
    parent = make_task(host="beta")
    waiting = make_task(host="alpha", parents=[parent.id])
    elsewhere = make_task(host="beta")
    loose = make_task()
    board.subscribe(operator, ready.id, platform="telegram", chat_id="42")

    blocked = board.revoke_host(operator, "alpha")

    assert blocked == [ready.id, waiting.id]
    for task_id in (ready.id, waiting.id):
        task = board.get(task_id)
        assert (task.status, task.block_kind) == (TaskStatus.BLOCKED, BlockKind.PLACEMENT)
        (event,) = _events(board, task_id, "blocked")
        assert event["kind"] == "placement"
        assert event["host"] == "alpha"
        reason = str(event["reason"])
        assert "bound to host 'alpha', which was revoked" in reason
        # Read in a terminal, in chat (/kanban edit) and on the web: the verb alone.
        assert f"re-place it (`edit t{task_id} --host H`, --label L or --any-host)" in reason
        assert "kanban" not in reason
    for task_id in (parent.id, elsewhere.id, loose.id):
        assert board.get(task_id).status is TaskStatus.READY
    # The asking chat hears of it like of any block.
    assert rows(
        board,
        "SELECT d.chat_id FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id "
        "WHERE d.task_id = :id AND e.kind = 'blocked'",
        id=ready.id,
    ) == [("42",)]


def test_a_worktree_made_on_the_revoked_host_strands_its_task_too(
    board, operator, enroll, worktree_made_on
):
    alpha = enroll("alpha")
    task = worktree_made_on(alpha)

    assert board.revoke_host(operator, "alpha") == [task.id]
    assert board.get(task.id).block_kind is BlockKind.PLACEMENT


def test_the_sweep_blocks_what_reached_ready_later_and_reads_when_there_is_nothing(
    board, operator, make_task, enroll
):
    enroll("alpha")
    idea = make_task(host="alpha", triage=True)  # triage waits for a person: not stranded yet
    assert board.revoke_host(operator, "alpha") == []
    assert board.block_stranded() == []
    board.accept(operator, idea.id)
    assert board.get(idea.id).status is TaskStatus.READY

    assert board.block_stranded() == [idea.id]
    assert board.get(idea.id).block_kind is BlockKind.PLACEMENT
    before = snapshot(board)
    assert board.block_stranded() == []
    assert snapshot(board) == before


def test_unblock_is_refused_while_the_task_is_bound_to_the_revoked_host(
    board, operator, make_task, enroll
):
    enroll("alpha")
    task = make_task(host="alpha")
    board.revoke_host(operator, "alpha")
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match=r"re-place it \(`edit t\d+ --host H`.*\) first"):
        board.unblock(operator, task.id)
    assert snapshot(board) == before


def test_re_placing_on_a_live_host_lets_only_that_host_claim_it_once_unblocked(
    board, operator, make_task, enroll
):
    enroll("alpha")
    beta, gamma = enroll("beta"), enroll("gamma")
    task = make_task(host="alpha")
    board.revoke_host(operator, "alpha")

    moved = board.place(operator, task.id, host="beta")

    assert (moved.before.host, moved.before.revoked) == ("alpha", True)
    assert moved.after.describe() == "host 'beta'"
    assert moved.task.status is TaskStatus.BLOCKED  # re-placing lifts nothing by itself
    (edited,) = _events(board, task.id, "edited")
    assert edited["placement"] == "host 'beta'"
    assert edited["previous"] == "host 'alpha'"
    assert edited["fields"] == ["placement"]
    board.unblock(operator, task.id)
    assert as_host(board, gamma).claim(operator, task.id) is None
    assert as_host(board, None).claim(operator, task.id) is None
    claim = as_host(board, beta).claim(operator, None)
    assert claim is not None
    assert claim.task.id == task.id
    # The task as read back names its host (the claim's own rows, a read and a list alike).
    assert (claim.task.host, claim.task.host_label) == ("beta", None)
    assert board.get(task.id).host == "beta"
    assert [t.host for t in board.list() if t.id == task.id] == ["beta"]


def test_any_host_and_a_label_re_place_too(board, operator, make_task, enroll):
    enroll("alpha")
    gpu = enroll("gpu-box", "gpu")
    first, second = make_task(host="alpha"), make_task(host="alpha")
    board.revoke_host(operator, "alpha")

    assert board.place(operator, first.id, any_host=True).after.describe() == "any host"
    on_label = board.place(operator, second.id, label="gpu")
    assert on_label.after.describe() == "label 'gpu'"
    assert (on_label.task.host, on_label.task.host_label) == (None, "gpu")
    assert (board.get(first.id).host, board.get(first.id).host_label) == (None, None)
    board.unblock(operator, first.id)
    board.unblock(operator, second.id)
    assert as_host(board, None).claim(operator, second.id) is None
    assert as_host(board, None).claim(operator, first.id) is not None
    assert as_host(board, gpu).claim(operator, second.id) is not None


def test_re_placing_detaches_the_worktree_left_on_the_old_hosts_disk(
    board, operator, enroll, worktree_made_on
):
    alpha, beta = enroll("alpha"), enroll("beta")
    task = worktree_made_on(alpha)
    board.revoke_host(operator, "alpha")

    moved = board.place(operator, task.id, host="beta")

    assert moved.left_behind == ("/srv/wt/t1", "kanban/t1")
    assert (moved.task.workspace_path, moved.task.branch_name) == (None, None)
    assert moved.task.workspace_kind is WorkspaceKind.WORKTREE  # the next run makes a new one
    (edited,) = _events(board, task.id, "edited")
    assert edited["left_behind"] == {"host": "alpha", "path": "/srv/wt/t1", "branch": "kanban/t1"}
    board.unblock(operator, task.id)
    again = as_host(board, beta).claim(operator, task.id)
    assert again is not None
    # The new run's worktree binds the task to its new host.
    board.set_workspace(worker(again), task.id, path="/beta/wt/t1", branch="kanban/t1")
    assert rows(board, "SELECT h.name FROM tasks t JOIN hosts h ON h.id = t.host_id") == [("beta",)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "alpha"}, "host 'alpha' is revoked; it runs nothing"),
        ({"host": "nowhere"}, "no host named 'nowhere'"),
        ({"label": "tpu"}, "no enrolled host carries the label 'tpu'"),
        ({"label": "old"}, "no enrolled host carries the label 'old'"),  # only a revoked one
        ({"host": "beta", "label": "gpu"}, "one of a host, a label or any host"),
        ({}, "one of a host, a label or any host"),
    ],
)
def test_re_placing_onto_nowhere_is_refused_and_changes_nothing(
    board, operator, make_task, enroll, kwargs, message
):
    enroll("alpha", "old")
    enroll("beta")
    task = make_task(host="alpha")
    board.revoke_host(operator, "alpha")
    before = snapshot(board)
    with pytest.raises(ValidationError, match=message):
        board.place(operator, task.id, **kwargs)
    assert snapshot(board) == before


def test_creating_a_task_for_a_revoked_host_is_refused_and_changes_nothing(board, operator, enroll):
    enroll("alpha")
    board.revoke_host(operator, "alpha")
    before = snapshot(board)
    with pytest.raises(ValidationError, match="host 'alpha' is revoked"):
        board.create(operator, title="for a dead host", host="alpha")
    assert snapshot(board) == before


def test_a_worker_may_not_re_place_and_a_running_task_is_not_re_placed(
    board, operator, make_task, enroll
):
    enroll("alpha")
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    before = snapshot(board)
    with pytest.raises(PermissionDenied):
        board.place(worker(claim), task.id, host="alpha")
    with pytest.raises(InvalidTransition, match="it is running; reclaim it first"):
        board.place(operator, task.id, host="alpha")
    assert snapshot(board) == before


def test_a_ws_new_workspaces_task_is_blocked_and_cannot_move(board, operator, make_task, enroll):
    enroll("alpha")
    enroll("beta")
    task = make_task(host="alpha")
    execute(
        board,
        "INSERT INTO workspaces (id, task_id, name, status, archived, pinned, container_path, "
        "branch_name, executor, created_by, created_ms, updated_ms) VALUES ('ws-1', :id, 'w', "
        "'ready', 0, 0, '/alpha/ws-1', 'ws/w', 'demo', 'ada', 0, 0)",
        id=task.id,
    )
    board.revoke_host(operator, "alpha")
    (event,) = _events(board, task.id, "blocked")
    assert "its workspace ws-1 is on host 'alpha''s disk" in str(event["reason"])
    before = snapshot(board)
    with pytest.raises(InvalidTransition, match="workspace ws-1's task"):
        board.place(operator, task.id, host="beta")
    with pytest.raises(InvalidTransition, match="ws-1 is on host 'alpha'"):
        board.unblock(operator, task.id)
    assert snapshot(board) == before
