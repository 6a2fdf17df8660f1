"""Events that commit after a larger id was read (PostgreSQL): the bounded window that finds them.

PostgreSQL hands out event ids at insert, so a transaction that inserted id 7 may commit after
another one's id 8 has been read: "everything after 8" then never shows 7. SQLite has one
writer at a time, so there ids are commit order and none of this applies.

Every place that follows the log by id (the web board's hub and resuming browsers, the CLI's
``tail`` and ``watch``) closes the hole with one bound, ``LATE_COMMIT_S``: how long a write
transaction may stay open after inserting an event. An event is stamped with the database clock
when its insert runs (``created_ms``), so an event that was still uncommitted when event N was
read has ``created_ms`` no earlier than N's ``created_ms - LATE_COMMIT_S``:

* a reader starting from the newest event reads its id and the events stamped in that window
  below it in one statement (``start``), so one snapshot: an event that commits between two
  reads would otherwise count as seen without ever being shown. It counts them as seen and the
  ids missing among them as holes;
* a browser resuming from N is sent again the events with an id up to N stamped in that window
  (``window_before``; the page patches cards idempotently);
* a follower remembers the ids it skipped (the holes below its cursor, ``Holes``) for that long
  and looks for them on every read (``by_ids``); ``Follower`` is that, for a synchronous reader.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable

from kanban_core.board.domain import Event
from kanban_core.board.reads import EVENTS_AFTER, MAX_EVENT, max_event_id_of
from kanban_core.board.rows import EVENT_COLUMNS, event_from_row
from kanban_core.storage import Database, Query

#: The longest a kernel write transaction is taken to stay open after inserting an event. The
#: kernel's write transactions are a handful of statements (milliseconds; see the benchmarks),
#: the only long wait inside one is a row lock held by another short transaction, and the
#: hosts' leases treat a few seconds of silence as trouble already; 5 s covers that with room.
#: An event committed later than this still reaches the board on its next reload.
LATE_COMMIT_S = 5.0
#: Holes a follower tracks at most (a gap larger than this is rolled-back ids, not open writes).
MAX_HOLES = 4096

# Both windows are also bounded by id (the ``limit`` ids below the starting point): with no index
# on ``created_ms`` the time bound alone would scan the log from its oldest event (~50 ms per
# 500,000 events); with it the scan is one short range of the primary key.
_WINDOW = Query(
    "events_in_late_window",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE id <= :since AND id > :since - :limit "
    "AND created_ms >= "
    "(SELECT created_ms FROM task_events WHERE id <= :since ORDER BY id DESC LIMIT 1) - :window_ms "
    "ORDER BY id LIMIT :limit",
)
_E_COLUMNS = ", ".join(f"e.{name.strip()}" for name in EVENT_COLUMNS.split(","))
# The newest id and the window below it in one statement, so from one snapshot (PostgreSQL reads
# each statement of a transaction from a snapshot of its own). No events: one row (0, NULLs...).
_START = Query(
    "events_start_window",
    "WITH top AS (SELECT COALESCE(max(id), 0) AS id FROM task_events) "
    f"SELECT top.id, {_E_COLUMNS} FROM top LEFT JOIN task_events e ON e.id <= top.id "
    "AND e.id > top.id - :limit AND e.created_ms >= "
    "(SELECT n.created_ms FROM task_events n WHERE n.id = top.id) - :window_ms "
    "ORDER BY e.id LIMIT :limit",
)
_BY_IDS = Query(
    "events_by_ids",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE id = ANY(:ids) ORDER BY id",
)


def may_commit_late(db: Database) -> bool:
    """Whether ids can become visible out of order on this database."""
    return db.dialect == "postgresql"


def window_before(db: Database, since: int, *, limit: int) -> list[Event]:
    """Events with an id up to ``since`` stamped within ``LATE_COMMIT_S`` of it, oldest first."""
    params = {"since": since, "window_ms": int(LATE_COMMIT_S * 1000), "limit": limit}
    return [event_from_row(row) for row in db.read(_WINDOW, params)]


def start(db: Database, *, limit: int) -> tuple[int, list[Event]]:
    """The newest event id and the events up to it stamped within ``LATE_COMMIT_S`` of it, oldest
    first, read as one snapshot (on SQLite, where ids are commit order, the id alone)."""
    if not may_commit_late(db):
        return max_event_id_of(db.read(MAX_EVENT)), []
    params = {"window_ms": int(LATE_COMMIT_S * 1000), "limit": limit}
    rows = db.read(_START, params)
    return int(rows[0][0]), [event_from_row(row[1:]) for row in rows if row[1] is not None]


def by_ids(db: Database, ids: list[int]) -> list[Event]:
    """The events among ``ids`` that are visible now (PostgreSQL only)."""
    return [event_from_row(row) for row in db.read(_BY_IDS, {"ids": ids})]


class Holes:
    """Ids below a follower's cursor it has not seen, each kept until it can no longer commit."""

    def __init__(self) -> None:
        self._until: dict[int, float] = {}  # id -> monotonic deadline, oldest first

    def __len__(self) -> int:
        return len(self._until)

    def open(self, after: int, events: Iterable[Event], seen: Container[int]) -> None:
        """Note the ids skipped between ``after`` and each new event (read just now)."""
        # A skipped id was handed out before the event above it, which was visible when read;
        # so its transaction commits within LATE_COMMIT_S of now, or not at all. A second
        # covers a follower's wake-up after that commit (the change watch and the hub's
        # debounce, or a poll).
        deadline = time.monotonic() + LATE_COMMIT_S + 1.0
        previous = after
        for event in events:
            lowest = max(previous + 1, event.id - MAX_HOLES)
            for missing in range(lowest, event.id):
                if missing not in seen:
                    self._until[missing] = deadline
            previous = max(previous, event.id)
        while len(self._until) > MAX_HOLES:
            del self._until[next(iter(self._until))]

    def pending(self) -> list[int]:
        """The holes that may still fill, after dropping those past their time."""
        now = time.monotonic()
        for hole in [h for h, until in self._until.items() if until < now]:
            del self._until[hole]
        return sorted(self._until)

    def fill(self, event_id: int) -> None:
        """An event arrived: its id is no longer a hole."""
        self._until.pop(event_id, None)


