"""Wake-ups for changes made elsewhere: workers, the CLI, agents over MCP, another gateway.

The dispatcher and the notifier have their own timers (a tick, a poll); this makes them react
at once instead. On PostgreSQL the database announces each new event and the loop waits on the
listening socket; on SQLite the newest event id is looked at every PROBE_S. A wake-up is only a
hint: a missed one costs latency, never a task or a notification.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from gateway.executor import KernelExecutor, wait_first
from kanban_core.board.changes import ChangeWatch

log = logging.getLogger(__name__)
#: SQLite: how often the newest event id is compared (one index lookup).
PROBE_S = 0.02
#: PostgreSQL: a look even without an announcement, in case the listening connection dropped;
#: also the pause after a failed look, so a broken database is not hammered (or logged) 50 times
#: a second.
FALLBACK_S = 1.0


class ChangeMonitor:
    """Calls every ``on_change`` callback when the board changed since the last look."""

    def __init__(
        self,
        watch: ChangeWatch,
        executor: KernelExecutor,
        on_change: Sequence[Callable[[], None]],
    ) -> None:
        self.watch = watch
        self.executor = executor
        self.on_change = tuple(on_change)
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; the listening connection is closed on the way out."""
        loop = asyncio.get_running_loop()
        announced = asyncio.Event()
        try:
            while not stop.is_set():
                announced.clear()
                changed = await self._look()
                if changed:
                    for callback in self.on_change:
                        callback()
                slow = self.watch.announces or changed is None
                # Registered only while waiting: the look may replace (or drop) the listening
                # socket, and unread announcements would keep a registered reader firing.
                fd = self.watch.fileno()
                if fd is not None:
                    loop.add_reader(fd, announced.set)
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            wait_first(announced.wait(), stop.wait()),
                            FALLBACK_S if slow else PROBE_S,
                        )
                finally:
                    if fd is not None:
                        loop.remove_reader(fd)
        finally:
            await self.executor.run(self.watch.close)

    async def _look(self) -> bool | None:
        """Whether the board changed; None when the look failed (logged once per outage)."""
        try:
            changed = await self.executor.run(self.watch.changed)
        except Exception:
            if not self._failing:
                log.exception("looking for changes failed", extra={"action": "watch"})
            self._failing = True
            return None
        if self._failing:
            log.info("looking for changes works again", extra={"action": "watch"})
            self._failing = False
        return changed
