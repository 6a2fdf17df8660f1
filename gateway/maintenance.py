"""The board's scheduled maintenance: gc on an APScheduler timer, on the leader only.

Every gateway schedules the check; only the one holding the ``leader`` lease acts, and the
board itself keeps each interval to one run (the claim is a row in ``maintenance_runs``, by the
database clock), so a leader that just took over does not run gc again before the interval is
up, and two leaders for a moment (a lease lost mid-run) still run it once. The rest of the
leader's maintenance (reclaiming dead runs, expiry, the promotion sweep) runs with its
dispatcher passes. Worker logs are each host's own: every gateway removes its old ones.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway.executor import KernelExecutor
from kanban_core import Kanban, KanbanError
from kanban_core.board import maintenance
from kanban_core.config import MaintenanceConfig

log = logging.getLogger(__name__)
#: The check runs this many times per interval (so a new leader acts within a quarter of one).
CHECKS_PER_INTERVAL = 4
#: ... but at least this often, however long the interval.
MAX_CHECK_S = 300.0


class MaintenanceLoop:
    """Runs gc when it is due, if this gateway is the leader."""

    def __init__(
        self,
        board: Kanban,
        executor: KernelExecutor,
        config: Callable[[], MaintenanceConfig],
        *,
        owner: str,
        leader: Callable[[], bool],
    ) -> None:
        self.board = board
        self.executor = executor
        self.config = config
        self.owner = owner
        self.leader = leader
        self._next_logs = 0.0  # monotonic: this host's logs are due again
        self._busy = asyncio.Lock()

    def check_s(self) -> float:
        """How often to look whether gc is due."""
        interval_s = self.config().gc_interval_hours * 3600
        return max(0.05, min(interval_s / CHECKS_PER_INTERVAL, MAX_CHECK_S))

    async def run(self, stop: asyncio.Event) -> None:
        """Check on the scheduler's ticks until ``stop`` (the first check at once)."""
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.check_s()),
            id="maintenance",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        try:
            await self.tick()
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)

    async def tick(self) -> None:
        """One check: the board's gc if this gateway leads and it is due; this host's logs."""
        if self._busy.locked():
            return
        async with self._busy:
            try:
                await self._tick()
            except Exception:  # the schedule must outlive any one failure
                log.exception("maintenance failed", extra={"action": "maintenance"})

    async def _tick(self) -> None:
        config = self.config()
        interval_s = config.gc_interval_hours * 3600
        if self.leader():
            try:
                report = await self.executor.run(
                    self.board.scheduled_gc,
                    owner=self.owner,
                    interval_ms=int(interval_s * 1000),
                    event_retention_days=config.event_retention_days,
                )
            except KanbanError as exc:
                log.warning("scheduled gc failed: %s", exc, extra={"action": "gc"})
            else:
                if report is not None:
                    log.info("gc: %s", report.rows_line(), extra={"action": "gc"})
        if time.monotonic() >= self._next_logs:
            self._next_logs = time.monotonic() + interval_s
            removed = await self.executor.run(
                maintenance.collect_logs,
                self.board.settings.logs_dir,
                retention_days=config.log_retention_days,
            )
            if removed:
                log.info("gc: %s old worker log(s) removed", removed, extra={"action": "gc"})
