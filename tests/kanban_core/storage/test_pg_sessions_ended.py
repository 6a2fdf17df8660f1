"""PostgreSQL sessions the server ends (an admin, a restart, a transaction left idle): each is a
``StorageError`` to the caller, never psycopg's own exception, and the next call reconnects."""

from __future__ import annotations

import psycopg
import pytest

from kanban_core import StorageError
from kanban_core.storage import Database, Query
from tests.support.processes import wait_for

_PID = Query("backend_pid", "SELECT pg_backend_pid()")


@pytest.fixture
def pg_url(pg_database_url: str) -> str:
    return pg_database_url


def backend_pid(db: Database, *, single: bool) -> int:
    with db.transaction(write=False, single=single) as tx:
        return int(tx.scalar(_PID))


def gone(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
        return bool((row.fetchone() or (1,))[0] == 0)


@pytest.mark.parametrize("single", [False, True], ids=["transaction", "autocommit"])
def test_a_pooled_connection_terminated_by_an_admin_is_a_storage_error(
    pg_url: str, single: bool
) -> None:
    db = Database(pg_url, pool_size=1)
    try:
        pid = backend_pid(db, single=single)
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(lambda: gone(pg_url, pid), 10, "the backend to end")
        with pytest.raises(StorageError, match="database error"):
            backend_pid(db, single=single)
        assert backend_pid(db, single=single) != pid  # a new connection, not the broken one
    finally:
        db.close()


def test_a_transaction_left_idle_is_ended_by_the_server_as_a_storage_error(pg_url: str) -> None:
    db = Database(pg_url, idle_in_transaction_s=0.2)
    try:
        ended = pytest.raises(StorageError, match="idle-in-transaction")
        with ended, db.transaction(write=False) as tx:
            pid = int(tx.scalar(_PID))
            wait_for(lambda: gone(pg_url, pid), 10, "the server to end the idle session")
            tx.scalar(_PID)
        assert backend_pid(db, single=False) != pid
    finally:
        db.close()