class Follower:
    """A synchronous reader of the log from a cursor that returns each event once, late commits
    included (the CLI's ``tail`` and ``watch``, and the web board's hub through its executor).

    Made (``at_newest``) before anything is shown from the log, so an event that commits
    meanwhile below the cursor is a hole it finds, never one it counts as seen unshown.
    """

    def __init__(self, db: Database, cursor: int, recent: list[Event], *, batch: int) -> None:
        self.db = db
        self.cursor = cursor
        self.batch = batch
        self._late = may_commit_late(db)
        self._holes = Holes()
        self._seen: dict[int, None] = {}  # insertion-ordered, bounded to the newest few
        # At or below the cursor: seen (shown, or older than what is shown); the ids missing
        # among the recent ones are writes still open, to be returned when they commit.
        self.seen(e.id for e in recent)
        if recent:
            self._holes.open(recent[0].id - 1, recent, self._seen)

    @classmethod
    def at_newest(cls, db: Database, *, batch: int = 200) -> Follower:
        """A follower from the newest event: its id and the late window read as one snapshot."""
        cursor, recent = start(db, limit=MAX_HOLES)
        return cls(db, cursor, recent, batch=batch)

    def seen(self, ids: Iterable[int]) -> None:
        """Count these ids as returned already (a snapshot shown beside the follower)."""
        self._seen.update(dict.fromkeys(ids))
        while len(self._seen) > 2 * MAX_HOLES:  # a repeat is only ever a recent hole's id
            del self._seen[next(iter(self._seen))]

    def poll(self) -> tuple[list[Event], bool]:
        """The events not returned before, oldest first, and whether the log was read to its end.

        Every event is read, whatever its task, so a skipped id is a write still open (or
        rolled back), never an event that a filter left out.
        """
        waiting = self._holes.pending() if self._late else []
        filled = by_ids(self.db, waiting) if waiting else []
        after = self.cursor
        params = {"after": after, "limit": self.batch}
        newer = [event_from_row(row) for row in self.db.read(EVENTS_AFTER, params)]
        if self._late:
            self._holes.open(after, newer, self._seen)
        fresh = []
        for event in filled + newer:
            self._holes.fill(event.id)
            self.cursor = max(self.cursor, event.id)
            if event.id not in self._seen:
                fresh.append(event)
        self.seen(e.id for e in fresh)
        return fresh, len(newer) < self.batch
