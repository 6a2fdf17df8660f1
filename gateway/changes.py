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
from kanban_core.storage.changes import ChangeWatch

log = logging.getLogger(__name__)
#: SQLite: how often the newest event id is compared (one index lookup).
PROBE_S = 0.02
#: PostgreSQL: a look even without an announcement, in case the listening connection dropped.
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

    async def run(self, stop: asyncio.Event) -> None:
        """Watch until ``stop`` is set; the listening connection is closed on the way out."""
        loop = asyncio.get_running_loop()
        announced = asyncio.Event()
        fd: int | None = None
        try:
            while not stop.is_set():
                announced.clear()
                if await self._look():
                    for callback in self.on_change:
                        callback()
                # The socket can change: a dropped listener is replaced on the next look.
                current = self.watch.fileno()
                if current != fd:
                    if fd is not None:
                        loop.remove_reader(fd)
                    if current is not None:
                        loop.add_reader(current, announced.set)
                    fd = current
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        wait_first(announced.wait(), stop.wait()),
                        PROBE_S if fd is None else FALLBACK_S,
                    )
        finally:
            if fd is not None:
                loop.remove_reader(fd)
            await self.executor.run(self.watch.close)

    async def _look(self) -> bool:
        try:
            return await self.executor.run(self.watch.changed)
        except Exception:
            log.exception("looking for changes failed", extra={"action": "watch"})
            return False
