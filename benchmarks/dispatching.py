"""Dispatcher measurements: an idle pass and a 10-spawn pass on a big board, promotion per
completed parent, and several dispatchers claiming at once without double claims."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field

from benchmarks.backends import Backend
from benchmarks.seed import BoardMix, seed_board
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress, median
from kanban_core import Actor, Kanban, KernelSettings
from kanban_core.config import DispatcherConfig, KanbanConfig
from kanban_core.dispatch.dispatcher import Dispatcher
from kanban_core.dispatch.spawn import WorkerSpec
from kanban_core.profiles import AssigneeProfile
from kanban_core.storage import Database, Query

ASSIGNEE = "coder"
OPERATOR = Actor(name="bench-operator")
_ASSIGN_ACTIVE = Query(
    "bench_assign_active",
    "UPDATE tasks SET assignee = :assignee, lease_expires_ms = :far, deadline_ms = NULL, "
    "not_before_ms = NULL WHERE status IN ('running', 'ready')",
)
_RUNS_TWICE = Query(
    "bench_runs_twice",
    "SELECT count(*) FROM (SELECT task_id FROM task_runs GROUP BY task_id HAVING count(*) > 1) x",
)
_COUNT_RUNS = Query("bench_count_runs", "SELECT count(*) FROM task_runs")


@dataclass
class NullSpawner:
    """Starts nothing: a pass is timed without process start (the issue's "plus process start")."""

    spawned: list[int] = field(default_factory=list)

    def spawn(self, spec: WorkerSpec, token: str) -> int:
        """Pretend to start a supervisor."""
        del token
        self.spawned.append(spec.task_id)
        return 10**9 + len(self.spawned)  # never a real pid

    def reap(self) -> list[tuple[int, int]]:
        """Nothing ever exits."""
        return []


def config(cap: int, total_cap: int) -> KanbanConfig:
    """One capped assignee, a large global cap."""
    profile = AssigneeProfile(name=ASSIGNEE, command=("true",), max_in_progress=cap)
    return KanbanConfig(
        dispatcher=DispatcherConfig(max_in_progress=total_cap), assignees={ASSIGNEE: profile}
    )


def big_board_passes(backend: Backend, sizes: Sizes, log: Progress) -> dict[str, float]:
    """Idle pass (all at cap), a pass that claims and spawns 10, promotion per parent."""
    running = sizes.dispatch_running
    mix = BoardMix(total=sizes.big_board, running=running, ready=sizes.dispatch_ready)
    with backend.board() as url:
        log(f"{backend.name}: seeding a {sizes.big_board:,}-task board for the dispatcher")
        seed_board(url, mix)
        db = Database(url)
        try:
            with db.transaction(write=True) as tx:
                far = int(time.time() * 1000) + 86_400_000
                tx.execute(_ASSIGN_ACTIVE, {"assignee": ASSIGNEE, "far": far})
        finally:
            db.close()
        with backend.open(url) as board:
            cap = {"value": running}
            spawner = NullSpawner()
            dispatcher = Dispatcher(
                board,
                config=lambda: config(cap["value"], running * 4),
                spawner=spawner,
                sweep_every=10**9,  # the rare safety-net sweep is not part of a steady pass
            )
            dispatcher.run_pass()  # warm-up (and the one sweep)
            log(f"{backend.name}: idle dispatcher passes")
            idle = []
            for _ in range(sizes.dispatch_repeats):
                start = time.perf_counter()
                report = dispatcher.run_pass()
                idle.append(time.perf_counter() - start)
                if report.spawned:
                    raise RuntimeError("an idle pass spawned work")
            log(f"{backend.name}: passes that claim and spawn 10")
            spawning = []
            for _ in range(sizes.dispatch_repeats):
                cap["value"] += 10
                start = time.perf_counter()
                report = dispatcher.run_pass()
                spawning.append(time.perf_counter() - start)
                if len(report.spawned) != 10:
                    raise RuntimeError(f"expected 10 spawns, got {len(report.spawned)}")
            promotion = _promotion(board, sizes)
    return {"pass_idle": median(idle), "pass_spawn10": median(spawning), "promotion": promotion}


def _promotion(board: Kanban, sizes: Sizes) -> float:
    """Time of a worker completing a parent that has 10 waiting children (promotion included).

    The parent is claimed first (untimed): the completion timed is its worker's, fenced by the
    run's token, as every dispatched task ends.
    """
    samples = []
    for _ in range(sizes.dispatch_repeats):
        parent = board.create(OPERATOR, title="parent").task
        for i in range(10):
            board.create(OPERATOR, title=f"child {i}", parents=[parent.id])
        claim = board.claim(OPERATOR, parent.id)
        if claim is None:
            raise RuntimeError("the parent could not be claimed")
        worker = Actor(name=OPERATOR.name, run=claim.proof)
        start = time.perf_counter()
        board.complete(worker, parent.id)
        samples.append(time.perf_counter() - start)
    return median(samples)


def _dispatch_until_empty(args: tuple[str, str, int]) -> int:
    url, home, cap = args
    from pathlib import Path

    with Kanban.open(KernelSettings(home=Path(home), db_url=url)) as board:
        spawner = NullSpawner()
        dispatcher = Dispatcher(board, config=lambda: config(cap, cap), spawner=spawner)
        idle = 0
        while idle < 3:
            report = dispatcher.run_pass()
            idle = 0 if report.spawned else idle + 1
        return len(spawner.spawned)


def concurrent_dispatchers(backend: Backend, sizes: Sizes, log: Progress) -> str:
    """Several dispatcher processes on one board: every ready task claimed exactly once."""
    tasks = sizes.dispatch_concurrent_tasks
    with backend.board() as url:
        with backend.open(url) as board:
            for i in range(tasks):
                board.create(OPERATOR, title=f"race {i}", assignee=ASSIGNEE)
        log(f"{backend.name}: {sizes.contention_workers} dispatchers racing for {tasks} tasks")
        context = multiprocessing.get_context("spawn")
        work = [(url, str(backend.home), tasks)] * sizes.contention_workers
        with context.Pool(sizes.contention_workers) as pool:
            spawned = pool.map(_dispatch_until_empty, work)
        db = Database(url)
        try:
            with db.transaction(write=False) as tx:
                twice = int(tx.scalar(_RUNS_TWICE))
                runs = int(tx.scalar(_COUNT_RUNS))
        finally:
            db.close()
    if sum(spawned) != tasks or runs != tasks or twice:
        return f"FAILED: {sum(spawned)} spawned, {runs} runs, {twice} claimed twice"
    return f"{tasks}/{tasks} once ({'/'.join(map(str, spawned))})"
