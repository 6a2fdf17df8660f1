"""Connections to SQLite or PostgreSQL and the transaction wrapper every kernel call runs in."""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from kanban_core.errors import StorageError, ValidationError
from kanban_core.storage.sql import DialectName, Query
from kanban_core.storage.text import storable

if TYPE_CHECKING:
    import psycopg

Dialect = DialectName
Row = tuple[Any, ...]
Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_NO_PARAMS: Mapping[str, object] = {}
_MAX_IDLE_CONNECTIONS = 4
#: PostgreSQL ends a session left idle inside a transaction this long: our transactions never
#: wait between statements, so only a client cut off mid-transaction does — and without this its
#: row locks would stall every other host until TCP gives up on it (hours).
IDLE_IN_TRANSACTION_S = 60.0
_JOURNAL_MODE = Query("journal_mode", "PRAGMA journal_mode")
_USER_VERSION = Query("user_version", "PRAGMA user_version")
#: Page size of new SQLite boards. A claim or a complete dirties about a dozen pages, and each
#: is written (and checksummed) whole to the WAL: 2 KiB pages made claim→complete ~20% faster
#: than the default 4 KiB, while 1 KiB pages slowed full scans (`list`) more than they sped up
#: commits. Existing boards keep the size they were created with (changing it needs a VACUUM).
SQLITE_PAGE_SIZE = 2048
#: WAL pages written before a commit also checkpoints (SQLite's default is 1,000).
SQLITE_CHECKPOINT_PAGES = 4000
_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


class _SqliteConnection(sqlite3.Connection):
    """A SQLite connection that remembers whether its write settings are applied yet."""

    writes_set_up = False


class Transaction:
    """One database transaction: execute prepared Queries, fetch plain tuples.

    String parameters are made storable first (NUL and lone surrogates become U+FFFD): text from
    chat or a worker's log must never make a write, or the lookup of what was written, fail.
    """

    __slots__ = ("_cursor", "dialect")

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self._cursor = cursor
        self.dialect: Dialect = dialect

    def execute(self, query: Query, params: Mapping[str, object] = _NO_PARAMS) -> int:
        """Run a statement; returns the number of rows it changed."""
        cursor = self._cursor
        cursor.execute(query.render(self.dialect), storable(params))
        count: int = cursor.rowcount
        return count

    def fetchone(self, query: Query, params: Mapping[str, object] = _NO_PARAMS) -> Row | None:
        """Run a statement and return its first row, or None."""
        cursor = self._cursor
        cursor.execute(query.render(self.dialect), storable(params))
        row: Row | None = cursor.fetchone()
        return row

    def fetchall(self, query: Query, params: Mapping[str, object] = _NO_PARAMS) -> list[Row]:
        """Run a statement and return all rows."""
        cursor = self._cursor
        cursor.execute(query.render(self.dialect), storable(params))
        rows: list[Row] = cursor.fetchall()
        return rows

    def scalar(self, query: Query, params: Mapping[str, object] = _NO_PARAMS) -> Any:
        """The first column of the first row, or None."""
        row = self.fetchone(query, params)
        return None if row is None else row[0]

    def executemany(self, query: Query, rows: Sequence[Mapping[str, object]]) -> None:
        """Run one statement for each parameter set."""
        if rows:
            self._cursor.executemany(query.render(self.dialect), [storable(row) for row in rows])


