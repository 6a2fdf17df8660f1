"""The dispatch loop: a pass on every APScheduler tick and at once on every nudge.

APScheduler (3.x) only sets a wake-up flag; the pass itself runs in one coalescing loop, so a
nudge during a pass is not lost (it causes one more pass) and shutdown can drain the pass in
flight instead of having it cancelled (APScheduler's executor cancels running coroutine jobs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway.executor import KernelExecutor, wait_first
from kanban_core import StorageError
from kanban_core.dispatch.dispatcher import Dispatcher, DispatchReport

log = logging.getLogger(__name__)
#: How often finished worker supervisors are looked for (a finished worker may free a slot or
#: have completed a parent whose children are now ready).
EXIT_CHECK_S = 0.2


class DispatchLoop:
    """Runs dispatcher passes: on a timer, on nudges, and when a supervised worker exits."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        executor: KernelExecutor,
        *,
        interval_s: float,
        worker_exited: Callable[[], bool] = lambda: False,
        on_pass: Callable[[DispatchReport], None] = lambda _report: None,
        before_pass: Callable[[], object] = lambda: None,
    ) -> None:
        self.dispatcher = dispatcher
        self.executor = executor
        self.interval_s = interval_s
        self.worker_exited = worker_exited
        self.on_pass = on_pass
        self.before_pass = before_pass
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def nudge(self) -> None:
        """Run a pass as soon as possible."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Pass until ``stop`` is set; the first pass runs at once."""
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop())
        scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=self.interval_s),
            id="dispatch",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(self.interval_s)),
        )
        scheduler.start()
        self.nudge()
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wait_first(self._wake.wait(), stop.wait()), EXIT_CHECK_S)
                if stop.is_set():
                    break
                if not self._wake.is_set() and not self.worker_exited():
                    continue
                self._wake.clear()
                await self._pass()
        finally:
            scheduler.shutdown(wait=False)

    async def _tick(self) -> None:
        # A coroutine job runs on the event loop; a plain function would run in APScheduler's
        # thread pool, where setting an asyncio.Event is not safe.
        self.nudge()

    async def drain(self) -> None:
        """Wait for the pass in flight (if any) to finish."""
        await self._idle.wait()

    async def _pass(self) -> None:
        self._idle.clear()
        try:
            # Workspace housekeeping first: a settled turn may have queued the next follow-up,
            # which this very pass can then hand to a worker.
            await self.executor.run(self.before_pass)
        except StorageError as exc:
            # The database restarting or out of reach: one line; the next pass tries again.
            log.warning("workspace housekeeping: %s", exc, extra={"action": "housekeeping"})
        except Exception:
            log.exception("workspace housekeeping failed", extra={"action": "housekeeping"})
        try:
            report = await self.executor.run(self.dispatcher.run_pass)
        except StorageError as exc:
            log.warning("dispatcher pass: %s", exc, extra={"action": "dispatch"})
        except Exception:
            log.exception("dispatcher pass failed", extra={"action": "dispatch"})
        else:
            if report.spawned or report.reclaimed or report.timed_out:
                log.info(
                    "dispatch: spawned %s, reclaimed %s, timed out %s",
                    [f"t{s.task_id}" for s in report.spawned],
                    [f"t{t}" for t in report.reclaimed],
                    [f"t{t}" for t in report.timed_out],
                    extra={"action": "dispatch"},
                )
            self.on_pass(report)
        finally:
            self._idle.set()
