"""Noticing commits made elsewhere: a cheap "has the board changed?" for wake-ups.

Every change to the board writes an event, so a new event is the signal. PostgreSQL announces
it itself (a trigger NOTIFYs ``kanban_events``; the watch LISTENs on a connection of its own,
whose socket turns readable); SQLite has no notifications, so the watch compares the newest
event id, one index lookup. Either way it is only a hint to look again: callers still read the
rows, and a missed hint costs latency, never a lost change.
"""

from __future__ import annotations

import select
import time
from typing import Any

from kanban_core.board import reads
from kanban_core.errors import StorageError
from kanban_core.storage import Database

#: The channel the migration's trigger announces new events on.
CHANNEL = "kanban_events"
#: Without announcements (SQLite) a waiter looks this often; the look is one index lookup.
LOOK_EVERY_S = 0.05


class ChangeWatch:
    """Tells whether the board may have changed since the last look."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._newest: int | None = None
        self._listener: Any = None  # psycopg connection LISTENing on CHANNEL

    def changed(self) -> bool:
        """True when something may have changed since the previous call (the first: True)."""
        if self._db.dialect == "postgresql":
            return self._announced()
        newest = reads.max_event_id_of(self._db.read(reads.MAX_EVENT))
        changed, self._newest = newest != self._newest, newest
        return changed

    @property
    def announces(self) -> bool:
        """True when changes are announced on ``fileno()`` (PostgreSQL); False: look often."""
        return self._db.dialect == "postgresql"

    def fileno(self) -> int | None:
        """A socket that turns readable when a change is announced (PostgreSQL), else None."""
        return None if self._listener is None else int(self._listener.fileno())

    def close(self) -> None:
        """Release the listening connection, if any."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def _announced(self) -> bool:
        if self._listener is None:
            try:
                self._listener = self._db.listen(CHANNEL)
            except StorageError:
                return True  # cannot listen (server down?): every look is a maybe
            return True  # anything may have happened before we listened
        pgconn = self._listener.pgconn
        try:
            pgconn.consume_input()
        except Exception:  # noqa: BLE001 - a dropped connection; the next look reconnects
            self.close()
            return True
        announced = False
        while pgconn.notifies() is not None:
            announced = True
        return announced


def wait_for_change(watch: ChangeWatch, timeout_s: float) -> bool:
    """Block until the watch reports a change or ``timeout_s`` passes; True on a change.

    PostgreSQL: wait on the listening socket, so a commit elsewhere wakes the waiter at once.
    SQLite: look every ``LOOK_EVERY_S``.
    """
    end = time.monotonic() + max(0.0, timeout_s)
    while True:
        if watch.changed():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return False
        fd = watch.fileno() if watch.announces else None
        if fd is not None:
            select.select([fd], [], [], left)
        else:
            time.sleep(min(LOOK_EVERY_S, left))
