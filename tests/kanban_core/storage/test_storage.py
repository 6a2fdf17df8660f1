"""kanban_core.storage and settings: SQL rendering, schema and migrations, connections."""

from __future__ import annotations

import collections
import itertools
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

import kanban_core
from kanban_core import (
    Actor,
    InvalidTransition,
    Kanban,
    KernelSettings,
    StorageError,
    TaskId,
    ValidationError,
)
from kanban_core.storage import Database, Query
from kanban_core.storage.database import SQLITE_CHECKPOINT_PAGES, SQLITE_PAGE_SIZE, redact_url
from kanban_core.storage.migrate import ensure_schema, schema_version
from kanban_core.storage.migrations import HEAD, HEAD_NUMBER, REVISIONS
from kanban_core.storage.schema import metadata
from tests.conftest import create_pg_database, drop_pg_database

MIGRATIONS = Path(kanban_core.__file__).parent / "storage" / "migrations"
REPO = Path(kanban_core.__file__).parent.parent
OPERATOR = Actor(name="alice")


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def file_url(db_url, tmp_path):
    """A database behind files or sockets: a SQLite file, or the PostgreSQL test database."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'board' / 'kanban.db'}"
    return db_url


def settings_for(url: str, tmp_path: Path, **kwargs: Any) -> KernelSettings:
    return KernelSettings(home=tmp_path / "home", db_url=url, **kwargs)


# -- Query rendering --------------------------------------------------------------------------


def test_bind_parameters_are_rewritten_for_psycopg_only():
    source = "SELECT a FROM t WHERE id = :id AND x_2 = :x_2 AND y IN (:a, :B9) AND z = :id"
    query = Query("q", source)
    assert query.render("sqlite") == source
    assert query.render("postgresql") == (
        "SELECT a FROM t WHERE id = %(id)s AND x_2 = %(x_2)s AND y IN (%(a)s, %(B9)s) "
        "AND z = %(id)s"
    )


@pytest.mark.parametrize(
    ("source", "rendered"),
    [
        ("SELECT CAST(:id AS BIGINT)", "SELECT CAST(%(id)s AS BIGINT)"),
        ("SELECT x::text, :y::int", "SELECT x::text, %(y)s::int"),
        ("SELECT '12:30', a:b", "SELECT '12:30', a:b"),
        ("SELECT :1", "SELECT :1"),
        ("VALUES (:a,:b)", "VALUES (%(a)s,%(b)s)"),
    ],
)
def test_bind_rewrite_leaves_casts_and_colons_alone(source, rendered):
    assert Query("q", source).render("postgresql") == rendered


def test_placeholders_per_dialect():
    query = Query("q", "SELECT {now} FROM t {skip_locked} -- {for_update} {other}")
    assert query.render("sqlite") == (
        "SELECT CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM t  --  {other}"
    )
    assert query.render("postgresql") == (
        "SELECT CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT) FROM t "
        "FOR UPDATE SKIP LOCKED -- FOR UPDATE {other}"
    )


def test_index_hints_and_next_ids_per_dialect():
    query = Query("q", "SELECT {next_id:task_runs} FROM t {index:ix_t}")
    assert query.render("sqlite") == (
        "SELECT (SELECT COALESCE(MAX(id), 0) + 1 FROM task_runs) FROM t INDEXED BY ix_t"
    )
    assert query.render("postgresql") == (
        "SELECT nextval(pg_get_serial_sequence('task_runs', 'id')) FROM t "
    )


def test_rendering_is_cached_per_dialect():
    query = Query("cached", "SELECT :a")
    assert query.render("postgresql") is query.render("postgresql")
    assert query.render("sqlite") is query.render("sqlite")
    assert query.render("sqlite") != query.render("postgresql")
    assert repr(query) == "Query('cached')"


def kernel_queries() -> list[Query]:
    import kanban_core.board.events
    import kanban_core.board.links
    import kanban_core.board.maintenance
    import kanban_core.board.notify
    import kanban_core.board.reads
    import kanban_core.board.runs
    import kanban_core.board.tasks
    import kanban_core.storage.migrate

    modules = (
        kanban_core.board.events,
        kanban_core.board.links,
        kanban_core.board.maintenance,
        kanban_core.board.notify,
        kanban_core.board.reads,
        kanban_core.board.runs,
        kanban_core.storage.migrate,
        kanban_core.board.tasks,
    )
    found = [
        value for module in modules for value in vars(module).values() if isinstance(value, Query)
    ]
    assert len(found) > 50
    return found


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_every_kernel_query_renders_completely(dialect):
    for query in kernel_queries():
        text = query.render(dialect)
        assert not re.search(r"\{\w+\}", text), query
        if dialect == "postgresql":
            assert not re.search(r"(?<![:\w]):[A-Za-z_]", text), query
            # psycopg formats %(name)s; any other % would have to be doubled.
            assert not re.search(r"%(?!\(\w+\)s)", text), query


def test_the_database_clock_is_epoch_milliseconds(board):
    with board.db.transaction(write=False) as tx:
        now = tx.scalar(Query("now", "SELECT {now}"))
    assert isinstance(now, int)
    assert abs(now - time.time() * 1000) < 60_000


def test_parameters_bind_on_both_databases(board):
    with board.db.transaction(write=False) as tx:
        row = tx.fetchone(Query("binds", "SELECT CAST(:a AS BIGINT) + 1, :b"), {"a": 41, "b": "x"})
    assert row is not None
    assert tuple(row) == (42, "x")


# -- schema and migrations --------------------------------------------------------------------


def expression_indexes() -> set[str]:
    """Indexes with an expression (``priority DESC``): SQLite's reflection cannot describe them."""
    return {
        str(index.name)
        for table in metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(expr, sa.Column) for expr in index.expressions)
    }


