"""The live event stream: one shared reader of the board's events, fanned out to every browser.

The change watch (the gateway's, or the web server's own) calls ``on_change``; the hub waits a
moment for the burst to settle, reads the new events once, keeps the newest in a ring and wakes
every open stream. Streams never read the database themselves, except once when a browser
resumes: from a cursor older than the ring, or on PostgreSQL for the late-commit window
(``kanban_core.board.late_commits``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from gateway.executor import KernelExecutor
from kanban_core import Kanban
from kanban_core.board import late_commits as late
from kanban_core.board.domain import Event
from kanban_core.commands.chat_view import hide_paths

log = logging.getLogger(__name__)
#: How long a burst may keep arriving before it is read in one go (seconds).
DEBOUNCE_S = 0.01
#: Events kept in memory for streams that resume.
RING = 4096
_BATCH = 500
#: A comment line keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0
#: A browser resuming from further back than this many events is told to reload instead.
MAX_CATCH_UP = 2000


def event_json(event: Event) -> dict[str, Any]:
    """The event as the stream sends it (server paths hidden, as in chat)."""
    data: dict[str, Any] = hide_paths(event.to_json())
    return data


class EventHub:
    """One reader, many streams."""

    def __init__(self, board: Kanban, executor: KernelExecutor) -> None:
        self.board = board
        self.executor = executor
        self._dirty = asyncio.Event()
        self._published = asyncio.Condition()
        self._ring: deque[tuple[int, dict[str, Any]]] = deque(maxlen=RING)  # (seq, event)
        self.seq = 0
        self.floor = 0  # every event with an id above this went through the hub
        self.reads = 0  # reads of the log the hub made (the benchmark checks it stays shared)
        self.started = asyncio.Event()
        self.closed = False
        # The log's one reader: each event once, late commits (PostgreSQL) included.
        self._follower: late.Follower | None = None

    def on_change(self) -> None:
        """The board may have changed (called from the change watch, in the loop)."""
        self._dirty.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Read and publish until ``stop`` is set."""
        self._follower = await self.executor.run(
            lambda: late.Follower.at_newest(self.board.db, batch=_BATCH)
        )
        self.floor = self._follower.cursor
        self.started.set()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                dirty = asyncio.ensure_future(self._dirty.wait())
                await asyncio.wait({dirty, stopping}, return_when=asyncio.FIRST_COMPLETED)
                dirty.cancel()
                if stop.is_set():
                    break
                await asyncio.sleep(DEBOUNCE_S)  # let the burst land; read it once
                self._dirty.clear()
                try:
                    await self._read()
                except Exception:
                    log.exception("reading new events failed", extra={"action": "web_events"})
        finally:
            stopping.cancel()
            self.closed = True
            async with self._published:
                self._published.notify_all()

    @property
    def cursor(self) -> int:
        """The newest event id the hub has read."""
        return 0 if self._follower is None else self._follower.cursor

    async def _read(self) -> None:
        assert self._follower is not None
        while True:
            events, caught_up = await self.executor.run(self._follower.poll)
            self.reads += 1
            await self._publish(events)
            if caught_up:
                return

    async def _publish(self, events: list[Event]) -> None:
        for event in events:
            self.seq += 1
            self._ring.append((self.seq, event_json(event)))
        if events:
            async with self._published:
                self._published.notify_all()

    async def stream(self, since: int | None) -> AsyncIterator[dict[str, Any] | None]:
        """Events after ``since`` (by id), then live ones as they come; None is a keepalive.

        Yields ``{"reset": True}`` once when the browser is too far behind to catch up (it
        should reload the board).
        """
        await self.started.wait()
        position = self.seq
        sent: set[int] = set()
        if since is not None:
            backlog = await self._backlog(since)
            if backlog is None:
                yield {"reset": True}
            else:
                for event in backlog:
                    sent.add(event["id"])
                    yield event
        while not self.closed:
            if self._ring and self._ring[0][0] > position + 1:
                yield {"reset": True}  # this stream fell further behind than the ring holds
                position = self.seq
                continue
            async with self._published:
                if self.seq == position and not self.closed:
                    try:
                        await asyncio.wait_for(self._published.wait(), KEEPALIVE_S)
                    except TimeoutError:
                        yield None
                        continue
            for seq, event in list(self._ring):
                if seq > position and event["id"] not in sent:
                    yield event
            position = self.seq
            if len(sent) > RING:
                sent.clear()

    async def _backlog(self, since: int) -> list[dict[str, Any]] | None:
        """What a resuming browser missed; None when that is too much to send."""
        ring = [event for _, event in self._ring]
        # On PostgreSQL an event with an id up to ``since`` may have committed after the browser
        # read ``since``: send again the ones stamped in the late-commit window (late_commits).
        replay: list[dict[str, Any]] = []
        if late.may_commit_late(self.board.db):
            window = await self.executor.run(
                late.window_before, self.board.db, since, limit=MAX_CATCH_UP + 1
            )
            if len(window) > MAX_CATCH_UP:
                return None
            replay = [event_json(e) for e in window]
        # The ring holds everything after ``floor`` until it first fills up; after that only
        # what is newer than its oldest entry.
        complete = len(ring) < RING or ring[0]["id"] <= since + 1
        if since >= self.floor and complete:
            return replay + [e for e in ring if e["id"] > since]
        events = await self.executor.run(self.board.events_after, since, limit=MAX_CATCH_UP + 1)
        if len(events) > MAX_CATCH_UP:
            return None
        have = {e.id for e in events}
        return replay + [event_json(e) for e in events] + [e for e in ring if e["id"] not in have]


def sse_frame(event: dict[str, Any] | None) -> bytes:
    """One Server-Sent Events frame (a comment for a keepalive)."""
    if event is None:
        return b": keepalive\n\n"
    if event.get("reset"):
        return b"event: reset\ndata: {}\n\n"
    data = json.dumps(event, separators=(",", ":"))
    return f"id: {event['id']}\ndata: {data}\n\n".encode()
