"""The database hurt under running hosts: restarted, its backends killed, a host cut off from it.

The restart happens on a PostgreSQL cluster of the test's own (``pg_cluster``), never the shared
one. The partition runs one host's every connection (gateway, supervisors) through a
``TcpProxy`` that holds its bytes for longer than every lease, then delivers them: the host must
stop serving the chat in time, must not act on the run it lost (its late completion is refused),
and afterwards stands by and runs new work normally.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from kanban_core import KanbanError
from kanban_core.storage import Database, Query
from tests.chaos.board import (
    PLATFORM_BOUND_S,
    all_sent,
    assert_each_notice_once,
    create_task,
    runs_of,
    status,
    task_running_on_a,
)
from tests.conftest import at_schema
from tests.support.cluster import (
    LEASE_S,
    REDO_BOUND_S,
    RUN_LEASE_S,
    START_TIMEOUT_S,
    Cluster,
    lease_owner,
    wait_owner,
)
from tests.support.fake_telegram import ALICE_ID, FakeTelegram
from tests.support.network import until
from tests.support.pg_cluster import PgCluster
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.chaos, pytest.mark.anyio]
_TOUCH = Query("chaos_touch", "UPDATE tasks SET updated_ms = updated_ms WHERE id = :id")


@pytest.fixture
def proxy(board_url: str) -> Iterator[TcpProxy]:
    address = psycopg.conninfo.conninfo_to_dict(board_url)
    relay = TcpProxy(str(address["host"]), int(address["port"] or 5432))
    try:
        yield relay
    finally:
        relay.close()


def through(url: str, proxy: TcpProxy) -> str:
    """The same database, reached through the proxy."""
    address = psycopg.conninfo.conninfo_to_dict(url)
    return url.replace(f"{address['host']}:{address['port']}", f"127.0.0.1:{proxy.port}")


async def chat_answers(fake: FakeTelegram, timeout: float = 30) -> None:  # noqa: ASYNC109
    """A command from the chat gets its reply: the platform connection works end to end."""
    before = len(fake.sent_to(ALICE_ID))
    await fake.push_text("/kanban list")
    await fake.wait_for(lambda: len(fake.sent_to(ALICE_ID)) > before, timeout)


def completed_once(url: str, task_id: int) -> None:
    outcomes = [outcome for _, outcome, _ in runs_of(url, task_id)]
    assert outcomes.count("completed") == 1, outcomes
    assert status(url, task_id) == "done"


def survived(cluster: Cluster, url: str, task_id: int) -> None:
    """A short fault: the run it hit went on and completed (no redo), and nothing crashed."""
    ((run, host),) = cluster.started(task_id)
    assert runs_of(url, task_id) == [(run, "completed", host)]
    for each in cluster.hosts.values():
        logs = [each.text(), *(p.read_text() for p in (each.home / "logs").glob("*.log"))]
        assert not [text for text in logs if "Traceback" in text], f"{each.name} crashed somewhere"


async def test_postgresql_restarted_mid_run(
    fake: FakeTelegram, pg_cluster: PgCluster, cluster: Cluster, tmp_path: Path
) -> None:
    url = at_schema(pg_cluster.url)
    a, b, task, _ = await task_running_on_a(cluster, url, tmp_path, "outlive a database restart")

    restarted = time.monotonic()
    await asyncio.to_thread(pg_cluster.restart)
    print(f"\nPostgreSQL restarted in {time.monotonic() - restarted:.2f} s")
    cluster.release("a")
    cluster.release("b")
    await until(lambda: status(url, task) == "done", REDO_BOUND_S + 20)

    survived(cluster, url, task)
    await all_sent(url, task, 20)
    assert_each_notice_once(fake, url, task)
    assert a.running()
    assert b.running()
    await until(lambda: lease_owner(url, "platform:telegram") is not None, PLATFORM_BOUND_S)
    await chat_answers(fake)


async def test_postgresql_down_past_every_lease_mid_run(
    fake: FakeTelegram, pg_cluster: PgCluster, cluster: Cluster, tmp_path: Path
) -> None:
    url = at_schema(pg_cluster.url)
    a, b, task, _ = await task_running_on_a(cluster, url, tmp_path, "outlive a database outage")

    # Down for longer than the platform, leader and run leases: every gateway must stop its
    # leased duties by its own clock, and one must take them up again once the server is back.
    await asyncio.to_thread(pg_cluster.down)
    await until(lambda: "stopping its duty" in a.text(), LEASE_S + 5)
    outage_end = time.monotonic() + RUN_LEASE_S + 1  # the outage's length is the scenario
    await until(lambda: time.monotonic() > outage_end, RUN_LEASE_S + 2)
    await asyncio.to_thread(pg_cluster.up)
    back = time.monotonic()
    await chat_answers(fake, PLATFORM_BOUND_S + 10)
    answering = time.monotonic() - back
    cluster.release("a")
    cluster.release("b")
    await until(lambda: status(url, task) == "done", REDO_BOUND_S + 20)
    print(f"\nPostgreSQL back: chat answering after {answering:.2f} s")
    assert answering < PLATFORM_BOUND_S + 3  # + PTB's own reconnect backoff

    completed_once(url, task)
    await all_sent(url, task, 20)
    assert_each_notice_once(fake, url, task)
    assert a.running()
    assert b.running()


async def test_backends_terminated_mid_run(
    fake: FakeTelegram, board_url: str, cluster: Cluster, tmp_path: Path
) -> None:
    *_, task, _ = await task_running_on_a(
        cluster, board_url, tmp_path, "outlive pg_terminate_backend"
    )

    name = psycopg.conninfo.conninfo_to_dict(board_url)["dbname"]
    with psycopg.connect(board_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchone()
    assert killed is not None
    assert killed[0] >= 2, killed  # at least each gateway's listener
    cluster.release("a")
    cluster.release("b")
    await until(lambda: status(board_url, task) == "done", REDO_BOUND_S + 20)

    survived(cluster, board_url, task)
    await all_sent(board_url, task, 20)
    assert_each_notice_once(fake, board_url, task)
    await chat_answers(fake)


async def test_a_host_cut_off_from_the_database_loses_its_leases_and_its_run(
    fake: FakeTelegram, board_url: str, proxy: TcpProxy, cluster: Cluster, tmp_path: Path
) -> None:
    a, b, task, first_run = await task_running_on_a(
        cluster, board_url, tmp_path, "outlive a partition", a_url=through(board_url, proxy)
    )

    # Cut off for longer than any lease. a's agent finishes meanwhile: its completion waits in
    # the held connection and reaches the database only once the link is back.
    proxy.hold()
    cut = time.monotonic()
    polls = len(fake.pollers)
    cluster.release("a")
    await until(lambda: "stopping its duty" in a.text(), LEASE_S + 5)
    await wait_owner(board_url, "platform:telegram", b, PLATFORM_BOUND_S)
    await wait_owner(board_url, "leader", b, PLATFORM_BOUND_S)
    cluster.release("b")
    await until(lambda: status(board_url, task) == "done", REDO_BOUND_S + 10)
    print(f"\npartition: work redone on b {time.monotonic() - cut:.2f} s after the cut")
    assert time.monotonic() - cut < RUN_LEASE_S + REDO_BOUND_S
    await until(lambda: "b" in fake.pollers[polls:], PLATFORM_BOUND_S)
    # a stopped polling before b started: never two consumers of one token.
    since = fake.pollers[polls:]
    assert "a" not in since[since.index("b") :], since

    # The link comes back: what a sent meanwhile lands late, and is refused (its supervisor
    # learns the run is gone and stops the agent, or the agent's completion is turned down).
    proxy.heal()
    log = a.home / "logs" / f"t{task}.log"

    def refused() -> bool:
        late = cluster.results(task).get((first_run, "a"))
        return "the run ended elsewhere" in log.read_text() or (late is not None and late[0] != 0)

    await until(refused, 30)
    runs = runs_of(board_url, task)
    assert [(o, h) for _, o, h in runs] == [("crashed", "a"), ("completed", "b")]
    await all_sent(board_url, task, 20)
    assert_each_notice_once(fake, board_url, task)

    # a recovers: it stands by for the chat and runs work placed on it.
    assert a.running()
    assert b.owner_prefix in (lease_owner(board_url, "platform:telegram") or "")
    again = create_task(board_url, tmp_path, "after the partition", "--host", "a")
    await until(lambda: status(board_url, again) == "done", START_TIMEOUT_S)
    assert [(o, h) for _, o, h in runs_of(board_url, again)] == [("completed", "a")]
    await chat_answers(fake)


def test_a_host_cut_off_mid_transaction_does_not_keep_its_row_locks(
    board_url: str, proxy: TcpProxy, tmp_path: Path
) -> None:
    """The server ends a session left idle inside a transaction, so the row locks of a host
    cut off between two statements do not stall every other host (TCP alone would take hours)."""
    task = create_task(board_url, tmp_path, "a locked row")
    db = Database(through(board_url, proxy), idle_in_transaction_s=1.0)
    locked, failed = threading.Event(), []

    def cut_off_mid_transaction() -> None:
        try:
            with db.transaction(write=True) as tx:
                tx.execute(_TOUCH, {"id": task})
                proxy.hold()  # between two statements: the row stays locked on the server
                locked.set()
                tx.execute(_TOUCH, {"id": task})
        except KanbanError as exc:
            failed.append(exc)

    holder = threading.Thread(target=cut_off_mid_transaction, daemon=True)
    holder.start()
    assert locked.wait(30)
    try:
        with psycopg.connect(board_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '15s'")
            started = time.monotonic()
            other.execute("UPDATE tasks SET updated_ms = updated_ms WHERE id = %s", (task,))
            waited = time.monotonic() - started
    finally:
        proxy.heal()
        holder.join(30)
        db.close()
    assert waited < 10, waited
    assert failed, "the cut-off transaction should have been ended by the server"