def _unquote(value: str | None) -> str | None:
    if value is None:
        return None
    value = re.sub(r"^\((.*)\)$", r"\1", value)
    return re.sub(r"^'(.*)'$", r"\1", value)


def compare_server_default(
    context: MigrationContext,
    inspected: Any,
    metadata_column: Any,
    inspected_default: str | None,
    metadata_default: Any,
    rendered: str | None,
) -> bool | None:
    if context.dialect.name != "sqlite":
        return None  # alembic's own comparison
    # Alembic's SQLite comparison cannot strip the quotes of an empty string ('').
    return _unquote(inspected_default) != _unquote(rendered)


def schema_differences(url: str) -> list[Any]:
    engine = sa.create_engine(Database(url).sqlalchemy_url(), poolclass=NullPool)
    skipped = expression_indexes() if url.startswith("sqlite") else set()

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        return not (type_ == "index" and name in skipped)

    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "compare_server_default": compare_server_default,
                    "include_object": include,
                },
            )
            differences: list[Any] = compare_metadata(context, metadata)
            return differences
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_metadata(fresh_url):
    db = Database(fresh_url)
    try:
        assert ensure_schema(db) is True
    finally:
        db.close()
    assert schema_differences(fresh_url) == []


def top_level_parts(body: str) -> list[str]:
    """Split a column/constraint list at the commas that are not inside parentheses."""
    parts, depth, current = [], 0, ""
    for char in body:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [*parts, current.strip()]


def normalise_ddl(sql: str) -> str:
    """DDL without layout: definitions sorted (ALTER TABLE ADD COLUMN appends them), and
    identifiers unquoted (a table rebuilt by a migration is renamed, and SQLite quotes the new
    name)."""
    sql = re.sub(r'"(\w+)"', r"\1", sql)
    sql = re.sub(r"\s*([(),])\s*", r"\1", " ".join(sql.split()))
    if sql.startswith("CREATE TABLE"):
        head, body = sql.split("(", 1)
        return f"{head}({','.join(sorted(top_level_parts(body.rsplit(')', 1)[0])))})"
    return sql


def sqlite_ddl(path: Path) -> dict[tuple[str, str], str]:
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_%' AND name <> 'alembic_version'"
        ).fetchall()
    finally:
        connection.close()
    return {(kind, name): normalise_ddl(sql or "") for kind, name, sql in rows}


