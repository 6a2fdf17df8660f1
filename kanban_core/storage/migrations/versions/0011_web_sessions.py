"""The web board's sign-in: single-use login links and browser sessions (both stored hashed).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "web_login_links",
        # SHA-256 of the link's secret: a copy of the database signs nobody in.
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("used_ms", sa.BigInteger),
    )
    op.create_index("ix_web_login_links_expires", "web_login_links", ["expires_ms"])
    op.create_table(
        "web_sessions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("principal", sa.String(200), nullable=False),
        sa.Column("client", sa.String(200)),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_ms", sa.BigInteger),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("web_sessions")
    op.drop_index("ix_web_login_links_expires", "web_login_links")
    op.drop_table("web_login_links")
