"""Fixtures of the chaos matrix: the fake Bot API, the hosts, a PostgreSQL cluster to restart
(the board is ``board_url``, shared with the e2e tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.conftest import PG_URL
from tests.e2e import test_telegram as telegram_e2e
from tests.support.cluster import Cluster
from tests.support.fake_telegram import FakeTelegram
from tests.support.pg_cluster import PgCluster

# The hosts' chat: the loopback fake Bot API, on the asyncio loop of the e2e tests.
anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake


@pytest.fixture
def pg_cluster(tmp_path: Path) -> Iterator[PgCluster]:
    """A PostgreSQL cluster of this test's own (it restarts it), on a free port."""
    if not PG_URL:
        pytest.skip("the chaos matrix runs on PostgreSQL (set KANBAN_TEST_PG_URL)")
    cluster = PgCluster(tmp_path)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Cluster]:
    """This test's hosts, every one of their processes killed at the end."""
    hosts = Cluster(fake, tmp_path)
    try:
        yield hosts
    finally:
        await hosts.stop_all()
