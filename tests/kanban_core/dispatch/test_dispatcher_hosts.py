"""A dispatcher acting as its enrolled host: heartbeats, its candidates, and revocation."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from kanban_core import Actor, Kanban, RunOutcome, TaskStatus
from kanban_core.board.domain import BlockKind
from kanban_core.board.hosts import HostIdentity
from kanban_core.dispatch.dispatcher import Dispatcher
from tests.kanban_core.dispatch.test_dispatcher import ConfigHolder, FakeSpawner, profile
from tests.kanban_core.support import execute, scalar


def _enroll(board: Kanban, operator: Actor, name: str) -> HostIdentity:
    return board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner()


def _dispatcher(board: Kanban, spawner: FakeSpawner, cap: int) -> Dispatcher:
    config = ConfigHolder(profile("coder"), max_in_progress=cap)
    return Dispatcher(board, config=config, spawner=spawner, name=f"h-{uuid.uuid4().hex[:8]}")


def test_a_hosts_dispatcher_skips_work_placed_on_another_host(board, operator, make_task, spawner):
    board.host = _enroll(board, operator, "alpha")
    _enroll(board, operator, "beta")
    for _ in range(3):
        make_task(assignee="coder", priority=5, host="beta")
    mine = make_task(assignee="coder", host="alpha")
    loose = make_task(assignee="coder", priority=-1)

    report = _dispatcher(board, spawner, cap=2).run_pass()

    assert [s.task_id for s in report.spawned] == [mine.id, loose.id]


def test_each_pass_heartbeats_the_host_by_the_database_clock(board, operator, spawner):
    board.host = _enroll(board, operator, "alpha")
    execute(board, "UPDATE hosts SET last_seen_ms = 0")
    _dispatcher(board, spawner, cap=1).run_pass()
    assert scalar(board, "SELECT last_seen_ms FROM hosts WHERE name = 'alpha'") > 0


def test_a_revoked_hosts_dispatcher_spawns_nothing(board, operator, make_task, spawner):
    board.host = _enroll(board, operator, "alpha")
    make_task(assignee="coder")
    board.revoke_host(operator, "alpha")

    report = _dispatcher(board, spawner, cap=5).run_pass()

    assert report.spawned == []
    assert spawner.started == []


def test_the_leader_reclaims_a_revoked_hosts_run_at_once(board, operator, make_task, spawner):
    alpha = _enroll(board, operator, "alpha")
    _enroll(board, operator, "beta")
    task = make_task(assignee="coder")
    board.host = alpha
    (started,) = _dispatcher(board, spawner, cap=1).run_pass().spawned
    board.revoke_host(operator, "alpha")

    # Its lease still has a minute to run, but the run is fenced: nothing can finish it.
    board.host = None
    standby = _dispatcher(board, spawner, cap=0)
    standby.leader = lambda: False
    assert standby.run_pass().reclaimed == []  # only the leader reclaims
    leader = _dispatcher(board, spawner, cap=0)
    assert leader.run_pass().reclaimed == [task.id]

    detail = board.detail(task.id)
    assert detail.task.current_run_id is None
    run = next(r for r in detail.runs if r.id == started.run_id)
    assert run.outcome is RunOutcome.RECLAIMED
    assert "its host 'alpha' was revoked" in (run.error or "")
    # Revoking is not the task failing: no failure counted, no backoff before another host.
    assert detail.task.status is TaskStatus.READY
    assert detail.task.consecutive_failures == 0
    assert detail.task.not_before_ms is None


def test_a_missing_hosts_run_is_reclaimed_when_its_lease_runs_out(
    board, operator, make_task, spawner
):
    board.host = _enroll(board, operator, "alpha")
    task = make_task(assignee="coder")
    _dispatcher(board, spawner, cap=1).run_pass()
    # The host vanishes (power): no heartbeat, no lease renewal.
    execute(board, "UPDATE hosts SET last_seen_ms = last_seen_ms - 600000")
    leader = _dispatcher(board, spawner, cap=0)
    board.host = None
    assert leader.run_pass().reclaimed == []  # its lease still holds: it may yet report
    execute(board, "UPDATE tasks SET lease_expires_ms = lease_expires_ms - 3600000")
    assert leader.run_pass().reclaimed == [task.id]


def test_a_revoked_hosts_bound_work_is_blocked_then_re_placed_and_run_by_the_new_host(
    board, operator, make_task, spawner
):
    alpha = _enroll(board, operator, "alpha")
    beta = _enroll(board, operator, "beta")
    _enroll(board, operator, "gamma")
    running = make_task(assignee="coder", host="alpha")
    board.host = alpha
    (started,) = _dispatcher(board, spawner, cap=1).run_pass().spawned
    assert started.task_id == running.id
    board.revoke_host(operator, "alpha")

    # The leader reclaims the fenced run and, in the same pass, blocks what only alpha could
    # run: it would otherwise sit in ready where no host may claim it.
    board.host = None
    report = _dispatcher(board, spawner, cap=0).run_pass()
    assert report.reclaimed == [running.id]
    assert report.stranded == [running.id]
    assert report.to_json()["stranded"] == [f"t{running.id}"]
    task = board.get(running.id)
    assert (task.status, task.block_kind) == (TaskStatus.BLOCKED, BlockKind.PLACEMENT)

    board.place(operator, running.id, host="beta")
    board.unblock(operator, running.id)
    board.host = _enroll_view(board, "gamma")
    assert _dispatcher(board, spawner, cap=5).run_pass().spawned == []  # not gamma's
    board.host = beta
    (again,) = _dispatcher(board, spawner, cap=5).run_pass().spawned
    assert again.task_id == running.id
    assert (
        scalar(
            board,
            "SELECT h.name FROM task_runs r JOIN hosts h ON h.id = r.host_id WHERE r.id = :id",
            id=again.run_id,
        )
        == "beta"
    )


def _enroll_view(board: Kanban, name: str) -> HostIdentity:
    """Another host's identity as its own host.json would give it (its enrolled secret)."""
    host_id = scalar(board, "SELECT id FROM hosts WHERE name = :name", name=name)
    return HostIdentity(int(host_id), name, f"s-{name}")


