"""The platform connections this gateway runs: local ones always, shared ones under a lease.

A shared connection (one bot token, one ``getUpdates`` consumer, one Socket Mode session) runs
on one gateway of the board at a time; the others stand by. The console is this process's own
terminal and is never leased. ``running`` is the live view the notifier sends through.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Mapping, Sequence

from gateway.adapter import ChatAdapter, MessageSink
from gateway.executor import KernelExecutor
from gateway.leases import LeaseKeeper, platform_lease
from gateway.slash import SLASH_COMMANDS, SlashCommand
from kanban_core.storage import Database

log = logging.getLogger(__name__)
#: Platforms served by this process alone (nothing to share between gateways).
LOCAL_PLATFORMS = frozenset({"console"})
_STOP_TIMEOUT_S = 10.0

#: Makes a fresh adapter of one platform (its config and secrets already bound).
AdapterMaker = Callable[[], ChatAdapter]


class PlatformConnections:
    """Starts each adapter when this gateway may run it and stops it the moment it may not."""

    def __init__(
        self,
        factories: Mapping[str, AdapterMaker],
        sink: MessageSink,
        *,
        db: Database,
        executor: KernelExecutor,
        lease_s: float,
        owner: str,
        host_id: int | None = None,
        running: dict[str, ChatAdapter] | None = None,
        menu: Sequence[SlashCommand] = SLASH_COMMANDS,
    ) -> None:
        self.factories = factories
        self.sink = sink
        self.menu = tuple(menu)
        self.running: dict[str, ChatAdapter] = {} if running is None else running
        self.keepers = [
            LeaseKeeper(
                db,
                executor,
                platform_lease(name),
                lease_s=lease_s,
                owner=owner,
                host_id=host_id,
                on_gain=functools.partial(self._start, name),
                on_loss=functools.partial(self._stop, name),
            )
            for name in factories
            if name not in LOCAL_PLATFORMS
        ]

    async def start(self) -> None:
        """Start the local adapters and take every free lease once (a failed start raises)."""
        for name in self.factories:
            if name in LOCAL_PLATFORMS:
                await self._start(name)
        for keeper in self.keepers:
            await keeper.try_once(raise_errors=True)
            if not keeper.holding:
                log.info(
                    "%s: another gateway holds it; standing by",
                    keeper.name,
                    extra={"action": "standby"},
                )

    def tasks(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        """The keepers' loops, until ``stop`` (each releases its lease when it ends)."""
        return [asyncio.create_task(k.run(stop), name=f"lease:{k.name}") for k in self.keepers]

    async def close(self) -> None:
        """Release every lease and stop every adapter still running."""
        for keeper in self.keepers:
            await keeper.release()
        for name in list(self.running):
            await self._stop(name)

    async def _start(self, name: str) -> None:
        adapter = self.factories[name]()  # a fresh one each time: an SDK client may not restart
        await adapter.start(self.sink, menu=self.menu)
        self.running[name] = adapter
        log.info("adapter %s started", name, extra={"action": "adapter_start"})

    async def _stop(self, name: str) -> None:
        adapter = self.running.pop(name, None)
        if adapter is None:
            return
        try:
            await asyncio.wait_for(adapter.stop(), _STOP_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - one bad stop must not keep the rest running
            log.error("adapter %s did not stop cleanly: %r", name, exc)
        else:
            log.info("adapter %s stopped", name, extra={"action": "adapter_stop"})
