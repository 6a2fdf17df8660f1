"""A dispatcher acting as its enrolled host: heartbeats, its candidates, and revocation."""

from __future__ import annotations

import uuid

import pytest

from kanban_core import Actor, Kanban
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
