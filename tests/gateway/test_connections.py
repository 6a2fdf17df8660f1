"""Platform connections under leases: a slow-connecting adapter keeps its lease while it starts."""

from __future__ import annotations

import asyncio

import pytest

from gateway import MessageSink
from gateway.connections import PlatformConnections
from gateway.executor import KernelExecutor
from gateway.messages import IncomingMessage
from kanban_core import Kanban
from kanban_core.board import leases
from tests.gateway.support import InMemoryAdapter
from tests.support.network import until

pytestmark = pytest.mark.anyio
LEASE_S = 1.2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowSlack(InMemoryAdapter):
    """Slack whose Socket Mode connect takes longer than the lease (its 30 s timeout vs 15 s)."""

    def __init__(self, connect_s: float) -> None:
        super().__init__("slack")
        self.connect_s = connect_s

    async def start(self, sink: MessageSink, *, menu: object = ()) -> None:
        await asyncio.sleep(self.connect_s)
        await super().start(sink, menu=menu)


async def _sink(_message: IncomingMessage) -> None:
    return None


async def test_a_slow_connect_keeps_the_lease_and_the_standby_stays_by(board: Kanban) -> None:
    made: list[SlowSlack] = []

    def make() -> SlowSlack:
        made.append(SlowSlack(connect_s=3 * LEASE_S))
        return made[-1]

    ex_a, ex_b = KernelExecutor(threads=1), KernelExecutor(threads=1)
    first = PlatformConnections(
        {"slack": make}, _sink, db=board.db, executor=ex_a, lease_s=LEASE_S, owner="gw-a"
    )
    standby = PlatformConnections(
        {"slack": make}, _sink, db=board.db, executor=ex_b, lease_s=LEASE_S, owner="gw-b"
    )
    stop = asyncio.Event()
    loop_b: list[asyncio.Task[None]] = []
    try:
        starting = asyncio.ensure_future(first.start())
        await until(lambda: bool(made), 5)
        # The other gateway keeps trying all through the slow connect.
        tries = [asyncio.ensure_future(standby.start())]
        loop_b = standby.tasks(stop)
        await asyncio.wait_for(starting, 10 * LEASE_S)
        await asyncio.gather(*tries)

        assert list(first.running) == ["slack"]
        assert standby.running == {}
        assert len(made) == 1  # the standby never got to connect
        (state,) = [s for s in leases.all_leases(board.db) if s.name == "platform:slack"]
        assert (state.owner, state.fence, state.live) == ("gw-a", 1, True)
    finally:
        stop.set()
        await asyncio.gather(*loop_b, return_exceptions=True)
        await first.close()
        await standby.close()
        ex_a.shutdown()
        ex_b.shutdown()
