"""Count PostgreSQL round trips: libpq's own protocol trace of the pool's connections.

Each round trip ends with a message the client then waits on: a simple ``Query`` (BEGIN,
COMMIT) or the ``Sync`` that closes an extended-protocol statement. Counting those in the trace
counts what the network sees, whatever layer sent it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from kanban_core.storage import Database


@dataclass
class RoundTrips:
    """The trace of one block: how many round trips, and the messages that ended them."""

    lines: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Round trips in the block."""
        return len(self.lines)


@contextmanager
def counting(db: Database) -> Iterator[RoundTrips]:
    """Trace every connection the pool holds while the block runs (the pool must not grow)."""
    assert db.dialect == "postgresql"
    connections = list(db._idle)
    assert connections, "warm the pool (one read) before counting"
    result = RoundTrips()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trace"
        with path.open("w") as out:
            for connection in connections:
                connection.pgconn.trace(out.fileno())
                connection.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                yield result
            finally:
                for connection in connections:
                    connection.pgconn.untrace()
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) > 2 and parts[0] == "F" and parts[2] in ("Query", "Sync"):
                result.lines.append(line[:200])
    grown = [c for c in db._idle if c not in connections]
    assert not grown, "the pool opened a connection the trace did not see"