def test_normalise_ddl():
    assert normalise_ddl("CREATE TABLE t ( b INT , a DECIMAL(10, 2) NOT NULL )") == (
        "CREATE TABLE t(a DECIMAL(10,2)NOT NULL,b INT)"
    )
    assert normalise_ddl('CREATE TABLE "t" (a INT)') == "CREATE TABLE t(a INT)"
    assert normalise_ddl("CREATE INDEX i ON t (a DESC, b)  WHERE x = 1") == (
        "CREATE INDEX i ON t(a DESC,b)WHERE x = 1"
    )


def test_sqlite_ddl_of_the_migration_equals_the_metadatas(tmp_path):
    # Exact DDL, so partial-index WHERE clauses and DESC columns are compared too.
    migrated = tmp_path / "migrated.db"
    db = Database(f"sqlite:///{migrated}")
    ensure_schema(db)
    db.close()
    created = tmp_path / "created.db"
    engine = sa.create_engine(f"sqlite:///{created}", poolclass=NullPool)
    metadata.create_all(engine)
    engine.dispose()
    expected = sqlite_ddl(created)
    # Including the indexes compare_metadata cannot check on SQLite.
    assert {("index", name) for name in expression_indexes()} <= set(expected)
    assert sqlite_ddl(migrated) == expected


def pg_catalog(connection: sa.Connection, schema: str) -> tuple[list[Any], list[Any]]:
    indexes = connection.execute(
        sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = :s"), {"s": schema}
    ).all()
    columns = connection.execute(
        sa.text(
            "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, "
            "character_maximum_length, column_default FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name <> 'alembic_version'"
        ),
        {"s": schema},
    ).all()

    def strip(value: object) -> str | None:
        return None if value is None else str(value).replace(f"{schema}.", "")

    return (
        sorted((name, strip(sql)) for name, sql in indexes if name != "alembic_version_pkc"),
        sorted(tuple(strip(v) for v in row) for row in columns),
    )


def test_postgresql_catalog_of_the_migration_equals_the_metadatas(pg_database_url):
    # Exact index definitions (partial WHERE clauses, DESC) and column types, defaults, lengths.
    url = create_pg_database()
    try:
        db = Database(url)
        try:
            ensure_schema(db)
        finally:
            db.close()
        engine = sa.create_engine(Database(url).sqlalchemy_url(), poolclass=NullPool)
        try:
            with engine.begin() as connection:
                connection.execute(sa.text("CREATE SCHEMA mirror"))
                mirror = connection.execution_options(schema_translate_map={None: "mirror"})
                metadata.create_all(mirror)
                migrated, created = (
                    pg_catalog(connection, "public"),
                    pg_catalog(connection, "mirror"),
                )
        finally:
            engine.dispose()
    finally:
        drop_pg_database(url)
    assert any("WHERE" in sql for _, sql in created[0])
    assert migrated == created


def test_revisions_match_alembics_scripts():
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [HEAD]
    assert script.get_current_head() == HEAD == REVISIONS[-1]
    oldest_first = [rev.revision for rev in reversed(list(script.walk_revisions()))]
    assert oldest_first == list(REVISIONS)


