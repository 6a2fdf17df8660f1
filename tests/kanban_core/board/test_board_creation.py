"""Who may create a board: reads never do; a new SQLite board is built from the schema snapshot."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kanban_core import Actor, BoardNotFound, Kanban, KernelSettings
from kanban_core.board.kanban import OnMissing
from kanban_core.storage import Database, Query, bootstrap, sqlite_head
from kanban_core.storage.database import SQLITE_PAGE_SIZE
from kanban_core.storage.migrate import _run_alembic, ensure_schema, schema_version
from kanban_core.storage.migrations import HEAD, HEAD_NUMBER

OPERATOR = Actor(name="alice")
_TABLE_COUNT = Query(
    "pg_table_count", "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
)


def sqlite_facts(path: Path) -> dict[str, object]:
    """Everything about a SQLite file's schema and set-up that a board depends on."""
    with sqlite3.connect(path) as connection:
        facts: dict[str, object] = {
            "objects": sorted(
                connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
            ),
            "version": connection.execute("SELECT version_num FROM alembic_version").fetchall(),
        }
        for pragma in ("user_version", "page_size", "journal_mode"):
            facts[pragma] = connection.execute(f"PRAGMA {pragma}").fetchone()[0]
    connection.close()
    return facts


def test_the_snapshot_is_what_the_migrations_build():
    # After a new migration: python -m kanban_core.storage.bootstrap rewrites the snapshot.
    assert sqlite_head.REVISION == HEAD, "the schema snapshot is stale: regenerate it"
    assert list(sqlite_head.STATEMENTS) == bootstrap.migrated_statements()


def test_a_board_built_from_the_snapshot_equals_a_migrated_one(tmp_path: Path):
    created = tmp_path / "created" / "kanban.db"
    with Kanban.open(KernelSettings(home=created.parent, db_url=f"sqlite:///{created}")):
        pass
    migrated = tmp_path / "migrated.db"
    db = Database(f"sqlite:///{migrated}")
    try:
        db.enable_wal()
        _run_alembic(db)
    finally:
        db.close()
    facts = sqlite_facts(created)
    assert facts == sqlite_facts(migrated)
    assert (facts["version"], facts["user_version"]) == ([(HEAD,)], HEAD_NUMBER)
    assert (facts["page_size"], facts["journal_mode"]) == (SQLITE_PAGE_SIZE, "wal")


def test_a_board_at_head_without_the_stamp_gets_it_once(tmp_path: Path):
    path = tmp_path / "kanban.db"
    db = Database(f"sqlite:///{path}")
    try:
        ensure_schema(db)
        with db.transaction(write=True) as tx:
            tx.execute(Query("unstamp", "PRAGMA user_version = 0"))  # as boards made before it
        assert db.user_version() == 0
        assert ensure_schema(db, create=False) is False
        assert db.user_version() == HEAD_NUMBER
    finally:
        db.close()


@pytest.mark.parametrize("on_missing", [OnMissing.REFUSE, OnMissing.CREATE])
def test_a_missing_directory_is_never_created_except_by_init(tmp_path: Path, on_missing):
    home = tmp_path / "home"
    path = tmp_path / "no" / "such" / "dir" / "x.db"
    settings = KernelSettings(home=home, db_url=f"sqlite:///{path}")
    with pytest.raises(BoardNotFound, match=f"no board at {path}"):
        Kanban.open(settings, on_missing=on_missing)
    assert list(tmp_path.iterdir()) == []
    with Kanban.open(settings, on_missing=OnMissing.CREATE_ANYWHERE) as board:
        assert board.list() == []
    assert path.is_file()


def test_a_read_never_creates_the_board_in_its_home(tmp_path: Path):
    home = tmp_path / "home"
    settings = KernelSettings(home=home, db_url=f"sqlite:///{home / 'kanban.db'}")
    with pytest.raises(BoardNotFound, match=f"no board at {home / 'kanban.db'}: `kanban init`"):
        Kanban.open(settings, on_missing=OnMissing.REFUSE)
    assert not home.exists()
    # The first write may create the board in its home (the home directory included).
    with Kanban.open(settings, on_missing=OnMissing.CREATE) as board:
        board.create(OPERATOR, title="first")
    with Kanban.open(settings, on_missing=OnMissing.REFUSE) as board:
        assert [t.title for t in board.list()] == ["first"]


def test_a_file_in_an_existing_directory_is_created_by_a_write(tmp_path: Path):
    path = tmp_path / "elsewhere.db"
    settings = KernelSettings(home=tmp_path / "home", db_url=f"sqlite:///{path}")
    with Kanban.open(settings, on_missing=OnMissing.CREATE) as board:
        assert board.list() == []
    assert path.is_file()


def test_an_empty_sqlite_file_is_not_a_board_to_a_read(tmp_path: Path):
    path = tmp_path / "empty.db"
    path.touch()
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{path}")
    with pytest.raises(BoardNotFound, match="`kanban init` creates it"):
        Kanban.open(settings, on_missing=OnMissing.REFUSE)
    assert path.stat().st_size == 0


def test_a_read_never_creates_a_schema_in_an_empty_database(fresh_url: str, tmp_path: Path):
    settings = KernelSettings(home=tmp_path, db_url=fresh_url)
    with pytest.raises(BoardNotFound, match="no board"):
        Kanban.open(settings, on_missing=OnMissing.REFUSE)
    db = Database(fresh_url)
    try:
        assert schema_version(db) is None
        if db.dialect == "postgresql":
            with db.transaction(write=False) as tx:
                assert tx.scalar(_TABLE_COUNT) == 0
        else:
            assert not Path(str(db.sqlite_path)).parent.exists()
    finally:
        db.close()
    with Kanban.open(settings, on_missing=OnMissing.CREATE_ANYWHERE) as board:
        board.create(OPERATOR, title="first")
        assert [t.title for t in board.list()] == ["first"]
