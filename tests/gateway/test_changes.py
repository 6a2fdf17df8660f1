"""The change monitor: writes by another connection wake its callbacks, on both databases."""

from __future__ import annotations

import asyncio

import pytest

from gateway import changes
from gateway.changes import ChangeMonitor
from gateway.executor import KernelExecutor
from kanban_core import Actor, Kanban, KernelSettings
from tests.gateway.support import wait_until

pytestmark = pytest.mark.anyio


async def test_a_write_elsewhere_wakes_the_callbacks(
    board: Kanban, executor: KernelExecutor, settings: KernelSettings, monkeypatch
):
    # No fallback look for an hour: on PostgreSQL only the announcement can wake the monitor.
    monkeypatch.setattr(changes, "FALLBACK_S", 3600.0)
    woken: list[str] = []
    monitor = ChangeMonitor(board.watch_changes(), executor, on_change=[lambda: woken.append("x")])
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await wait_until(lambda: woken == ["x"], "the first look (everything is new)")

    if board.db.is_memory:
        other = board  # one shared connection: the write still changes the newest event
        other.create(Actor(name="bob"), title="from elsewhere")
    else:
        with Kanban.open(settings) as other:
            other.create(Actor(name="bob"), title="from elsewhere")

    await wait_until(lambda: woken == ["x", "x"], "the write to wake the monitor")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert woken == ["x", "x"]  # nothing else happened, nothing else woke it
