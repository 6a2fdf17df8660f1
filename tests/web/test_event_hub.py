"""The event hub alone: one read per burst, backlogs from the ring or the database, resets."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.executor import KernelExecutor
from kanban_core import Actor, Kanban
from tests.kanban_core.support import OpenWrite
from tests.support.network import until
from web import events
from web.events import EventHub, sse_frame

pytestmark = pytest.mark.anyio
ALICE = Actor(name="alice")


async def _take(stream, n: int) -> list[dict[str, Any]]:
    out = []
    async with asyncio.timeout(10):
        async for item in stream:
            if item is not None:
                out.append(item)
            if len(out) == n:
                return out
    return out


async def _started(
    board: Kanban, executor: KernelExecutor
) -> tuple[EventHub, asyncio.Event, asyncio.Task[None]]:
    hub = EventHub(board, executor)
    stop = asyncio.Event()
    task = asyncio.create_task(hub.run(stop))
    await hub.started.wait()
    return hub, stop, task


async def test_a_burst_is_read_once_and_reaches_every_stream(board, executor) -> None:
    hub, stop, task = await _started(board, executor)
    streams = [hub.stream(None) for _ in range(3)]
    waiting = [asyncio.create_task(_take(s, 5)) for s in streams]
    await asyncio.sleep(0)
    made = board.create(ALICE, title="x").task
    for n in range(4):
        board.comment(ALICE, made.id, f"c{n}")
    hub.on_change()
    got = await asyncio.gather(*waiting)
    assert all([e["kind"] for e in g] == ["created"] + ["commented"] * 4 for g in got)
    assert hub.reads == 1
    stop.set()
    await task


async def test_a_resume_older_than_the_ring_reads_the_database(
    board, executor, monkeypatch
) -> None:
    monkeypatch.setattr(events, "RING", 3)
    made = board.create(ALICE, title="x").task
    hub, stop, task = await _started(board, executor)
    start = board.max_event_id()
    for n in range(6):
        board.comment(ALICE, made.id, f"c{n}")
    hub.on_change()
    newest = board.max_event_id()
    await until(lambda: hub.cursor >= newest)
    wanted = [e.id for e in board.events_after(start, limit=100)]
    # PostgreSQL first sends again the events up to the cursor that may have committed late.
    replayed = 1 if board.db.dialect == "postgresql" else 0
    got = await _take(hub.stream(start), replayed + len(wanted))
    assert [e["id"] for e in got][replayed:] == wanted  # the ring holds 3; the rest: database
    assert all(e["id"] <= start for e in got[:replayed])
    stop.set()
    await task


async def test_too_far_behind_is_told_to_reload(board, executor, monkeypatch) -> None:
    monkeypatch.setattr(events, "MAX_CATCH_UP", 2)
    made = board.create(ALICE, title="x").task
    for n in range(5):
        board.comment(ALICE, made.id, f"c{n}")
    hub, stop, task = await _started(board, executor)
    (first,) = await _take(hub.stream(0), 1)
    assert first == {"reset": True}
    assert sse_frame(first) == b"event: reset\ndata: {}\n\n"
    assert sse_frame(None) == b": keepalive\n\n"
    stop.set()
    await task


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_a_write_that_commits_while_the_hub_starts_is_published(board, executor) -> None:
    made = board.create(ALICE, title="x").task
    starting = OpenWrite(board, made.id, "commits while the hub starts")
    board.comment(ALICE, made.id, "committed above it")
    starting.commit_after_next_read(board)
    hub, stop, task = await _started(board, executor)
    assert hub.cursor > starting.event_id

    waiting = asyncio.create_task(_take(hub.stream(None), 1))
    await asyncio.sleep(0)
    hub.on_change()
    assert [e["id"] for e in await waiting] == [starting.event_id]
    stop.set()
    await task
