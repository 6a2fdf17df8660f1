"""kanban_core.storage.migrate across revisions: upgrading a board with data keeps every row."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban, KernelSettings, StorageError, TaskId
from kanban_core.storage import Database, Query
from kanban_core.storage.database import SQLITE_PAGE_SIZE
from kanban_core.storage.migrate import ensure_schema, migrate_to, schema_version
from kanban_core.storage.migrations import HEAD

OPERATOR = Actor(name="alice")
TABLES = ("tasks", "task_runs", "task_events", "notify_deliveries")

# A small board written as revision 0005 stored it: ids with gaps (rows deleted by gc), runs
# with and without an assignee, an event a pending delivery still points at.
SEED_0005 = [
    "INSERT INTO tasks (id, title, assignee, status, created_by, created_ms, updated_ms, attempts)"
    " VALUES (3, 'done', 'coder', 'done', 'a', 1, 2, 1), (7, 'ready', NULL, 'ready', 'a', 3, 3, 0),"
    " (9, 'running', 'coder', 'running', 'a', 4, 5, 2)",
    "INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status, outcome,"
    " started_ms, ended_ms, lease_ttl_ms) VALUES"
    " (11, 3, 1, 'coder', 'w', 'h1', 'done', 'completed', 1, 2, 60000),"
    " (15, 9, 1, NULL, 'w', 'h2', 'done', 'crashed', 4, 4, 60000),"
    " (16, 9, 2, 'coder', 'w', 'h3', 'running', NULL, 5, NULL, 60000)",
    "INSERT INTO task_events (id, task_id, run_id, kind, payload, created_ms) VALUES"
    " (40, 3, 11, 'completed', '{}', 2), (52, 7, NULL, 'created', NULL, 3),"
    " (53, 9, 16, 'claimed', '{}', 5)",
    "INSERT INTO notify_deliveries (id, event_id, task_id, platform, chat_id, status,"
    " next_try_ms, created_ms) VALUES (5, 40, 3, 'telegram', '1', 'pending', 0, 2)",
]

SYNC_SEQUENCE = "SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"


@pytest.fixture
def board_0005(fresh_url: str) -> Iterator[Database]:
    """A database at revision 0005 holding SEED_0005."""
    db = Database(fresh_url)
    try:
        migrate_to(db, "0005")
        with db.transaction(write=True) as tx:
            for number, statement in enumerate(SEED_0005):
                tx.execute(Query(f"seed_{number}", statement))
            if db.dialect == "postgresql":  # explicit ids leave the sequences behind
                for table in TABLES:
                    tx.scalar(Query(f"sync_{table}", SYNC_SEQUENCE.format(table=table)))
        yield db
    finally:
        db.close()


def dump(db: Database) -> dict[str, list[tuple[object, ...]]]:
    with db.transaction(write=False) as tx:
        return {
            table: tx.fetchall(Query(f"dump_{table}", f"SELECT * FROM {table} ORDER BY id"))
            for table in TABLES
        }


def index_names(db: Database) -> set[str]:
    probe = (
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
        if db.dialect == "sqlite"
        else "SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'"
    )
    with db.transaction(write=False) as tx:
        return {row[0] for row in tx.fetchall(Query("task_indexes", probe))}


def test_upgrading_to_head_keeps_every_row_and_id(board_0005):
    before = dump(board_0005)
    assert ensure_schema(board_0005) is True
    assert schema_version(board_0005) == HEAD
    after = dump(board_0005)
    # Later revisions add columns at the end of a row; what was there stays as it was.
    assert {
        table: [row[: len(was)] for row, was in zip(rows, before[table], strict=True)]
        for table, rows in after.items()
    } == before
    names = index_names(board_0005)
    assert {"ix_tasks_status", "ix_tasks_running", "ix_tasks_assignee"} <= names
    assert "ix_tasks_assignee_status" not in names


def test_after_the_upgrade_new_ids_follow_the_old_ones(board_0005, tmp_path):
    ensure_schema(board_0005)
    settings = KernelSettings(home=tmp_path / "home", db_url=board_0005.url)
    with Kanban.open(settings) as board:
        claim = board.claim(OPERATOR, TaskId(7))
        assert claim is not None
        assert claim.run_id == 17
        events = board.events_after(53)
        assert [(e.id, e.task_id, e.kind) for e in events] == [(54, 7, "claimed")]
        board.complete(Actor(name="worker", run=claim.proof), TaskId(7))
        assert board.get(TaskId(7)).status.value == "done"
        assert board.detail(TaskId(3)).events[-1].id == 40  # old rows still read as before


def test_sqlite_upgrade_drops_autoincrement_and_downgrade_restores_it(board_0005):
    if board_0005.dialect != "sqlite":
        pytest.skip("AUTOINCREMENT is SQLite's")
    before = dump(board_0005)
    ensure_schema(board_0005)
    assert not autoincrement_tables(board_0005) & {"task_runs", "task_events"}
    migrate_to(board_0005, "0005")
    assert schema_version(board_0005) == "0005"
    assert {"task_runs", "task_events"} <= autoincrement_tables(board_0005)
    assert dump(board_0005) == before
    assert "ix_tasks_assignee_status" in index_names(board_0005)


def autoincrement_tables(db: Database) -> set[str]:
    assert db.sqlite_path is not None
    connection = sqlite3.connect(db.sqlite_path)
    try:
        rows = connection.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
        return {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}
    finally:
        connection.close()


def test_a_sqlite_upgrade_that_would_leave_a_broken_reference_changes_nothing(board_0005):
    if board_0005.dialect != "sqlite":
        pytest.skip("the rebuild with foreign keys off is SQLite's")
    assert board_0005.sqlite_path is not None
    # A delivery pointing at an event that is gone: only possible with foreign keys off, as an
    # older tool or a hand edit might have left it.
    connection = sqlite3.connect(board_0005.sqlite_path)
    connection.execute("PRAGMA foreign_keys=OFF")
    connection.execute("UPDATE notify_deliveries SET event_id = 999")
    connection.commit()
    connection.close()
    before = dump(board_0005)
    with pytest.raises(StorageError, match=r"broken reference.*notify_deliveries row 5"):
        ensure_schema(board_0005)
    assert schema_version(board_0005) == "0005"
    assert dump(board_0005) == before
    assert {"task_runs", "task_events"} <= autoincrement_tables(board_0005)


def test_new_sqlite_boards_use_small_pages_and_existing_ones_keep_theirs(tmp_path):
    new = tmp_path / "new.db"
    db = Database(f"sqlite:///{new}")
    ensure_schema(db)
    db.close()
    old = tmp_path / "old.db"
    sqlite3.connect(old).execute("CREATE TABLE t (x)").connection.close()  # 4 KiB pages
    db = Database(f"sqlite:///{old}")
    ensure_schema(db)
    db.close()
    assert [page_size(new), page_size(old)] == [SQLITE_PAGE_SIZE, 4096]


def page_size(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("PRAGMA page_size").fetchone()[0])
    finally:
        connection.close()


def test_migrating_to_an_unknown_revision_is_refused(fresh_url):
    db = Database(fresh_url)
    try:
        with pytest.raises(StorageError, match="unknown schema revision '0099'"):
            migrate_to(db, "0099")
        assert schema_version(db) is None
    finally:
        db.close()


#: A CHECK violation names the constraint (sqlite3 and psycopg raise their own classes).
_CHECK = "ck_exec_requests_command"
_EXEC_ROW = (
    "INSERT INTO exec_requests (id, command, args, workspace_id, task_id, target_host_id, "
    "platform, user_id, user_name, chat_id, role, nonce, idempotency_key, state, created_ms, "
    "expires_ms) VALUES (:id, :command, '{}', 'ws-1', 1, 4, 'telegram', 'telegram:1', 'alice', "
    "'100', 'operator', :nonce, :nonce, 'pending', 1, 2)"
)


_EXEC_NEXT = (
    "INSERT INTO exec_requests (command, args, workspace_id, task_id, target_host_id, platform, "
    "user_id, user_name, chat_id, role, nonce, idempotency_key, state, created_ms, expires_ms) "
    "VALUES ('status', '{}', 'ws-1', 1, 4, 'cli', 'cli:a', 'a', 'a', 'terminal', 'n-next', "
    "'n-next', 'pending', 1, 2) RETURNING id"
)


def _exec_insert(db: Database, request_id: int, command: str) -> None:
    with db.transaction(write=True) as tx:
        params = {"id": request_id, "command": command, "nonce": f"n{request_id}"}
        tx.execute(Query("seed_exec", _EXEC_ROW), params)


def _exec_rows(db: Database) -> list[tuple[object, ...]]:
    with db.transaction(write=False) as tx:
        probe = Query("exec_rows", "SELECT id, command, state FROM exec_requests ORDER BY id")
        return [tuple(r) for r in tx.fetchall(probe)]


def _open_index(db: Database) -> str:
    probe = (
        "SELECT sql FROM sqlite_master WHERE name = 'ix_exec_requests_open'"
        if db.dialect == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_exec_requests_open'"
    )
    with db.transaction(write=False) as tx:
        return str(tx.scalar(Query("exec_open_index", probe)))


def test_0021_admits_unarchive_requests_and_keeps_the_rows(fresh_url):
    db = Database(fresh_url)
    try:
        migrate_to(db, "0020")
        with db.transaction(write=True) as tx:
            tx.execute(
                Query(
                    "seed_host",
                    "INSERT INTO hosts (id, name, secret_hash, enrolled_ms) "
                    "VALUES (4, 'build-2', 'h', 1)",
                )
            )
        _exec_insert(db, 7, "diff")
        _exec_insert(db, 12, "status")
        with db.transaction(write=True) as tx:  # gone, but its id was handed out
            tx.execute(Query("drop_12", "DELETE FROM exec_requests WHERE id = 12"))
        with pytest.raises(Exception, match=_CHECK):
            _exec_insert(db, 8, "unarchive")  # 0020's CHECK refuses it

        migrate_to(db, "0021")
        assert _exec_rows(db) == [(7, "diff", "pending")]
        _exec_insert(db, 8, "unarchive")
        with pytest.raises(Exception, match=_CHECK):
            _exec_insert(db, 9, "rm -rf /")  # the CHECK is still there, one name wider
        assert "pending" in _open_index(db)  # the partial index kept its WHERE
        if db.dialect == "sqlite":  # the rebuilt table keeps AUTOINCREMENT and its sequence
            assert "exec_requests" in autoincrement_tables(db)
            with db.transaction(write=True) as tx:
                made = tx.scalar(Query("exec_next", _EXEC_NEXT))
            assert made == 13  # never 9: id 12 was handed out before

        migrate_to(db, "0020")  # the unarchive row cannot stay under the narrower CHECK
        assert _exec_rows(db)[0] == (7, "diff", "pending")
        assert "unarchive" not in {command for _id, command, _state in _exec_rows(db)}
        assert "pending" in _open_index(db)
        with pytest.raises(Exception, match=_CHECK):
            _exec_insert(db, 11, "unarchive")
    finally:
        db.close()
