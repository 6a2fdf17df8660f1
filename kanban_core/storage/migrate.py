"""Bring a database to the current schema: a cheap version probe, then Alembic only if needed."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path
from typing import Any

from kanban_core.errors import BoardNotFound, StorageError
from kanban_core.storage.database import Database
from kanban_core.storage.migrations import HEAD, HEAD_NUMBER, REVISIONS
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
_STAMP_HEAD = Query("stamp_user_version", f"PRAGMA user_version = {HEAD_NUMBER}")
_MIGRATION_LOCK = threading.Lock()


def schema_version(db: Database) -> str | None:
    """The revision the database is at, or None for an empty (or missing) database."""
    path = db.sqlite_path
    if path is not None and not db.is_memory and not Path(path).exists():
        return None  # looking must not create the file
    probe = _SQLITE_HAS_VERSION_TABLE if db.dialect == "sqlite" else _PG_HAS_VERSION_TABLE
    with db.transaction(write=False) as tx:
        if not tx.scalar(probe):
            return None
        version = tx.scalar(_VERSION)
    return None if version is None else str(version)


def ensure_schema(db: Database, *, create: bool = True, make_dirs: bool = True) -> bool:
    """Create or upgrade the schema (and set WAL on a new SQLite file); True when it did any.

    ``create=False`` refuses, with BoardNotFound, to make a board that is not there (a missing
    SQLite file, an empty database); ``make_dirs=False`` refuses to make a missing directory
    for a new SQLite file. An existing board is always upgraded.
    """
    file_backed = db.dialect == "sqlite" and not db.is_memory
    exists = True
    if file_backed:
        path = Path(db.sqlite_path or "").absolute()
        exists = path.exists()
        # The common case in one header read: a board we set up (WAL, then migrations) at
        # the current revision. No schema is parsed, so opening stays cheap.
        if exists and db.user_version() == HEAD_NUMBER:
            return False
        if not exists:
            _check_may_create(db, create=create)
            if not path.parent.is_dir():
                if not make_dirs:
                    raise BoardNotFound(
                        f"no board at {path}: its directory {path.parent} does not exist "
                        "(`kanban init` creates both)"
                    )
                path.parent.mkdir(parents=True, exist_ok=True)
    needs_wal = file_backed and (not exists or db.journal_mode() != "wal")
    version = schema_version(db) if exists else None
    if version is None:
        _check_may_create(db, create=create)
    elif version == HEAD and not needs_wal:
        if file_backed:
            _stamp_user_version(db)  # a board from before the stamp: cheap opens from now on
        return False
    if version is not None and version not in REVISIONS:
        raise StorageError(
            f"{db.describe()} has schema revision {version}, newer than this kanban "
            f"understands ({HEAD}); upgrade kanban-gateway"
        )
    if file_backed:
        path = Path(db.sqlite_path or "")
        # Concurrent first starts: one process migrates, the others wait and find it done.
        with Path(str(path) + ".init.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not path.exists() or db.journal_mode() != "wal":
                    db.enable_wal()
                _upgrade(db)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        _upgrade(db)
    return True


def _check_may_create(db: Database, *, create: bool) -> None:
    if not create:
        where = (
            f"at {Path(db.sqlite_path or '').absolute()}"
            if db.dialect == "sqlite"
            else f"in {db.describe()}"
        )
        raise BoardNotFound(f"no board {where}: `kanban init` creates it")


def _stamp_user_version(db: Database) -> None:
    with db.transaction(write=True) as tx:
        if tx.scalar(_VERSION) == HEAD:
            tx.execute(_STAMP_HEAD)


def _upgrade(db: Database) -> None:
    # Alembic's context is process-global: two threads migrating at once corrupt each other.
    from kanban_core.storage import bootstrap  # the snapshot loads only to create a board

    with _MIGRATION_LOCK:
        version = schema_version(db)
        if version is None and bootstrap.can_create(db):
            bootstrap.create(db)
        elif version != HEAD:
            _run_alembic(db)


def migrate_to(db: Database, revision: str) -> None:
    """Upgrade or downgrade to a given revision (migration tests and support work only)."""
    if revision not in REVISIONS:
        raise StorageError(f"unknown schema revision {revision!r}")
    path = db.sqlite_path
    if path is not None and not db.is_memory and not Path(path).exists():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        db.enable_wal()  # a new file, set up as ensure_schema sets one up
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
            if db.dialect == "sqlite":
                # The revision also goes into the file header, where opening reads it cheaply.
                version = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                connection.exec_driver_sql(
                    f"PRAGMA user_version = {revision_number(version.scalar())}"
                )
            connection.commit()
    except sa.exc.SQLAlchemyError as exc:
        raise StorageError(f"cannot migrate {db.describe()}: {exc}") from exc
    finally:
        if shared is not None:
            shared.execute("PRAGMA foreign_keys=ON")
        if not db.is_memory:
            engine.dispose()


def revision_number(revision: str | None) -> int:
    """The number a revision is stamped as in SQLite's ``user_version`` (0: no schema)."""
    return 0 if revision is None else REVISIONS.index(revision) + 1
