"""Who runs what among several gateways on one board: platform connections and the leader.

Each leased duty (``platform:<name>``, ``leader``) has a keeper task: while it holds the lease
it renews every third of the lease time; while another gateway holds it, it tries again every
second (at most), so it takes over within the lease time of the owner's last renewal. Losing
the lease (refused renewal, or the database unreachable until the lease would have run out by
this host's clock) ends the duty at once; a clean stop releases it so a standby takes over
without waiting for expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

from gateway.executor import KernelExecutor
from kanban_core import KanbanError
from kanban_core.board import leases
from kanban_core.storage import Database

log = logging.getLogger(__name__)
LEADER = leases.LEADER_LEASE
#: A standby never waits longer than this between tries.
MAX_RETRY_S = 1.0
#: Stop acting this long before the lease would run out, when renewals are not getting through.
SAFETY_MARGIN_S = 0.5


@functools.cache
def instance_id() -> str:
    """This gateway process's identity as a lease owner: host, pid and a random part (pids are
    reused). The one place a gateway names itself; an enrolled host's id can take its place."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def platform_lease(name: str) -> str:
    """The lease that owns platform ``name``'s connection."""
    return f"{leases.PLATFORM_LEASE_PREFIX}{name}"


Duty = Callable[[], Awaitable[None]]


class LeaseKeeper:
    """Holds one lease while it can; runs ``on_gain`` when it takes it and ``on_loss`` when it
    ends (lost, or released at stop)."""

    def __init__(
        self,
        db: Database,
        executor: KernelExecutor,
        name: str,
        *,
        lease_s: float,
        owner: str | None = None,
        host_id: int | None = None,
        on_gain: Duty | None = None,
        on_loss: Duty | None = None,
    ) -> None:
        self.db = db
        self.executor = executor
        self.name = name
        self.lease_s = lease_s
        self.owner = owner or instance_id()
        #: The enrolled host this gateway runs as, recorded with the lease (None: implicit).
        self.host_id = host_id
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.held: leases.Held | None = None
        self._valid_until = 0.0  # monotonic: past this, assume the lease is gone

    @property
    def holding(self) -> bool:
        """Whether this gateway holds the lease now (as far as it can know)."""
        return self.held is not None and time.monotonic() < self._valid_until

    async def try_once(self, *, raise_errors: bool = False) -> bool:
        """Take or renew the lease once; runs the gain/loss duty on a change. True if held.

        A duty that fails to start hands the lease over (and raises with ``raise_errors``)."""
        was_held = self.held is not None
        held = await self._exchange()
        if not held or was_held:
            return held
        log.info(
            "lease %s taken (fence %s)",
            self.name,
            self.held.fence if self.held else "?",
            extra={"action": "lease_taken", "lease": self.name},
        )
        if self.on_gain is None:
            return True
        try:
            return await self._start_duty(self.on_gain)
        except Exception:
            await self.release()
            if raise_errors:
                raise
            log.exception("lease %s: its duty failed to start; handed over", self.name)
            return False

    async def _exchange(self) -> bool:
        """One acquire (not held) or renewal (held); a refusal or a run-out ends the duty.
        True when it got through (or the database is unreachable but the lease surely holds)."""
        asked = time.monotonic()
        # A renewal stuck on a stalled connection must not outlast the lease it renews.
        patience = max(self._valid_until - asked, 0.1) if self.held else self.lease_s
        try:
            if self.held is None:
                call = self.executor.run(
                    leases.acquire,
                    self.db,
                    self.name,
                    self.owner,
                    ttl_s=self.lease_s,
                    host_id=self.host_id,
                )
            else:
                call = self.executor.run(leases.renew, self.db, self.held, ttl_s=self.lease_s)
            got = await asyncio.wait_for(call, patience)
        except (KanbanError, TimeoutError) as exc:
            # The database may be out of reach: keep acting only while the lease surely holds.
            reason = str(exc) or "no answer in time"
            if self.held is not None and time.monotonic() >= self._valid_until:
                log.error("lease %s: cannot renew (%s); stopping its duty", self.name, reason)
                await self._lose()
            else:
                log.warning("lease %s: database unreachable: %s", self.name, reason)
            return self.holding
        if got is None:
            if self.held is not None:
                log.warning(
                    "lease %s refused: another gateway holds it, or this host was revoked",
                    self.name,
                )
                # Revoked, the lease is still ours until it runs out: hand it over at once.
                await self.release()
            return False
        self.held = got
        self._valid_until = asked + self.lease_s - SAFETY_MARGIN_S
        return True

    async def _start_duty(self, duty: Duty) -> bool:
        """Start the duty while renewing the lease, so a start slower than the lease (Slack's
        connect timeout) keeps it; a lease lost meanwhile cancels the start. True if started."""
        start = asyncio.ensure_future(duty())
        while not start.done():
            left = self._valid_until - time.monotonic()
            await asyncio.wait({start}, timeout=max(min(self.lease_s / 3, left), 0.05))
            if start.done():
                break
            await self._exchange()
            if self.held is None:
                log.warning("lease %s lost while its duty was starting", self.name)
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await start
                if not start.cancelled() and start.exception() is None:
                    await self._lose(force=True)  # it finished as it was cancelled: stop it
                return False
        start.result()  # a failed start raises here
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Keep trying until ``stop``; then release what is held."""
        try:
            while not stop.is_set():
                try:
                    await self.try_once()
                except Exception:  # the keeper must outlive any one failure
                    log.exception("lease %s: try failed", self.name)
                    if self.held is not None and time.monotonic() >= self._valid_until:
                        await self._lose()
                if self.held:
                    # Wake by the end of the lease at the latest, to stop the duty in time.
                    left = self._valid_until - time.monotonic()
                    pause = max(min(self.lease_s / 3, left), 0.05)
                else:
                    pause = min(MAX_RETRY_S, self.lease_s / 3)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
        finally:
            await self.release()

    async def release(self) -> None:
        """End the duty and give the lease up at once."""
        held = self.held
        if held is None:
            return
        await self._lose()
        try:
            released = await self.executor.run(leases.release, self.db, held)
        except KanbanError as exc:
            log.warning("lease %s not released (it expires on its own): %s", self.name, exc)
        else:
            if released:  # False: it was already someone else's
                log.info("lease %s released", self.name, extra={"action": "lease_released"})

    async def _lose(self, *, force: bool = False) -> None:
        if self.held is None and not force:
            return
        self.held = None
        self._valid_until = 0.0
        if self.on_loss is not None:
            try:
                await self.on_loss()
            except Exception:
                log.exception("lease %s: its duty did not stop cleanly", self.name)
