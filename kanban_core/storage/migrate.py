"""Bring a database to the current schema: a cheap version probe, then Alembic only if needed."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import Any

from kanban_core.errors import StorageError
from kanban_core.storage.database import Database
from kanban_core.storage.migrations import HEAD, REVISIONS
from kanban_core.storage.sql import Query

_SQLITE_HAS_VERSION_TABLE = Query(
    "sqlite_has_version_table",
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'",
)
_PG_HAS_VERSION_TABLE = Query(
    "pg_has_version_table",
    "SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version'"
    " AND schemaname = current_schema()",
)
_VERSION = Query("schema_version", "SELECT version_num FROM alembic_version")
_MIGRATION_LOCK = threading.Lock()


def schema_version(db: Database) -> str | None:
    """The revision the database is at, or None for an empty database."""
    probe = _SQLITE_HAS_VERSION_TABLE if db.dialect == "sqlite" else _PG_HAS_VERSION_TABLE
    with db.transaction(write=False) as tx:
        if not tx.scalar(probe):
            return None
        version = tx.scalar(_VERSION)
    return None if version is None else str(version)


def ensure_schema(db: Database) -> bool:
    """Create or upgrade the schema (and set WAL on a new SQLite file); True when it did any."""
    file_backed = db.dialect == "sqlite" and not db.is_memory
    needs_wal = file_backed and db.journal_mode() != "wal"
    version = schema_version(db)
    if version == HEAD and not needs_wal:
        return False
    if version is not None and version not in REVISIONS:
        raise StorageError(
            f"{db.describe()} has schema revision {version}, newer than this kanban "
            f"understands ({HEAD}); upgrade kanban-gateway"
        )
    if file_backed:
        path = db.sqlite_path
        assert path is not None
        # Concurrent first starts: one process migrates, the others wait and find it done.
        with Path(path + ".init.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if db.journal_mode() != "wal":
                    db.enable_wal()
                _upgrade(db)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        _upgrade(db)
    return True


def _upgrade(db: Database) -> None:
    # Alembic's context is process-global: two threads migrating at once corrupt each other.
    with _MIGRATION_LOCK:
        if schema_version(db) != HEAD:
            _run_alembic(db)


def migrate_to(db: Database, revision: str) -> None:
    """Upgrade or downgrade to a given revision (migration tests and support work only)."""
    if revision not in REVISIONS:
        raise StorageError(f"unknown schema revision {revision!r}")
    with _MIGRATION_LOCK:  # read the version under the lock, as _upgrade does
        current = schema_version(db)
        if current is not None and REVISIONS.index(revision) < REVISIONS.index(current):
            _run_alembic(db, revision, downgrade=True)
        elif current != revision:
            _run_alembic(db, revision)


def _run_alembic(db: Database, target: str = "head", *, downgrade: bool = False) -> None:
    import sqlalchemy as sa
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.pool import NullPool, StaticPool

    engine: Any
    shared = None
    if db.dialect == "sqlite":
        # Migrate through a connection opened our way (pragmas, WAL) — for :memory: the very
        # connection the kernel uses, or the schema would land in a different database.
        shared = db._memory_connection() if db.is_memory else None  # noqa: SLF001
        creator = (lambda: shared) if shared is not None else db._connect_sqlite  # noqa: SLF001
        engine = sa.create_engine(
            "sqlite://", creator=creator, poolclass=StaticPool if shared else NullPool
        )

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(connection: Any) -> None:
            # Table rebuilds (drop the old table, rename the new one) need foreign keys off,
            # which SQLite only allows outside a transaction; migrations/env.py re-checks
            # every reference before the migration commits.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        engine = sa.create_engine(db.sqlalchemy_url(), poolclass=NullPool)

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            if downgrade:
                command.downgrade(config, target)
            else:
                command.upgrade(config, target)
            connection.commit()
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate {db.describe()}: {exc}") from exc
    finally:
        if shared is not None:
            shared.execute("PRAGMA foreign_keys=ON")
        if not db.is_memory:
            engine.dispose()
