"""Alembic environment: runs on the connection kanban_core.storage.migrate hands it."""

from alembic import context
from sqlalchemy import text

from kanban_core.errors import StorageError
from kanban_core.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
    # SQLite's DDL is transactional, though Alembic assumes otherwise and would commit after
    # each step: one transaction makes a failed upgrade change nothing.
    transactional_ddl=True,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Serialise concurrent first starts; the loser then finds the schema at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(7262300001)"))
    context.run_migrations()
    if connection.dialect.name == "sqlite":
        # Migrations run with foreign keys off (table rebuilds need it): check them all before
        # the transaction commits, so a migration cannot leave a broken reference behind.
        broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
        if broken:
            table, rowid, parent, _ = broken[0]
            raise StorageError(
                f"migration would leave {len(broken)} broken reference(s), e.g. {table} row "
                f"{rowid} -> {parent}; nothing was changed"
            )
