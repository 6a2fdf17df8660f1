"""Events that commit after a larger id was read (PostgreSQL): the bounded window that finds them.

PostgreSQL hands out event ids at insert, so a transaction that inserted id 7 may commit after
another one's id 8 has been read: "everything after 8" then never shows 7. SQLite has one
writer at a time, so there ids are commit order and none of this applies.

Every place that follows the log by id (the web board's hub and resuming browsers, the CLI's
``tail`` and ``watch``) closes the hole with one bound, ``LATE_COMMIT_S``: how long a write
transaction may stay open after inserting an event. An event is stamped with the database clock
when its insert runs (``created_ms``), so an event that was still uncommitted when event N was
read has ``created_ms`` no earlier than N's ``created_ms - LATE_COMMIT_S``:

* a reader starting or resuming from N reads the events with an id up to N stamped in that
  window (``window_before``): a browser is sent them again (the page patches cards
  idempotently), a follower counts them as seen and the ids missing among them as holes;
* a follower remembers the ids it skipped (the holes below its cursor, ``Holes``) for that long
  and looks for them on every read (``by_ids``); ``Follower`` is that, for a synchronous reader.
"""

from __future__ import annotations

import time
from collections.abc import Container, Iterable

from kanban_core.board.domain import Event
from kanban_core.board.reads import EVENTS_AFTER
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

_WINDOW = Query(
    "events_in_late_window",
    f"SELECT {EVENT_COLUMNS} FROM task_events WHERE id <= :since AND created_ms >= "
    "(SELECT created_ms FROM task_events WHERE id <= :since ORDER BY id DESC LIMIT 1) - :window_ms "
    "ORDER BY id LIMIT :limit",
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
    included (the CLI's ``tail`` and ``watch``; the web board's hub does the same in asyncio).

    Made before anything is shown from the log, so an event that commits meanwhile below the
    cursor is a hole it finds, never one it counts as seen unshown.
    """

    def __init__(self, db: Database, cursor: int, *, batch: int = 200) -> None:
        self.db = db
        self.cursor = cursor
        self.batch = batch
        self._late = may_commit_late(db)
        self._holes = Holes()
        self._seen: dict[int, None] = {}  # insertion-ordered, bounded to the newest few
        if self._late:
            # At or below the cursor: seen (shown, or older than what is shown); the ids missing
            # among the recent ones are writes still open, to be returned when they commit.
            recent = window_before(db, cursor, limit=MAX_HOLES)
            self.seen(e.id for e in recent)
            if recent:
                self._holes.open(recent[0].id - 1, recent, self._seen)

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