class Database:
    """A board's database: a small pool of DBAPI connections and transactions over them.

    SQLite is opened in WAL mode (set once, at creation), every writing transaction starts with
    ``BEGIN IMMEDIATE`` so lock waits honour ``busy_timeout`` instead of failing, and connections
    are always closed. An in-memory SQLite database is one shared connection behind a lock.
    """

    def __init__(
        self,
        url: str,
        *,
        synchronous: Synchronous = "NORMAL",
        busy_timeout_ms: int = 30_000,
        pool_size: int = _MAX_IDLE_CONNECTIONS,
        idle_in_transaction_s: float = IDLE_IN_TRANSACTION_S,
    ) -> None:
        self.url = url
        self._idle_in_transaction_ms = int(idle_in_transaction_s * 1000)
        self._pool_size = pool_size
        self.dialect: Dialect
        self._sqlite_path: str | None = None
        self._pg_conninfo: str | None = None
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._shared_lock = threading.RLock()
        self._closed = False
        if url.startswith("sqlite:"):
            self.dialect = "sqlite"
            self._sqlite_path = _sqlite_path(url)
        elif url.startswith(("postgresql:", "postgresql+psycopg:", "postgres:")):
            self.dialect = "postgresql"
            self._pg_conninfo = "postgresql:" + url.split(":", 1)[1]
        else:
            raise ValidationError(
                f"unsupported database URL {redact_url(url)!r} "
                "(expected sqlite:///path or postgresql://user@host/db)"
            )

    @property
    def is_memory(self) -> bool:
        """True for a private in-memory SQLite database."""
        return self._sqlite_path == ":memory:"

    @property
    def sqlite_path(self) -> str | None:
        """The SQLite file, or None for PostgreSQL."""
        return self._sqlite_path

    def sqlalchemy_url(self) -> str:
        """The URL in SQLAlchemy's spelling (used for migrations)."""
        if self.dialect == "sqlite":
            return "sqlite://" if self.is_memory else f"sqlite:///{self._sqlite_path}"
        return "postgresql+psycopg:" + self.url.split(":", 1)[1]

    def describe(self) -> str:
        """The URL with any password removed, for messages."""
        return redact_url(self.url)

    @contextmanager
    def transaction(self, *, write: bool, single: bool = False) -> Iterator[Transaction]:
        """Run a block in one transaction; commit on success, roll back on any exception.

        ``single`` promises one statement: it then runs in autocommit, the statement its own
        snapshot and transaction — on PostgreSQL one round trip instead of three (BEGIN, the
        statement, COMMIT), on SQLite one read statement instead of three. A write stays a
        ``BEGIN IMMEDIATE`` transaction on SQLite (its lock must be taken up front), and on
        PostgreSQL is a statement that is atomic by itself (one function call, say). Anything
        run after that statement (reading why it was refused) is its own snapshot too.
        """
        if self.is_memory:
            with self._shared_lock:
                yield from self._run(self._memory_connection(), write=write, pooled=False)
            return
        connection = self._acquire()
        if single and (self.dialect == "postgresql" or not write):
            if self.dialect == "sqlite":
                yield from self._sqlite_single_read(connection)
            else:
                yield from self._autocommit(connection)
            return
        yield from self._run(connection, write=write, pooled=True)

    def read(self, query: Query, params: Mapping[str, object] = _NO_PARAMS) -> list[Row]:
        """The rows of one read statement, run as its own snapshot (autocommit).

        The hot path of pollers (an empty event poll, the change probe): on a SQLite file it is
        one pooled statement, with none of a transaction's set-up.
        """
        if self._sqlite_path is None or self._sqlite_path == ":memory:":
            with self.transaction(write=False, single=True) as tx:
                return tx.fetchall(query, params)
        # The pool's list without its lock: pop and append are atomic, and a poller's read is
        # short enough that the lock's two round trips were a fifth of its cost.
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._acquire()
        try:
            rows: list[Row] = connection.execute(query.render("sqlite"), params).fetchall()
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database error: {exc}") from exc
        finally:
            if self._closed or len(self._idle) >= self._pool_size:
                _quiet_close(connection)
            else:
                self._idle.append(connection)
        return rows

    def close(self) -> None:
        """Close every idle connection; the Database can no longer be used."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            _quiet_close(connection)
        if self._shared is not None:
            self._shared.close()
            self._shared = None

    def journal_mode(self) -> str:
        """SQLite's journal mode (``wal`` once the board is set up); empty on PostgreSQL."""
        if self.dialect != "sqlite":
            return ""
        with self.transaction(write=False) as tx:
            return str(tx.scalar(_JOURNAL_MODE)).lower()

    def enable_wal(self, *, timeout_s: float = 30.0) -> None:
        """Switch a SQLite file to WAL; waits while other connections hold it (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            connection = self._connect_sqlite(create=True)
            try:
                # A new file's page size can be chosen until its first page is written. Small
                # pages: a WAL commit writes (and checksums) every page it dirtied, whole.
                connection.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
                mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() == "wal":
                    return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise StorageError(f"cannot switch {self._sqlite_path} to WAL: {exc}") from exc
            finally:
                connection.close()
            time.sleep(0.05)  # another process is reading the new file; its read is short

    def is_unique_violation(self, exc: BaseException) -> bool:
        """True when ``exc`` is this driver's unique-constraint violation."""
        if self.dialect == "sqlite":
            return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)
        return type(exc).__name__ == "UniqueViolation"

    # -- internals -------------------------------------------------------------------------

    def _run(self, connection: Any, *, write: bool, pooled: bool) -> Iterator[Transaction]:
        cursor = connection.cursor()
        ok = False
        try:
            if self.dialect == "sqlite":
                if write and not connection.writes_set_up:
                    cursor.execute(f"PRAGMA synchronous={self._synchronous}")
                    connection.writes_set_up = True
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield Transaction(cursor, self.dialect)
            connection.commit()
            ok = True
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database error: {exc}") from exc
        except Exception as exc:
            if _connection_failure(exc, connection):
                raise StorageError(f"database error: {exc}") from exc
            raise
        finally:
            try:
                cursor.close()
                if not ok:
                    connection.rollback()
            except Exception:  # noqa: BLE001 - a failed rollback must not hide the original error
                _quiet_close(connection)
                pooled = False
            if pooled:
                self._release(connection)

    def _sqlite_single_read(self, connection: sqlite3.Connection) -> Iterator[Transaction]:
        # isolation_level=None: without a BEGIN the statement is its own read transaction,
        # ended when its rows have been fetched (every Transaction read fetches them).
        cursor = connection.cursor()
        try:
            yield Transaction(cursor, "sqlite")
        except sqlite3.OperationalError as exc:
            raise StorageError(f"database error: {exc}") from exc
        finally:
            cursor.close()
            self._release(connection)

    def user_version(self) -> int:
        """SQLite's ``user_version`` header field (read without loading the schema); 0 on
        PostgreSQL."""
        if self.dialect != "sqlite":
            return 0
        with self.transaction(write=False, single=True) as tx:
            return int(tx.scalar(_USER_VERSION))

    def _autocommit(self, connection: Any) -> Iterator[Transaction]:
        connection.autocommit = True  # the pooled connection is idle: no round trip
        pooled = True
        try:
            with connection.cursor() as cursor:
                yield Transaction(cursor, self.dialect)
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                pooled = False  # a broken or confused connection is not reused
                _quiet_close(connection)
                if _connection_failure(exc, connection):
                    raise StorageError(f"database error: {exc}") from exc
            raise
        finally:
            if pooled:
                connection.autocommit = False
                self._release(connection)

    def _acquire(self) -> Any:
        with self._lock:
            if self._closed:
                raise StorageError("the database has been closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, connection: Any) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._pool_size:
                self._idle.append(connection)
                return
        _quiet_close(connection)

    def _memory_connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageError("the database has been closed")
        if self._shared is None:
            self._shared = self._connect_sqlite()
        return self._shared

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            return self._connect_sqlite()
        return self._connect_postgresql()

    def _connect_sqlite(self, *, create: bool = False) -> sqlite3.Connection:
        path = self._sqlite_path
        assert path is not None
        # Only the connection that creates a board may create its file: any other opens an
        # existing one (mode=rw), so a mistyped path is an error, never a new empty board.
        uri = not (create or path == ":memory:")
        try:
            connection = sqlite3.connect(
                f"file:{quote(path)}?mode=rw" if uri else path,
                uri=uri,
                factory=_SqliteConnection,
                timeout=self._busy_timeout_ms / 1000,  # sets busy_timeout
                isolation_level=None,  # we issue BEGIN IMMEDIATE ourselves
                check_same_thread=False,  # pooled connections move between threads, one at a time
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {path}: {exc}") from exc
        try:
            # WAL is set once, at creation, by ensure_schema under the init lock: re-issuing it
            # on every connect under live writers is what corrupted the reference's databases,
            # and switching needs the database to itself. `synchronous` is set before the
            # connection's first write (see _run): setting it loads the whole schema, which a
            # command that only opens, or reads one header field, never needs.
            connection.execute("PRAGMA foreign_keys=ON")
            # Fewer, larger checkpoints: each one syncs the WAL and the database file (two
            # fsyncs even at synchronous=NORMAL) and copies every page the WAL holds, so hot
            # pages rewritten by many claims are copied once. The WAL then peaks near 8 MiB.
            connection.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
        except sqlite3.DatabaseError as exc:
            connection.close()
            raise StorageError(f"cannot use {path}: {exc}") from exc
        return connection

    def listen(self, channel: str) -> psycopg.Connection[Any]:
        """A new PostgreSQL connection outside the pool, LISTENing on ``channel``; the caller
        owns it (and closes it)."""
        if self.dialect != "postgresql" or not channel.isidentifier():
            raise StorageError(f"cannot listen on {channel!r} with {self.dialect}")
        connection = self._connect_postgresql()
        try:
            connection.autocommit = True
            connection.execute(f"LISTEN {channel}")
        except Exception as exc:
            _quiet_close(connection)
            raise StorageError(f"cannot listen on {self.describe()}: {exc}") from exc
        return connection

    def _connect_postgresql(self) -> psycopg.Connection[Any]:
        try:
            import psycopg
        except ImportError:
            raise StorageError(
                "PostgreSQL needs psycopg: pip install 'kanban-gateway[postgres]'"
            ) from None
        assert self._pg_conninfo is not None
        try:
            connection = psycopg.connect(self._pg_conninfo, autocommit=False, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {self.describe()}: {exc}") from exc
        try:
            # A statement, not a startup option: poolers such as PgBouncer refuse those.
            connection.execute(
                f"SET idle_in_transaction_session_timeout = {self._idle_in_transaction_ms}"
            )
            connection.commit()
        except psycopg.Error as exc:
            _quiet_close(connection)
            raise StorageError(f"cannot set up a connection to {self.describe()}: {exc}") from exc
        return connection


def _connection_failure(exc: BaseException, connection: Any) -> bool:
    """A psycopg error saying the connection failed or was ended by the server.

    psycopg is imported lazily, so its classes are recognised by name — along the whole class
    hierarchy (a session ended by an admin or a restart is ``AdminShutdown``, a subclass of
    ``OperationalError``) — or by the connection being broken afterwards (a transaction left
    idle too long ends with ``IdleInTransactionSessionTimeout``, an ``InternalError``).
    """
    kind = type(exc)
    if not kind.__module__.startswith("psycopg"):
        return False
    named = any(base.__name__ in ("OperationalError", "InterfaceError") for base in kind.__mro__)
    return named or bool(getattr(connection, "broken", False))


def _sqlite_path(url: str) -> str:
    rest = url[len("sqlite:") :]
    if rest in ("", "//", "///:memory:", "//:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ValidationError(f"malformed SQLite URL {url!r} (expected sqlite:///path/to/file.db)")
    path = rest[3:]
    if not path:
        return ":memory:"
    return str(Path(path).expanduser())


def redact_url(url: str) -> str:
    """Remove passwords from a URL: ``user:password@`` and a ``password=`` query parameter."""
    url = _PASSWORD_PARAM.sub(r"\1***", url)
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    credentials, _, host = tail.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in credentials else url


def _quiet_close(connection: Any) -> None:
    with contextlib.suppress(Exception):  # closing is best effort
        connection.close()
