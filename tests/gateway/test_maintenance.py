"""The gateway's scheduled maintenance: gc on the leader only, once per interval, logs per host."""

from __future__ import annotations

import os
import time

import pytest

from gateway.executor import KernelExecutor
from gateway.maintenance import MaintenanceLoop
from kanban_core import Kanban
from kanban_core.config import MaintenanceConfig

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _loop(board: Kanban, executor: KernelExecutor, owner: str, *, leads: bool) -> MaintenanceLoop:
    config = MaintenanceConfig(gc_interval_hours=1.0, log_retention_days=1)
    return MaintenanceLoop(board, executor, lambda: config, owner=owner, leader=lambda: leads)


async def test_only_the_leader_runs_gc_and_only_once_per_interval(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    try:
        await _loop(board, executor, "standby", leads=False).tick()
        assert board.maintenance_runs() == []

        await _loop(board, executor, "leader-1", leads=True).tick()
        # A new leader straight after (the first one died): the interval is not up yet.
        await _loop(board, executor, "leader-2", leads=True).tick()
        (run,) = board.maintenance_runs()
        assert (run.owner, run.runs) == ("leader-1", 1)
    finally:
        executor.shutdown()


async def test_every_gateway_removes_its_own_old_worker_logs(board: Kanban) -> None:
    logs = board.settings.logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    old = logs / "t1.log"
    old.write_text("old")
    past = time.time() - 3 * 86400
    os.utime(old, (past, past))
    fresh = logs / "t2.log"
    fresh.write_text("new")
    executor = KernelExecutor(threads=1)
    try:
        await _loop(board, executor, "standby", leads=False).tick()
    finally:
        executor.shutdown()
    assert not old.exists()
    assert fresh.exists()


def test_the_check_runs_four_times_an_interval_within_bounds(board: Kanban) -> None:
    def check_s(hours: float) -> float:
        config = MaintenanceConfig(gc_interval_hours=hours)
        loop = MaintenanceLoop(board, None, lambda: config, owner="x", leader=lambda: True)  # type: ignore[arg-type]
        return loop.check_s()

    assert check_s(0.001) == pytest.approx(0.9)
    assert check_s(24) == 300.0
