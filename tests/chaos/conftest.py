"""Fixtures of the chaos matrix: a fresh PostgreSQL board, enrolled hosts, a cluster to restart."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kanban_core.storage import Database
from kanban_core.storage.migrate import ensure_schema
from tests.conftest import PG_URL, create_pg_database, drop_pg_database
from tests.e2e import test_telegram as telegram_e2e
from tests.support.fake_telegram import FakeTelegram
from tests.support.pg_cluster import PgCluster

if TYPE_CHECKING:
    from tests.chaos.hosts import Cluster

# The hosts' chat: the loopback fake Bot API, on the asyncio loop of the e2e tests.
anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake


def fresh_board(admin_url: str) -> str:
    """A new database on ``admin_url``'s cluster, at the current schema."""
    url = create_pg_database() if admin_url == PG_URL else admin_url
    db = Database(url)
    ensure_schema(db)
    db.close()
    return url


@pytest.fixture
def board_url() -> Iterator[str]:
    """A new database on the shared PostgreSQL, dropped afterwards."""
    if not PG_URL:
        pytest.skip("the chaos matrix runs on PostgreSQL (set KANBAN_TEST_PG_URL)")
    url = fresh_board(PG_URL)
    try:
        yield url
    finally:
        drop_pg_database(url)


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


def enroll(home: Path, db_url: str, name: str, *labels: str) -> None:
    """``kanban host enroll --name NAME`` in ``home``, as an admin at that host's terminal."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KANBAN_HOME": str(home),
        "KANBAN_DB_URL": db_url,
    }
    argv = [sys.executable, "-m", "kanban_core", "host", "enroll", "--name", name]
    for label in labels:
        argv += ["--label", label]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@pytest.fixture
async def cluster(fake: FakeTelegram, tmp_path: Path) -> AsyncIterator[Cluster]:
    """This test's hosts, every one of their processes killed at the end."""
    from tests.chaos.hosts import Cluster  # hosts imports ``enroll`` from here

    hosts = Cluster(fake, tmp_path)
    try:
        yield hosts
    finally:
        await hosts.stop_all()
