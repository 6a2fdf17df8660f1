"""The change monitor: writes by another connection wake its callbacks, on both databases."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

import pytest

from gateway import changes
from gateway.changes import ChangeMonitor
from gateway.executor import KernelExecutor
from kanban_core import Actor, Kanban, KernelSettings
from tests.conftest import drop_change_listeners
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


async def test_a_failing_look_is_logged_once_and_the_monitor_recovers(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gateway.changes")
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")
    executor = KernelExecutor(threads=1)
    woken: list[str] = []
    with Kanban.open(settings) as board:
        watch = board.watch_changes()
        looks: list[int] = []
        real_changed = watch.changed

        def counted() -> bool:  # the real look, counted
            looks.append(1)
            return real_changed()

        watch.changed = counted  # type: ignore[method-assign]
        monitor = ChangeMonitor(watch, executor, on_change=[lambda: woken.append("x")])
        stop = asyncio.Event()
        task = asyncio.create_task(monitor.run(stop))
        await wait_until(lambda: woken == ["x"], "the first look")
        connection = sqlite3.connect(tmp_path / "kanban.db")
        connection.execute("ALTER TABLE task_events RENAME TO task_events_away")  # breaks looks
        connection.commit()
        await wait_until(lambda: _failures(caplog) == 1, "the failure to be logged")
        failed_at = len(looks)

        await wait_until(lambda: len(looks) >= failed_at + 2, "two more failing looks", within=10)
        assert _failures(caplog) == 1  # logged once per outage, not once per look
        connection.execute("ALTER TABLE task_events_away RENAME TO task_events")
        connection.commit()
        connection.close()
        board.create(Actor(name="bob"), title="after the outage")
        await wait_until(lambda: woken == ["x", "x"], "the monitor to recover", within=10)
        assert "looking for changes works again" in caplog.text
        stop.set()
        await asyncio.wait_for(task, 10)
    executor.shutdown()


def _failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage() == "looking for changes failed" for r in caplog.records)


async def test_a_dropped_listener_is_replaced_and_announcements_resume(
    board: Kanban, executor: KernelExecutor, settings: KernelSettings, monkeypatch
):
    if board.db.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    monkeypatch.setattr(changes, "FALLBACK_S", 0.2)
    watch = board.watch_changes()
    woken: list[str] = []
    monitor = ChangeMonitor(watch, executor, on_change=[lambda: woken.append("x")])
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop))
    await wait_until(lambda: woken == ["x"] and watch.fileno() is not None, "the first listener")

    drop_change_listeners(board.db)
    # The drop is a wake-up (anything may have been missed), and so is the new listener.
    await wait_until(
        lambda: len(woken) >= 3 and watch.fileno() is not None, "a new listener", within=10
    )
    seen = len(woken)
    with Kanban.open(settings) as other:
        other.create(Actor(name="bob"), title="after the drop")

    await wait_until(lambda: len(woken) > seen, "the new listener to announce the create")
    stop.set()
    await asyncio.wait_for(task, 10)
