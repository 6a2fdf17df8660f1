"""The dispatch loop: passes at once, on nudges, on ticks and when a worker exits; clean drain."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from gateway.executor import KernelExecutor
from gateway.scheduler import EXIT_CHECK_S, DispatchLoop
from kanban_core import EventKind, TaskStatus
from kanban_core.config import KanbanConfig
from kanban_core.dispatch.dispatcher import Dispatcher, DispatchReport
from kanban_core.dispatch.spawn import WorkerSpec
from tests.gateway.support import wait_until

pytestmark = pytest.mark.anyio

NEVER = 3600.0  # an interval long enough that no tick happens during a test


class StubDispatcher:
    """Counts passes; can hold a pass open until the test releases it."""

    def __init__(self) -> None:
        self.passes = 0
        self.hold = False
        self.in_pass = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def run_pass(self) -> DispatchReport:
        with self._lock:
            self.passes += 1
        self.in_pass.set()
        if self.hold:
            assert self.release.wait(10), "the test never released the pass"
        return DispatchReport()


class FakeSpawner:
    """The process edge: records what would be started; the test says when a worker exits."""

    def __init__(self) -> None:
        self.specs: list[WorkerSpec] = []
        self._exited: list[tuple[int, int]] = []
        self._lock = threading.Lock()
        self._next_pid = 3_000_000

    def spawn(self, spec: WorkerSpec, token: str) -> int:
        assert token
        with self._lock:
            self.specs.append(spec)
            self._next_pid += 1
            return self._next_pid

    def reap(self) -> list[tuple[int, int]]:
        with self._lock:
            done, self._exited = self._exited, []
        return done

    def any_exited(self) -> bool:
        with self._lock:
            return bool(self._exited)

    def exit(self, pid: int, code: int) -> None:
        with self._lock:
            self._exited.append((pid, code))


@pytest.fixture
def stub_executor():
    pool = KernelExecutor(threads=1)
    yield pool
    pool.shutdown()


@asynccontextmanager
async def running(loop: DispatchLoop) -> AsyncIterator[asyncio.Event]:
    """Run the loop in the background; on exit stop it, drain it and wait for ``run`` to end."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(loop.drain(), 10)
        await asyncio.wait_for(task, 10)


async def test_the_first_pass_runs_at_once(stub_executor):
    stub = StubDispatcher()
    reports: list[DispatchReport] = []
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER, on_pass=reports.append)  # type: ignore[arg-type]
    async with running(loop):
        await wait_until(lambda: stub.passes == 1, "the first pass", within=2)
        await wait_until(lambda: len(reports) == 1, "on_pass after the first pass", within=2)


async def test_a_nudge_during_a_pass_causes_exactly_one_more_pass(stub_executor):
    stub = StubDispatcher()
    stub.hold = True
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER)  # type: ignore[arg-type]
    async with running(loop):
        await wait_until(stub.in_pass.is_set, "the first pass")
        for _ in range(3):
            loop.nudge()  # several nudges while busy coalesce into one more pass
        stub.hold = False
        stub.release.set()
        await wait_until(lambda: stub.passes == 2, "the pass the nudges asked for")
        # Nothing else asks for a pass: give the loop a few exit-check periods to (wrongly) run one.
        await asyncio.sleep(3 * EXIT_CHECK_S)
        assert stub.passes == 2


async def test_drain_waits_for_the_pass_in_flight_and_stop_ends_run(stub_executor):
    stub = StubDispatcher()
    stub.hold = True
    reports: list[DispatchReport] = []
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER, on_pass=reports.append)  # type: ignore[arg-type]
    stop = asyncio.Event()
    run = asyncio.create_task(loop.run(stop))
    await wait_until(stub.in_pass.is_set, "the pass to start")
    stop.set()
    drain = asyncio.create_task(loop.drain())
    done, _ = await asyncio.wait({drain, run}, timeout=3 * EXIT_CHECK_S)
    assert done == set(), "drain or run finished while a pass was still in flight"
    stub.release.set()
    await asyncio.wait_for(drain, 5)
    assert len(reports) == 1  # the pass finished (and was reported) before drain returned
    await asyncio.wait_for(run, 5)
    assert stub.passes == 1  # no new pass after stop


async def test_stop_ends_an_idle_loop_promptly(stub_executor):
    stub = StubDispatcher()
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER)  # type: ignore[arg-type]
    stop = asyncio.Event()
    run = asyncio.create_task(loop.run(stop))
    await wait_until(lambda: stub.passes == 1, "the first pass")
    stop.set()
    await asyncio.wait_for(run, 2)
    await asyncio.wait_for(loop.drain(), 1)
    loop.nudge()  # a late nudge after stop runs nothing
    await asyncio.sleep(2 * EXIT_CHECK_S)
    assert stub.passes == 1