def test_an_overdue_run_is_killed_only_by_the_host_that_claimed_it(
    board, operator, make_task, spawner, tmp_path
):
    """Two enrolled hosts may share a hostname: a pid recorded by one means nothing on the
    other, so only the claiming host's leader signals it."""
    alpha, beta = _enroll(board, operator, "alpha"), _enroll(board, operator, "beta")
    board.host = beta
    task = make_task(assignee="coder", max_runtime_s=1)
    _dispatcher(board, spawner, cap=1).run_pass()
    supervisor = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        execute(board, "UPDATE task_runs SET worker_pid = :pid", pid=supervisor.pid)
        execute(board, "UPDATE tasks SET deadline_ms = {now} - 3600000 WHERE id = :id", id=task.id)

        board.host = alpha
        assert _dispatcher(board, spawner, cap=0).run_pass().timed_out == [task.id]
        assert supervisor.poll() is None  # alpha's machine has no such supervisor

        board.host = beta
        again = make_task(assignee="coder", max_runtime_s=1)
        execute(board, "UPDATE tasks SET not_before_ms = NULL WHERE id = :id", id=task.id)
        execute(board, "UPDATE tasks SET status = 'archived' WHERE id = :id", id=task.id)
        _dispatcher(board, spawner, cap=1).run_pass()
        execute(
            board,
            "UPDATE task_runs SET worker_pid = :pid WHERE task_id = :id",
            pid=supervisor.pid,
            id=again.id,
        )
        execute(board, "UPDATE tasks SET deadline_ms = {now} - 3600000 WHERE id = :id", id=again.id)
        assert _dispatcher(board, spawner, cap=0).run_pass().timed_out == [again.id]
        assert supervisor.wait(timeout=30) != 0  # beta's own supervisor is stopped
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