def test_ensure_schema_is_idempotent(fresh_url):
    db = Database(fresh_url)
    try:
        if db.sqlite_path is not None:
            Path(db.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        assert schema_version(db) is None
        assert ensure_schema(db) is True
        assert schema_version(db) == HEAD
        with db.transaction(write=True) as tx:
            tx.execute(
                Query(
                    "seed",
                    "INSERT INTO tasks (title, status, created_by, created_ms, updated_ms) "
                    "VALUES ('kept', 'ready', 'a', 1, 1)",
                )
            )
        assert ensure_schema(db) is False
        assert ensure_schema(db) is False
        with db.transaction(write=False) as tx:
            assert tx.scalar(Query("titles", "SELECT title FROM tasks")) == "kept"
            assert tx.scalar(Query("versions", "SELECT count(*) FROM alembic_version")) == 1
    finally:
        db.close()


def test_kanban_open_on_an_existing_board_does_not_migrate(file_url, tmp_path):
    with Kanban.open(settings_for(file_url, tmp_path)) as board:
        task = board.create(OPERATOR, title="persisted").task
    with Kanban.open(settings_for(file_url, tmp_path)) as board:
        assert ensure_schema(board.db) is False
        assert board.get(task.id).title == "persisted"


def open_and_create(
    url: str, home: Path, errors: list[BaseException], start: threading.Barrier
) -> None:
    try:
        start.wait(timeout=60)
        with Kanban.open(KernelSettings(home=home, db_url=url)) as board:
            board.create(OPERATOR, title="concurrent start")
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def assert_one_migrated_board(url: str, tasks: int) -> None:
    db = Database(url)
    try:
        assert schema_version(db) == HEAD
        with db.transaction(write=False) as tx:
            assert tx.scalar(Query("versions", "SELECT count(*) FROM alembic_version")) == 1
            assert tx.scalar(Query("tasks", "SELECT count(*) FROM tasks")) == tasks
    finally:
        db.close()


def test_concurrent_first_starts_in_threads(fresh_url, tmp_path):
    start = threading.Barrier(4)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=open_and_create,
            args=(fresh_url, tmp_path / "home", errors, start),
            daemon=True,  # a deadlocked starter must not keep the test run alive
        )
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 45
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert [thread.is_alive() for thread in threads] == [False] * 4, "a first start hung"
    assert errors == []
    assert_one_migrated_board(fresh_url, tasks=4)


CHILD = """
import sys
from pathlib import Path
from kanban_core import Actor, Kanban, KernelSettings

print("ready", flush=True)
sys.stdin.readline()
with Kanban.open(KernelSettings(home=Path(sys.argv[1]), db_url=sys.argv[2])) as board:
    board.create(Actor(name="process"), title="concurrent start")
print("done", flush=True)
"""


