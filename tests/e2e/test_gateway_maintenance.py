"""Several gateways on one PostgreSQL board run the board's gc once per interval, on the leader.

Two real ``kanban gateway`` processes with a gc interval of a few seconds: every run recorded in
the board is the leader's and runs are at least an interval apart; after a kill -9 of the leader
the standby takes the ``leader`` lease and runs gc itself, still no sooner than an interval
after the dead leader's last run.
"""

from __future__ import annotations

import itertools
import signal
from pathlib import Path

import pytest

from kanban_core import Kanban, KernelSettings
from kanban_core.board.maintenance import MaintenanceRun
from tests.e2e import test_gateway_failover as failover
from tests.support.network import until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = failover.anyio_backend
_ptb_timedelta = failover._ptb_timedelta
fake = failover.fake
launch = failover.launch
GC_HOURS = 0.001  # 3.6 s
INTERVAL_MS = int(GC_HOURS * 3_600_000)


def _gc_runs(url: str, tmp_path: Path) -> MaintenanceRun | None:
    with Kanban.open(KernelSettings(home=tmp_path / "probe", db_url=url)) as b:
        runs = [r for r in b.maintenance_runs() if r.job == "gc"]
    return runs[0] if runs else None


async def test_gc_runs_once_per_interval_on_the_leader_and_moves_with_it(
    board_url: str, launch: failover.Launch, tmp_path: Path
) -> None:
    upkeep = {"gc_interval_hours": GC_HOURS}
    a = await launch("a", maintenance=upkeep)
    await failover.wait_owner(board_url, "leader", a, failover.START_TIMEOUT_S)
    b = await launch("b", maintenance=upkeep)
    await until(lambda: "standing by" in b.text(), failover.START_TIMEOUT_S)

    seen: list[MaintenanceRun] = []

    def record() -> bool:
        run = _gc_runs(board_url, tmp_path)
        if run is not None and (not seen or seen[-1].runs != run.runs):
            seen.append(run)
        return bool(seen) and seen[-1].runs >= 3

    await until(record, 8 * INTERVAL_MS / 1000 + 10)
    assert all(a.owner_prefix in run.owner for run in seen), [r.owner for r in seen]
    assert [r.runs for r in seen] == list(range(seen[0].runs, seen[-1].runs + 1))  # none missed
    gaps = [later.last_ms - earlier.last_ms for earlier, later in itertools.pairwise(seen)]
    assert all(gap >= INTERVAL_MS for gap in gaps), gaps
    assert "event(s)" in a.text()
    assert "event(s)" not in b.text()

    # The leader dies: the standby leads once the lease runs out, and runs gc from then on.
    a.process.send_signal(signal.SIGKILL)
    await a.process.wait()
    last_of_a = _gc_runs(board_url, tmp_path)
    assert last_of_a is not None
    await failover.wait_owner(board_url, "leader", b, failover.TAKEOVER_BOUND_S)

    def b_ran() -> bool:
        assert b.process.returncode is None, b.text()
        run = _gc_runs(board_url, tmp_path)
        return run is not None and b.owner_prefix in run.owner

    await until(b_ran, failover.LEASE_S + 3 * INTERVAL_MS / 1000 + 10)
    first_of_b = _gc_runs(board_url, tmp_path)
    assert first_of_b is not None
    assert first_of_b.runs == last_of_a.runs + 1
    assert first_of_b.last_ms - last_of_a.last_ms >= INTERVAL_MS
