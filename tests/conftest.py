"""Shared fixtures: a board on in-memory SQLite and, when a server is available, PostgreSQL.

Set ``KANBAN_TEST_PG_URL`` (``.ci/run`` does) to run every kernel test on PostgreSQL too. In CI
(``CI=true``) a missing PostgreSQL is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, Task
from kanban_core.storage import Database, Query
from kanban_core.storage.migrate import ensure_schema

PG_URL = os.environ.get("KANBAN_TEST_PG_URL", "")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_TABLES = (
    "permission_requests, notify_deliveries, notify_subscriptions, task_events, task_runs, "
    "task_comments, task_links, tasks, workspaces, workspace_repos, workspace_sessions, "
    "session_messages, "
    "workspace_turns, queued_messages, approvals, chat_bindings, workspace_audit, chat_deliveries, "
    "dispatcher_health, progress_messages, web_login_links, web_sessions, audit_log, "
    "host_labels, hosts, leases, permission_cards, board_identity, maintenance_runs, "
    "exec_requests, exec_nonces"
)


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not PG_URL:
        raise pytest.UsageError("CI must run the PostgreSQL suite: set KANBAN_TEST_PG_URL")


@pytest.fixture(scope="session")
def pg_database_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, at the current schema."""
    if not PG_URL:
        pytest.skip("no PostgreSQL (set KANBAN_TEST_PG_URL)")
    import psycopg

    name = f"kanban_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(PG_URL, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    url = at_schema(PG_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def create_pg_database() -> str:
    import psycopg

    name = f"kanban_fresh_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def at_schema(url: str) -> str:
    """``url``, its database brought to the current schema."""
    db = Database(url)
    ensure_schema(db)
    db.close()
    return url


@pytest.fixture
def board_url() -> Iterator[str]:
    """A board several gateways or hosts share: a new PostgreSQL database, dropped afterwards."""
    if not PG_URL:
        pytest.skip("several processes share a PostgreSQL board (set KANBAN_TEST_PG_URL)")
    url = at_schema(create_pg_database())
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def fresh_url(db_url, tmp_path):
    """An empty database of the test's dialect: a new SQLite file, or a new PostgreSQL database."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh' / 'kanban.db'}"
    else:
        url = create_pg_database()
        try:
            yield url
        finally:
            drop_pg_database(url)


_DROP_LISTENERS = Query(
    "drop_change_listeners",
    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE starts_with(query, 'LISTEN kanban_events') AND pid <> pg_backend_pid()",
)


def drop_change_listeners(db: Database) -> None:
    """PostgreSQL terminates every connection LISTENing for board changes (a network cut)."""
    with db.transaction(write=True) as tx:
        tx.fetchall(_DROP_LISTENERS)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each kernel test runs once per database."""
    if request.param == "sqlite":
        return "sqlite://"
    url: str = request.getfixturevalue("pg_database_url")
    db = Database(url)
    with db.transaction(write=True) as tx:
        tx.execute(Query("truncate", f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    db.close()
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> KernelSettings:
    return KernelSettings(home=tmp_path / "home", db_url=db_url)


@pytest.fixture
def board(settings: KernelSettings) -> Iterator[Kanban]:
    with Kanban.open(settings) as kanban:
        yield kanban


@pytest.fixture
def operator() -> Actor:
    return Actor(name="alice")


@pytest.fixture
def make_task(board: Kanban, operator: Actor) -> Callable[..., Task]:
    """Factory: ``make_task(title="…", **create_kwargs)`` returns the created task."""
    counter = iter(range(1, 1_000_000))

    def factory(title: str | None = None, **kwargs: Any) -> Task:
        return board.create(operator, title=title or f"task {next(counter)}", **kwargs).task

    return factory
