"""Alembic environment: runs on the connection kanban_core.storage.migrate hands it."""

from alembic import context
from sqlalchemy import text

from kanban_core.storage.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    transaction_per_migration=False,
)
with context.begin_transaction():
    if connection.dialect.name == "postgresql":
        # Serialise concurrent first starts; the loser then finds the schema at head.
        connection.execute(text("SELECT pg_advisory_xact_lock(7262300001)"))
    context.run_migrations()