def test_concurrent_first_starts_in_processes(fresh_url, tmp_path):
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path / "home"), fresh_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(4)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n"
        for child in children:  # release them together
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outcomes = [child.communicate(timeout=90) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [
        (child.returncode, out, err) for child, (out, err) in zip(children, outcomes, strict=True)
    ] == [(0, "done\n", "")] * 4
    assert_one_migrated_board(fresh_url, tasks=4)


def test_a_newer_revision_is_refused(fresh_url, tmp_path):
    db = Database(fresh_url)
    try:
        ensure_schema(db)
        with db.transaction(write=True) as tx:
            tx.execute(Query("future", "UPDATE alembic_version SET version_num = '9999_future'"))
            if db.dialect == "sqlite":  # a newer kanban stamps its own (higher) revision number
                tx.execute(Query("future_stamp", f"PRAGMA user_version = {HEAD_NUMBER + 1}"))
    finally:
        db.close()
    fds = open_fds()
    with pytest.raises(StorageError, match="schema revision 9999_future, newer than"):
        Kanban.open(settings_for(fresh_url, tmp_path))
    assert open_fds() == fds
    db = Database(fresh_url)
    try:
        with pytest.raises(StorageError, match="upgrade kanban-gateway"):
            ensure_schema(db)
        assert schema_version(db) == "9999_future"
    finally:
        db.close()


# -- SQLite specifics -------------------------------------------------------------------------


def pragma(board: Kanban, name: str) -> Any:
    with board.db.transaction(write=False) as tx:
        return tx.scalar(Query(f"pragma_{name}", f"PRAGMA {name}"))


def test_a_file_database_is_in_wal_mode(tmp_path):
    path = tmp_path / "board" / "kanban.db"
    with Kanban.open(settings_for(f"sqlite:///{path}", tmp_path)) as board:
        board.create(OPERATOR, title="x")
        assert pragma(board, "journal_mode") == "wal"
        assert pragma(board, "foreign_keys") == 1
        assert pragma(board, "busy_timeout") == 30_000
        assert pragma(board, "synchronous") == 1  # NORMAL
        assert pragma(board, "wal_autocheckpoint") == SQLITE_CHECKPOINT_PAGES
        assert pragma(board, "page_size") == SQLITE_PAGE_SIZE
    outside = sqlite3.connect(path)
    try:
        assert outside.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        outside.close()


def test_synchronous_full_is_applied(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with Kanban.open(settings_for(url, tmp_path, synchronous="FULL")) as board:
        assert pragma(board, "synchronous") == 2  # FULL


def driver_error(board: Kanban, kind: str) -> type[Exception]:
    """The exception a statement error of ``kind`` surfaces as, per driver."""
    if board.db.dialect == "sqlite":
        return sqlite3.IntegrityError if kind == "integrity" else StorageError
    import psycopg

    return psycopg.IntegrityError if kind == "integrity" else psycopg.ProgrammingError


def in_transaction(
    db: Database,
    sql: str,
    params: Mapping[str, object] | None = None,
    *,
    write: bool = True,
    then_raise: BaseException | None = None,
) -> int:
    """Run one statement in a transaction, optionally failing after it; returns the row count."""
    with db.transaction(write=write) as tx:
        changed = tx.execute(Query("statement", sql), params or {})
        if then_raise is not None:
            raise then_raise
    return changed


def test_foreign_keys_are_enforced(board):
    orphan = (
        "INSERT INTO task_comments (task_id, author, body, created_ms) VALUES (404, 'a', 'b', 1)"
    )
    with pytest.raises(driver_error(board, "integrity"), match=r"(?i)foreign key"):
        in_transaction(board.db, orphan)


def test_a_failed_transaction_is_rolled_back(board):
    ghost = (
        "INSERT INTO tasks (title, status, created_by, created_ms, updated_ms) "
        "VALUES ('ghost', 'ready', 'a', 1, 1)"
    )
    with pytest.raises(RuntimeError, match="boom"):
        in_transaction(board.db, ghost, then_raise=RuntimeError("boom"))
    assert board.list() == []
    assert board.create(OPERATOR, title="after").task.title == "after"


def test_sqlite_errors_become_storage_errors(tmp_path):
    settings = settings_for(f"sqlite:///{tmp_path / 'k.db'}", tmp_path)
    with (
        Kanban.open(settings) as board,
        pytest.raises(StorageError, match="no such table: nope"),
    ):
        in_transaction(board.db, "SELECT * FROM nope", write=False)


# -- connections are closed -------------------------------------------------------------------


def open_fds() -> collections.Counter[str]:
    """What this process has open, by target (sockets, the database, its WAL and SHM files)."""
    targets: collections.Counter[str] = collections.Counter()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            targets[str(fd.readlink())] += 1
        except OSError:
            continue  # the listing's own descriptor, already closed
    return targets


def busy_board(board: Kanban) -> None:
    """Many operations, failures inside transactions, and more parallel connections than pooled."""
    made = [board.create(OPERATOR, title=f"task {n}").task for n in range(20)]
    for parent, child in itertools.pairwise(made[:10]):
        board.link(OPERATOR, parent.id, child.id)
    claim = board.claim(OPERATOR, made[0].id)
    assert claim is not None
    board.complete(Actor(name="w", run=claim.proof), made[0].id, summary="ok")
    board.list()
    board.detail(made[1].id)
    board.stats()
    board.subscribe(OPERATOR, made[2].id, platform="telegram", chat_id="1")
    with pytest.raises(RuntimeError):
        in_transaction(
            board.db,
            "UPDATE tasks SET priority = 5 WHERE id = :id",
            {"id": made[3].id},
            then_raise=RuntimeError("inside a transaction"),
        )
    with pytest.raises(InvalidTransition):
        board.complete(OPERATOR, made[0].id)  # already done: refused inside the kernel
    with pytest.raises(driver_error(board, "statement"), match="no_such_table"):
        in_transaction(board.db, "SELECT * FROM no_such_table", write=False)
    assert board.get(made[3].id).priority == 0
    start = threading.Barrier(8)

    def hold_a_connection() -> None:
        with board.db.transaction(write=False) as tx:
            tx.scalar(Query("one", "SELECT 1"))
            start.wait(timeout=30)

    threads = [threading.Thread(target=hold_a_connection) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    board.gc(OPERATOR, event_retention_days=0, log_retention_days=0)


def test_connections_are_closed_after_close(file_url, tmp_path):
    settings = settings_for(file_url, tmp_path)
    Kanban.open(settings).close()  # create the schema (and import everything) first
    before = open_fds()
    board = Kanban.open(settings)
    busy_board(board)
    assert open_fds() != before  # the pool holds connections while open
    board.close()
    assert open_fds() == before


def test_a_closed_board_refuses_work(file_url, tmp_path):
    board = Kanban.open(settings_for(file_url, tmp_path))
    board.close()
    with pytest.raises(StorageError, match="closed"):
        board.list()
    board.close()  # closing twice is harmless


def test_a_closed_memory_board_refuses_work(board):
    board.close()
    with pytest.raises(StorageError, match="closed"):
        board.get(TaskId(1))


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://kanban:s3cret@db.example:5432/board",
            "postgresql://kanban:***@db.example:5432/board",
        ),
        ("postgresql://kanban:p@ss:w@rd@db/board", "postgresql://kanban:***@db/board"),
        ("postgresql+psycopg://u:x@h/d", "postgresql+psycopg://u:***@h/d"),
        ("postgresql://:only-password@h/d", "postgresql://:***@h/d"),
        ("postgresql://kanban@db/board", "postgresql://kanban@db/board"),
        ("postgresql://db/board", "postgresql://db/board"),
        ("sqlite:////var/lib/kanban.db", "sqlite:////var/lib/kanban.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_url_hides_a_password_given_as_a_query_parameter():
    redacted = redact_url("postgresql://kanban@db/board?sslmode=require&password=s3cret")
    assert "s3cret" not in redacted


def test_describe_and_errors_never_show_the_password():
    db = Database("postgresql://kanban:s3cret@127.0.0.1:1/board")
    assert db.describe() == "postgresql://kanban:***@127.0.0.1:1/board"
    with pytest.raises(ValidationError) as info:
        Database("mysql://kanban:s3cret@127.0.0.1/board")
    assert "s3cret" not in str(info.value)
    assert "mysql://kanban:***@127.0.0.1/board" in str(info.value)


@pytest.mark.parametrize(
    ("url", "dialect", "path", "sqlalchemy_url"),
    [
        ("sqlite://", "sqlite", ":memory:", "sqlite://"),
        ("sqlite:///:memory:", "sqlite", ":memory:", "sqlite://"),
        ("sqlite:////srv/k.db", "sqlite", "/srv/k.db", "sqlite:////srv/k.db"),
        ("postgresql://u@h/d", "postgresql", None, "postgresql+psycopg://u@h/d"),
        ("postgres://u@h/d", "postgresql", None, "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql", None, "postgresql+psycopg://u@h/d"),
    ],
)
def test_database_urls(url, dialect, path, sqlalchemy_url):
    db = Database(url)
    assert (db.dialect, db.sqlite_path, db.sqlalchemy_url()) == (dialect, path, sqlalchemy_url)
    assert db.is_memory is (path == ":memory:")


@pytest.mark.parametrize(
    "url", ["sqlite:relative.db", "sqlite:/one-slash.db", "mysql://h/d", "k.db"]
)
def test_malformed_database_urls(url):
    with pytest.raises(ValidationError):
        Database(url)


# -- KernelSettings ---------------------------------------------------------------------------


def test_settings_defaults(tmp_path):
    settings = KernelSettings.from_environ({"HOME": str(tmp_path)})
    assert settings.home == tmp_path / ".kanban"
    assert settings.db_url == f"sqlite:///{tmp_path / '.kanban' / 'kanban.db'}"
    assert settings.synchronous == "NORMAL"
    assert settings.claim_ttl_s == 900
    assert settings.logs_dir == tmp_path / ".kanban" / "logs"
    assert settings.workspaces_dir == tmp_path / ".kanban" / "workspaces"


def test_settings_without_home_use_the_users_home(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    settings = KernelSettings.from_environ({})
    assert settings.home == Path("/home/someone/.kanban")


def test_kanban_home(tmp_path):
    home = tmp_path / "boards" / "team"
    settings = KernelSettings.from_environ({"HOME": "/ignored", "KANBAN_HOME": str(home)})
    assert settings.home == home
    assert settings.db_url == f"sqlite:///{home / 'kanban.db'}"


def test_kanban_home_argument_wins(tmp_path):
    settings = KernelSettings.from_environ({"KANBAN_HOME": "/from/env"}, home=str(tmp_path))
    assert settings.home == tmp_path


def test_relative_kanban_home_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = KernelSettings.from_environ({"KANBAN_HOME": "rel"})
    assert settings.home == tmp_path / "rel"
    assert settings.db_url == f"sqlite:///{tmp_path / 'rel' / 'kanban.db'}"


def test_kanban_home_tilde_uses_the_given_environment(tmp_path):
    settings = KernelSettings.from_environ({"HOME": str(tmp_path), "KANBAN_HOME": "~/boards"})
    assert settings.home == tmp_path / "boards"


def test_a_bare_db_path_tilde_uses_the_given_environment(tmp_path):
    settings = KernelSettings.from_environ({"HOME": str(tmp_path), "KANBAN_DB_URL": "~/k.db"})
    assert settings.db_url == f"sqlite:///{tmp_path / 'k.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://kanban@127.0.0.1/board",
        "sqlite:////srv/kanban.db",
        "sqlite://",
    ],
)
def test_kanban_db_url_is_used_as_is(tmp_path, url):
    settings = KernelSettings.from_environ({"HOME": str(tmp_path), "KANBAN_DB_URL": url})
    assert settings.db_url == url
    assert settings.home == tmp_path / ".kanban"


def test_a_bare_db_path_is_a_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = KernelSettings.from_environ({"KANBAN_DB_URL": "/srv/k.db"})
    assert absolute.db_url == "sqlite:////srv/k.db"
    relative = KernelSettings.from_environ({"KANBAN_DB_URL": "data/k.db"})
    assert relative.db_url == f"sqlite:///{tmp_path / 'data' / 'k.db'}"


def test_db_url_argument_wins(tmp_path):
    settings = KernelSettings.from_environ(
        {"HOME": str(tmp_path), "KANBAN_DB_URL": "postgresql://env/db"},
        db_url="postgresql://arg/db",
    )
    assert settings.db_url == "postgresql://arg/db"


@pytest.mark.parametrize(
    ("raw", "expected"), [("full", "FULL"), ("NORMAL", "NORMAL"), ("", "NORMAL")]
)
def test_sqlite_synchronous(tmp_path, raw, expected):
    environ = {"HOME": str(tmp_path), "KANBAN_SQLITE_SYNCHRONOUS": raw}
    assert KernelSettings.from_environ(environ).synchronous == expected


@pytest.mark.parametrize("raw", ["off", "EXTRA", "1"])
def test_sqlite_synchronous_refuses_unsafe_values(tmp_path, raw):
    environ = {"HOME": str(tmp_path), "KANBAN_SQLITE_SYNCHRONOUS": raw}
    with pytest.raises(ValidationError, match="NORMAL or FULL"):
        KernelSettings.from_environ(environ)


def test_settings_open_a_board(tmp_path):
    settings = KernelSettings.from_environ({"HOME": str(tmp_path)})
    with Kanban.open(settings) as board:
        board.create(OPERATOR, title="in the default place")
    assert (tmp_path / ".kanban" / "kanban.db").is_file()


def test_a_single_statement_read_leaves_the_pooled_connection_transactional(board):
    # On PostgreSQL the read runs in autocommit; the connection must come back able to roll back.
    board.create(OPERATOR, title="before")
    with board.db.transaction(write=False, single=True) as tx:
        assert tx.scalar(Query("count_tasks", "SELECT count(*) FROM tasks")) == 1
    doomed = Query(
        "insert_doomed",
        "INSERT INTO tasks (title, status, created_by, created_ms, updated_ms) "
        "VALUES ('doomed', 'ready', 'x', 0, 0)",
    )

    def write_then_fail() -> None:
        with board.db.transaction(write=True) as tx:
            tx.execute(doomed)
            raise RuntimeError("roll it back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert [t.title for t in board.list()] == ["before"]
    assert board.events_after(board.max_event_id()) == []