async def test_a_failing_pass_does_not_end_the_loop(stub_executor, caplog):
    stub = StubDispatcher()
    calls = []

    def run_pass() -> DispatchReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return DispatchReport()

    stub.run_pass = run_pass  # type: ignore[method-assign]
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="gateway.scheduler"):
        async with running(loop):
            await wait_until(lambda: len(calls) == 1, "the failing pass")
            loop.nudge()
            await wait_until(lambda: len(calls) == 2, "the next pass")
    assert any("dispatcher pass failed" in r.getMessage() for r in caplog.records)


async def test_a_worker_exit_triggers_a_pass(stub_executor):
    stub = StubDispatcher()
    exited = threading.Event()
    original = stub.run_pass

    def run_pass() -> DispatchReport:
        exited.clear()  # the pass reaps the exited supervisor
        return original()

    stub.run_pass = run_pass  # type: ignore[method-assign]
    loop = DispatchLoop(stub, stub_executor, interval_s=NEVER, worker_exited=exited.is_set)  # type: ignore[arg-type]
    async with running(loop):
        await wait_until(lambda: stub.passes == 1, "the first pass")
        exited.set()
        await wait_until(lambda: stub.passes == 2, "the pass after the exit", within=2)
        await asyncio.sleep(3 * EXIT_CHECK_S)
        assert stub.passes == 2  # reaped: no pass loop


async def test_the_timer_ticks_passes(stub_executor):
    stub = StubDispatcher()
    loop = DispatchLoop(stub, stub_executor, interval_s=0.3)  # type: ignore[arg-type]
    async with running(loop):
        await wait_until(lambda: stub.passes >= 4, "passes on the timer", within=5)


@pytest.mark.parametrize("anyio_backend", [("asyncio", {"debug": True})], ids=["asyncio-debug"])
async def test_ticks_wake_the_loop_safely(anyio_backend, stub_executor, caplog):
    """The APScheduler tick must set the loop's asyncio.Event from the loop's own thread.

    AsyncIOScheduler runs plain (non-coroutine) jobs in a thread pool; asyncio.Event is not
    thread-safe. Debug mode makes the violation visible instead of a silent, racy late wake-up.
    """
    stub = StubDispatcher()
    loop = DispatchLoop(stub, stub_executor, interval_s=0.3)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        async with running(loop):
            await wait_until(lambda: stub.passes >= 4, "passes on the timer", within=5)
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], [r.getMessage() for r in problems]


# -- a real dispatcher on the fixture board -----------------------------------------------------


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner()


@pytest.fixture
def dispatcher(board, spawner) -> Dispatcher:
    return Dispatcher(board, config=KanbanConfig, spawner=spawner, name="gateway-test")


async def test_a_real_dispatcher_spawns_on_the_first_pass_and_on_nudges(
    board, make_task, executor, spawner, dispatcher
):
    first = make_task(title="first", assignee="demo")
    reports: list[Any] = []
    loop = DispatchLoop(
        dispatcher,
        executor,
        interval_s=NEVER,
        worker_exited=spawner.any_exited,
        on_pass=reports.append,
    )
    async with running(loop):
        await wait_until(lambda: len(spawner.specs) == 1, "the first spawn")
        assert spawner.specs[0].task_id == first.id
        assert board.get(first.id).status is TaskStatus.RUNNING
        second = make_task(title="second", assignee="demo")
        loop.nudge()
        await wait_until(lambda: len(spawner.specs) == 2, "the nudged spawn", within=2)
        assert spawner.specs[1].task_id == second.id
    assert [s.task_id for r in reports for s in r.spawned] == [first.id, second.id]


async def test_a_real_dispatcher_notices_a_worker_exit_without_a_nudge(
    board, make_task, executor, spawner, dispatcher
):
    task = make_task(title="doomed", assignee="demo")
    loop = DispatchLoop(dispatcher, executor, interval_s=NEVER, worker_exited=spawner.any_exited)
    async with running(loop):
        await wait_until(lambda: len(spawner.specs) == 1, "the spawn")
        (run,) = board.runs(task.id)
        assert run.worker_pid is not None
        spawner.exit(run.worker_pid, 9)  # the supervisor died without recording a verdict
        await wait_until(
            lambda: EventKind.CRASHED in [e.kind for e in board.detail(task.id).events],
            "the dispatcher to record the crash",
            within=3,
        )
    assert board.get(task.id).status is TaskStatus.READY  # back in the queue, with backoff
