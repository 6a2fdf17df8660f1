"""Portable SQL statements, rendered once per dialect and cached.

The kernel's statements are plain SQL in the subset SQLite (≥ 3.35) and PostgreSQL share:
``RETURNING``, ``ON CONFLICT DO NOTHING``, partial indexes, recursive CTEs. What differs is
spelled as a placeholder and filled in per dialect:

* ``{now}``          the database clock in integer epoch milliseconds (one clock for all hosts);
* ``{skip_locked}``  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, nothing on SQLite (one writer);
* ``{for_update}``   ``FOR UPDATE`` on PostgreSQL, nothing on SQLite;
* ``{index:NAME}``  ``INDEXED BY NAME`` on SQLite, whose planner (without ANALYZE statistics)
                     prefers the broad status index over the partial ones and then visits
                     every ready or running task; nothing on PostgreSQL;
* ``{next_id:TABLE}`` the id the next row of TABLE gets: ``max(id) + 1`` on SQLite (a rowid
                     without AUTOINCREMENT, under the one writer's lock), the id sequence's
                     ``nextval`` on PostgreSQL;
* ``{unindexed}``    ``+`` on SQLite (keeps the planner off the status index where a narrower
                     one applies), nothing on PostgreSQL;
* ``:name``          bind parameters, rewritten to ``%(name)s`` for psycopg.

Executing these through the DBAPI cursor instead of SQLAlchemy's execution pipeline keeps
SQLAlchemy (0.2 s and 37 MB to import) out of every short CLI process, and a claim at a few
statements' cost; SQLAlchemy and Alembic still own the schema and its migrations.
"""

from __future__ import annotations

import re
from typing import Literal

DialectName = Literal["sqlite", "postgresql"]

_FRAGMENTS: dict[DialectName, dict[str, str]] = {
    "sqlite": {
        "now": "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
        "skip_locked": "",
        "for_update": "",
        "unindexed": "+",
    },
    "postgresql": {
        "now": "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)",
        "skip_locked": "FOR UPDATE SKIP LOCKED",
        "for_update": "FOR UPDATE",
        "unindexed": "",
    },
}
_PLACEHOLDER = re.compile(r"\{(now|skip_locked|for_update|unindexed|index:\w+|next_id:\w+)\}")
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def _fragment(dialect: DialectName, key: str) -> str:
    if key.startswith("index:"):
        return f"INDEXED BY {key[6:]}" if dialect == "sqlite" else ""
    if key.startswith("next_id:"):
        table = key[8:]
        if dialect == "sqlite":
            return f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table})"
        return f"nextval(pg_get_serial_sequence('{table}', 'id'))"
    return _FRAGMENTS[dialect][key]


class Query:
    """One SQL statement, rendered lazily for each dialect."""

    __slots__ = ("_rendered", "name", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source
        self._rendered: dict[str, str] = {}

    def render(self, dialect: DialectName) -> str:
        """The statement text for ``dialect``."""
        text = self._rendered.get(dialect)
        if text is None:
            text = _PLACEHOLDER.sub(lambda m: _fragment(dialect, m.group(1)), self.source)
            if dialect == "postgresql":
                text = _BIND.sub(r"%(\1)s", text)
            self._rendered[dialect] = text
        return text

    def __repr__(self) -> str:
        return f"Query({self.name!r})"
