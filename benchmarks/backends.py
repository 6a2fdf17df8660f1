"""Where benchmark boards live: SQLite files in a temporary directory, or new PostgreSQL databases.

Every board starts as a copy of a template migrated once (a file copy on SQLite, ``CREATE
DATABASE … TEMPLATE`` on PostgreSQL), so a fresh board costs milliseconds, not a migration.
"""

from __future__ import annotations

import abc
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from kanban_core import Kanban, KernelSettings
from kanban_core.board.kanban import OnMissing
from kanban_core.storage import Database
from kanban_core.storage.migrate import ensure_schema

if TYPE_CHECKING:
    import psycopg


class Backend(abc.ABC):
    """A database engine that hands out fresh, empty boards at the current schema."""

    name: str

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    @abc.abstractmethod
    def new_board(self) -> str:
        """A URL to a new, empty board at the current schema."""

    @abc.abstractmethod
    def drop_board(self, url: str) -> None:
        """Delete a board made by ``new_board``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """One line about the engine, for the machine-info header."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release everything the backend holds."""

    def settings(self, url: str) -> KernelSettings:
        """The kernel settings of a board (default SQLite settings: synchronous=NORMAL)."""
        return KernelSettings(home=self.home, db_url=url)

    def open(self, url: str) -> Kanban:
        """Open a board through the facade, as the CLI and the gateway do."""
        return Kanban.open(self.settings(url))

    def open_settings(self, settings: KernelSettings) -> Kanban:
        """Open an existing board as a reading command does (nothing is ever created)."""
        return Kanban.open(settings, on_missing=OnMissing.REFUSE)

    @abc.abstractmethod
    @contextmanager
    def empty_board(self) -> Iterator[str | None]:
        """An empty database for a first call to set up: None on SQLite (the home's default
        file, not there yet), a new database with no schema on PostgreSQL."""

    @contextmanager
    def board(self) -> Iterator[str]:
        """A fresh board for the duration of a block."""
        url = self.new_board()
        try:
            yield url
        finally:
            self.drop_board(url)


class SqliteBackend(Backend):
    """SQLite files (WAL, the kernel's default pragmas) in a temporary directory."""

    name = "SQLite"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self._count = 0
        self._template = workdir / "template.db"
        db = Database(f"sqlite:///{self._template}")
        try:
            ensure_schema(db)
        finally:
            db.close()
        # Fold the WAL into the main file so a plain copy is the whole database.
        connection = sqlite3.connect(self._template)
        try:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()

    def new_board(self) -> str:
        """Copy the migrated template to a new file."""
        self._count += 1
        path = self.workdir / f"board-{self._count}.db"
        shutil.copyfile(self._template, path)
        return f"sqlite:///{path}"

    def drop_board(self, url: str) -> None:
        """Delete the file and its WAL companions."""
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm", ".init.lock"):
            Path(path + suffix).unlink(missing_ok=True)

    @contextmanager
    def empty_board(self) -> Iterator[str | None]:
        """No URL: the first call creates ``$KANBAN_HOME/kanban.db``."""
        yield None

    def close(self) -> None:
        """Nothing to release: the files go with the temporary directory."""

    def describe(self) -> str:
        """The SQLite library version."""
        return f"SQLite {sqlite3.sqlite_version} (files in {self.workdir}, synchronous=NORMAL)"


class PostgresBackend(Backend):
    """One new database per board on the given server, all dropped at the end."""

    name = "PostgreSQL"

    def __init__(self, workdir: Path, url: str) -> None:
        super().__init__(workdir)
        import psycopg

        self._url = url
        self._admin: psycopg.Connection[Any] = psycopg.connect(
            _conninfo(url), autocommit=True, connect_timeout=10
        )
        self._prefix = f"kanban_bench_{os.getpid()}_{secrets.token_hex(3)}"
        self._template = f"{self._prefix}_template"
        self._live: set[str] = set()
        self._count = 0
        self._create(self._template, None)
        db = Database(self._url_for(self._template))
        try:
            ensure_schema(db)
        finally:
            db.close()

    def new_board(self) -> str:
        """``CREATE DATABASE … TEMPLATE`` the migrated template."""
        self._count += 1
        name = f"{self._prefix}_{self._count}"
        self._create(name, self._template)
        return self._url_for(name)

    @contextmanager
    def empty_board(self) -> Iterator[str | None]:
        """A new database without a schema, dropped afterwards."""
        self._count += 1
        name = f"{self._prefix}_empty_{self._count}"
        self._create(name, None)
        try:
            yield self._url_for(name)
        finally:
            self._drop(name)

    def drop_board(self, url: str) -> None:
        """Drop the database (disconnecting anything left on it)."""
        self._drop(urlsplit(url).path.lstrip("/"))

    def describe(self) -> str:
        """Server version and the durability settings that matter for commit latency."""
        row = self._admin.execute(
            "SELECT current_setting('server_version'), current_setting('fsync'), "
            "current_setting('synchronous_commit')"
        ).fetchone()
        assert row is not None
        host = urlsplit(self._url).hostname or "local socket"
        return f"PostgreSQL {row[0]} at {host} (fsync={row[1]}, synchronous_commit={row[2]})"

    def close(self) -> None:
        """Drop every database this run made, then the template."""
        for name in sorted(self._live - {self._template}):
            self._drop(name)
        self._drop(self._template)
        self._admin.close()

    def _create(self, name: str, template: str | None) -> None:
        from psycopg import sql

        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        self._admin.execute(statement)
        self._live.add(name)

    def _drop(self, name: str) -> None:
        from psycopg import sql

        if name not in self._live:
            return
        self._admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        self._live.discard(name)

    def _url_for(self, name: str) -> str:
        return urlunsplit(urlsplit(self._url)._replace(path="/" + name))


def _conninfo(url: str) -> str:
    """A libpq URL from any spelling the kernel accepts (``postgresql+psycopg://`` etc.)."""
    return "postgresql:" + url.split(":", 1)[1]
