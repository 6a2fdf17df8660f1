"""A gateway's lease keeper: the duty starts on taking the lease and stops the moment it is lost."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway.executor import KernelExecutor
from gateway.leases import LeaseKeeper, instance_id
from kanban_core import Actor, Kanban
from kanban_core.board import leases
from tests.support.network import until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Duty:
    def __init__(self) -> None:
        self.log: list[str] = []

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")


async def test_the_duty_follows_the_lease(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    duty = Duty()
    keeper = LeaseKeeper(
        board.db, executor, "platform:x", lease_s=0.3, on_gain=duty.start, on_loss=duty.stop
    )
    try:
        assert await keeper.try_once() is True
        assert await keeper.try_once() is True  # a renewal starts nothing again
        assert duty.log == ["start"]
        # Renewals stop getting through; another gateway takes the lease once it runs out.
        await until(lambda: leases.acquire(board.db, "platform:x", "other", ttl_s=30), 10)
        assert await keeper.try_once() is False
        assert duty.log == ["start", "stop"]
        assert not keeper.holding
    finally:
        executor.shutdown()


async def test_a_stalled_database_stops_the_duty_before_the_lease_runs_out(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    duty = Duty()
    keeper = LeaseKeeper(
        board.db, executor, "platform:z", lease_s=1.0, on_gain=duty.start, on_loss=duty.stop
    )
    stalled = threading.Event()
    try:
        assert await keeper.try_once() is True
        # The keeper's only thread hangs (a connection stalled with no error): no renewal ends.
        blocker = asyncio.ensure_future(executor.run(stalled.wait, 30))
        assert await keeper.try_once() is False
        assert duty.log == ["start", "stop"]
        (state,) = [s for s in leases.all_leases(board.db) if s.name == "platform:z"]
        assert state.live  # stopped while the lease still held: no overlap with a successor
    finally:
        stalled.set()
        await blocker
        executor.shutdown()


async def test_release_stops_the_duty_and_hands_over_at_once(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    duty = Duty()
    keeper = LeaseKeeper(
        board.db, executor, "leader", lease_s=60, on_gain=duty.start, on_loss=duty.stop
    )
    try:
        await keeper.try_once()
        await keeper.release()
        assert duty.log == ["start", "stop"]
        taken = leases.acquire(board.db, "leader", "other", ttl_s=60)
        assert taken is not None
        assert taken.fence == 2
    finally:
        executor.shutdown()


async def test_a_duty_that_fails_to_start_hands_the_lease_over(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)

    async def broken() -> None:
        raise RuntimeError("no network")

    keeper = LeaseKeeper(board.db, executor, "platform:y", lease_s=60, on_gain=broken)
    try:
        with pytest.raises(RuntimeError):
            await keeper.try_once(raise_errors=True)
        assert leases.acquire(board.db, "platform:y", "other", ttl_s=60) is not None
    finally:
        executor.shutdown()


def test_the_instance_id_names_host_and_process_and_is_stable() -> None:
    host, pid, random = instance_id().split(":")
    assert host
    assert pid.isdigit()
    assert len(random) == 8
    assert instance_id() == instance_id()


class SlowStart(Duty):
    """A platform whose connect takes longer than the lease (Slack's connect timeout)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.cancelled = False

    async def start(self) -> None:
        self.log.append("connecting")
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.log.append("start")


async def test_a_start_slower_than_the_lease_keeps_renewing_it(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    other = KernelExecutor(threads=1)  # the rival gateway's own thread
    duty = SlowStart(seconds=3.0)  # two and a half leases long
    keeper = LeaseKeeper(
        board.db, executor, "platform:slack", lease_s=1.2, on_gain=duty.start, on_loss=duty.stop
    )
    stolen: list[leases.Held | None] = []

    async def rival() -> None:
        # Another gateway tries all through the start: the lease must never come free.
        await until(lambda: "connecting" in duty.log, timeout=5)
        while "start" not in duty.log:
            stolen.append(await other.run(leases.acquire, board.db, "platform:slack", "b", ttl_s=1))
            await asyncio.sleep(0.1)

    try:
        trying = asyncio.ensure_future(rival())
        assert await keeper.try_once() is True
        await trying
        assert duty.log == ["connecting", "start"]
        assert stolen
        assert not any(stolen)
        (state,) = [s for s in leases.all_leases(board.db) if s.name == "platform:slack"]
        assert (state.owner, state.fence, state.live) == (keeper.owner, 1, True)
        assert keeper.holding
    finally:
        await keeper.release()
        executor.shutdown()
        other.shutdown()


async def test_a_lease_lost_during_a_slow_start_cancels_the_start(board: Kanban) -> None:
    executor = KernelExecutor(threads=1)
    duty = SlowStart(seconds=30.0)
    keeper = LeaseKeeper(
        board.db, executor, "platform:slack", lease_s=1.2, on_gain=duty.start, on_loss=duty.stop
    )
    try:
        starting = asyncio.ensure_future(keeper.try_once())
        await until(lambda: "connecting" in duty.log, timeout=5)
        # An operator's fix, or a split brain: the lease is taken from under the start.
        assert keeper.held is not None
        assert leases.release(board.db, keeper.held)
        assert leases.acquire(board.db, "platform:slack", "b", ttl_s=60) is not None
        assert await asyncio.wait_for(starting, 5) is False
        assert duty.cancelled
        assert duty.log == ["connecting", "stop"]
        assert not keeper.holding
    finally:
        executor.shutdown()


async def test_a_revoked_host_stops_its_duty_and_hands_the_lease_over(board: Kanban) -> None:
    admin = Actor(name="admin")
    host = board.enroll_host(
        admin, name="alpha", labels=(), secret=f"s-{admin.name}", readmit=False
    )
    executor = KernelExecutor(threads=1)
    duty = Duty()
    keeper = LeaseKeeper(
        board.db,
        executor,
        "platform:telegram",
        lease_s=60,
        host_id=host.host_id,
        on_gain=duty.start,
        on_loss=duty.stop,
    )
    try:
        assert await keeper.try_once() is True
        board.revoke_host(admin, "alpha")
        assert await keeper.try_once() is False
        assert duty.log == ["start", "stop"]
        (state,) = [s for s in leases.all_leases(board.db) if s.name == "platform:telegram"]
        assert not state.live  # released, not left to run out: a standby takes it at once
        assert await keeper.try_once() is False  # and it cannot take it back
        assert duty.log == ["start", "stop"]
    finally:
        executor.shutdown()
