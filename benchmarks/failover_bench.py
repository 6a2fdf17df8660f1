"""A host killed → its platform connection answering again from another host (PostgreSQL only).

Two enrolled hosts (``kanban gateway`` processes of their own) share the board and one bot
token against the loopback fake Bot API; the one holding ``platform:telegram`` is killed with
SIGKILL (with everything it started), a chat command is sent at once, and the clock runs until
the other host has answered it. The target is the lease time plus two seconds.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.backends import Backend
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from tests.support.cluster import START_TIMEOUT_S, Cluster, wait_owner
from tests.support.fake_telegram import ALICE_ID, FakeTelegram, running
from tests.support.network import until

LEASE = "platform:telegram"


def kill_to_answer(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """Median seconds from the kill to the other host's answer (1 sample quick, 3 full)."""
    samples = 1 if sizes.quick else 3
    log(f"{backend.name}: a host killed → its chat answered from another host, {samples} round(s)")
    with backend.board() as url, tempfile.TemporaryDirectory(dir=backend.workdir) as work:
        return statistics.median(asyncio.run(_measure(url, Path(work), samples)))


async def _measure(url: str, work: Path, samples: int) -> list[float]:
    taken: list[float] = []
    async with running() as fake:
        for i in range(samples):
            (work / f"round{i}").mkdir()
            taken.append(await _one(fake, url, work / f"round{i}", i))
    return taken


async def _one(fake: FakeTelegram, url: str, root: Path, round_no: int) -> float:
    cluster = Cluster(fake, root)
    owner = cluster.add(f"bench-a{round_no}", url)
    standby = cluster.add(f"bench-b{round_no}", url)
    try:
        await cluster.start(owner.name)
        await wait_owner(url, LEASE, owner, START_TIMEOUT_S)
        await cluster.start(standby.name)
        await until(lambda: "another gateway holds it" in standby.text(), START_TIMEOUT_S)
        before = len(fake.sent_to(ALICE_ID))
        killed = await cluster.kill(owner.name)
        await fake.push_text("/kanban list")
        await fake.wait_for(lambda: len(fake.sent_to(ALICE_ID)) > before, 60)
        return time.monotonic() - killed
    finally:
        await cluster.stop_all()
