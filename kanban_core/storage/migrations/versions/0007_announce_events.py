"""PostgreSQL announces new events (NOTIFY kanban_events), so a gateway wakes without polling.

One notification per inserting statement, with an empty payload (identical notifications in a
transaction are folded into one): a wake-up hint, never the data. SQLite has no equivalent;
its watchers compare the newest event id instead.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION kanban_announce_events() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN PERFORM pg_notify('kanban_events', ''); RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER kanban_announce_events AFTER INSERT ON task_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION kanban_announce_events()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER kanban_announce_events ON task_events")
    op.execute("DROP FUNCTION kanban_announce_events()")
