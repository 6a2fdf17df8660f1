"""Single-process measurements: claim→complete cycles, ``list``, ``show``, event polls, the CLI."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.backends import Backend
from benchmarks.seed import BoardMix, add_events, seed_board
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress, median, per_call
from kanban_core import Actor, Kanban, TaskId, format_task_id
from kanban_core.commands import CommandContext, run_command
from kanban_core.commands.render import render_blocks
from kanban_core.dispatch import worker_context
from kanban_core.storage import Query

OPERATOR = Actor(name="bench-operator")
TTL_S = 600
#: How many ready tasks a batched worker loop claims per call.
CLAIM_BATCH = 16
_COUNT_STATUS = Query("bench_count_status", "SELECT count(*) FROM tasks WHERE status = :status")
_COUNT_TASKS = Query("bench_count_tasks", "SELECT count(*) FROM tasks")


def cycle(board: Kanban, task_id: TaskId | None = None) -> None:
    """One claim→complete cycle, as a worker does it: claim as operator, complete with proof."""
    claim = board.claim(OPERATOR, task_id, ttl_s=TTL_S)
    if claim is None:
        raise RuntimeError("nothing ready to claim")
    board.complete(Actor(name="bench-worker", run=claim.proof), claim.task.id)


def cycle_rate(board: Kanban, sizes: Sizes) -> float:
    """Median cycles/s over timed batches; the ready queue is refilled (untimed) before each."""
    rates: list[float] = []
    for batch in range(sizes.cycle_batches + 1):  # batch 0 warms up
        for i in range(sizes.cycle_batch):
            board.create(OPERATOR, title=f"cycle task {batch}.{i}")
        start = time.perf_counter()
        for _ in range(sizes.cycle_batch):
            cycle(board)
        elapsed = time.perf_counter() - start
        if batch:
            rates.append(sizes.cycle_batch / elapsed)
    return median(rates)


def batched_cycle_rate(board: Kanban, sizes: Sizes) -> float:
    """Median cycles/s where a worker loop claims ``CLAIM_BATCH`` ready tasks per call and
    completes each (with its own run's proof); refilled and timed as ``cycle_rate``."""
    rates: list[float] = []
    for batch in range(sizes.cycle_batches + 1):  # batch 0 warms up
        for i in range(sizes.cycle_batch):
            board.create(OPERATOR, title=f"batched cycle task {batch}.{i}")
        start = time.perf_counter()
        done = 0
        while done < sizes.cycle_batch:
            claims = board.claim_next(OPERATOR, CLAIM_BATCH, ttl_s=TTL_S)
            if not claims:
                raise RuntimeError("nothing ready to claim")
            for claim in claims:
                board.complete(Actor(name="bench-worker", run=claim.proof), claim.task.id)
            done += len(claims)
        elapsed = time.perf_counter() - start
        if batch:
            rates.append(sizes.cycle_batch / elapsed)
    return median(rates)


def fresh_cycles(backend: Backend, sizes: Sizes, log: Progress) -> list[float]:
    """Measurement 1: cycles/s on a fresh board, claimed one by one and in batches."""
    with backend.board() as url, backend.open(url) as board:
        log(f"{backend.name}: claim→complete on a fresh board")
        single = cycle_rate(board, sizes)
        log(f"{backend.name}: claim→complete on a fresh board, claims in batches of {CLAIM_BATCH}")
        return [single, batched_cycle_rate(board, sizes)]


def big_board(backend: Backend, sizes: Sizes, log: Progress) -> dict[str, float]:
    """Measurements 2 and 4: ``show`` of a 1,000-event task, then cycles, on the big board."""
    mix = BoardMix.realistic(sizes.big_board, todo=sizes.big_todo, show_events=sizes.show_events)
    with backend.board() as url:
        log(f"{backend.name}: building a {sizes.big_board:,}-task board")
        start = time.perf_counter()
        seeded = seed_board(url, mix)
        log(
            f"{backend.name}: built {seeded.tasks:,} tasks, {seeded.events:,} events in "
            f"{time.perf_counter() - start:.1f}s ({_mix_text(seeded.counts)})"
        )
        show_task = seeded.show_task
        assert show_task is not None
        with backend.open(url) as board:
            _check_board(board, sizes.big_board, sizes.big_todo)
            events = len(board.detail(show_task).events)
            if events != sizes.show_events:
                raise RuntimeError(f"the show task has {events} events, not {sizes.show_events}")
            log(f"{backend.name}: show {format_task_id(show_task)} ({events:,} events)")
            show = command_time(board, ["show", format_task_id(show_task)], sizes.show_repeats)
            context = per_call(
                lambda: worker_context.build(board, show_task),
                calls=1,
                repeats=sizes.show_repeats,
                warmup=2,
            )
            log(f"{backend.name}: claim→complete with {sizes.big_todo:,} tasks waiting in todo")
            rate = cycle_rate(board, sizes)
            log(f"{backend.name}: claim→complete, each completion promoting a waiting child")
            promoting = promoting_cycle_rate(board, sizes)
            _check_board(board, None, sizes.big_todo)
    return {"show": show, "cycles_big": rate, "context": context, "cycles_promote": promoting}


def promoting_cycle_rate(board: Kanban, sizes: Sizes) -> float:
    """Median cycles/s where every completion promotes a waiting child: each batch is a chain
    (every task the child of the one before), claimed and completed link by link."""
    rates: list[float] = []
    for batch in range(sizes.cycle_batches + 1):  # batch 0 warms up
        chain = [board.create(OPERATOR, title=f"chain {batch}.0").task.id]
        for i in range(1, sizes.cycle_batch + 1):
            parent = chain[-1]
            chain.append(
                board.create(OPERATOR, title=f"chain {batch}.{i}", parents=[parent]).task.id
            )
        start = time.perf_counter()
        for task_id in chain[:-1]:
            claim = board.claim(OPERATOR, task_id, ttl_s=TTL_S)
            if claim is None:
                raise RuntimeError(f"{format_task_id(task_id)} was not promoted")
            board.complete(Actor(name="bench-worker", run=claim.proof), task_id)
        elapsed = time.perf_counter() - start
        if batch:
            rates.append(sizes.cycle_batch / elapsed)
        cycle(board, chain[-1])  # the chain's end, promoted by the last completion
    return median(rates)


def list_time(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """Measurement 3: in-process ``list`` (parse, query, format, render) on a 10,000-task board."""
    mix = BoardMix.realistic(
        sizes.list_board, todo=sizes.list_board // 10, ready=sizes.list_board // 100
    )
    with backend.board() as url:
        seed_board(url, mix)
        with backend.open(url) as board:
            log(f"{backend.name}: list on a {sizes.list_board:,}-task board")
            return command_time(board, ["list"], sizes.list_repeats)


def command_time(board: Kanban, argv: list[str], repeats: int) -> float:
    """Median seconds of ``run_command`` plus ``render_blocks``, on an already open board."""

    def once() -> None:
        ctx = CommandContext(actor=OPERATOR, open_board=lambda _url: board)
        result = run_command(argv, ctx)
        if not result.ok:
            raise RuntimeError(f"{' '.join(argv)} failed: {'; '.join(result.errors)}")
        render_blocks(result.blocks)

    return per_call(once, calls=1, repeats=repeats, warmup=2)


def poll_time(backend: Backend, sizes: Sizes, log: Progress) -> tuple[float, float | str]:
    """Measurement 5: an empty ``events_after(max_id)`` poll on a big event log; beside it the
    reference's raw-sqlite3 poll of the same log."""
    tasks = max(1_000, sizes.events // 100)
    with backend.board() as url:
        log(f"{backend.name}: building a {sizes.events:,}-event log")
        start = time.perf_counter()
        seed_board(url, BoardMix.realistic(tasks, todo=tasks // 10, ready=tasks // 100))
        total = add_events(url, sizes.events)
        log(f"{backend.name}: {total:,} events in {time.perf_counter() - start:.1f}s")
        with backend.open(url) as board:
            newest = board.max_event_id()

            def poll() -> None:
                if board.events_after(newest):
                    raise RuntimeError("the poll was not empty")

            ours = per_call(poll, calls=sizes.poll_calls, repeats=sizes.poll_repeats)
        if backend.name != "SQLite":
            return ours, "n/a (SQLite only)"
        # The reference's poll: a raw sqlite3 connection, row factory, one SELECT.
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            connection.row_factory = sqlite3.Row

            def raw_poll() -> None:
                query = "SELECT * FROM task_events WHERE id > ? ORDER BY id LIMIT ?"
                if connection.execute(query, (newest, 200)).fetchall():
                    raise RuntimeError("the poll was not empty")

            raw = per_call(raw_poll, calls=sizes.poll_calls, repeats=sizes.poll_repeats)
        finally:
            connection.close()
        return ours, raw


def cli_list(backend: Backend, sizes: Sizes, log: Progress) -> tuple[float, float]:
    """Measurement 6: ``kanban list`` as a whole process on an empty board: wall s, peak RSS B."""
    with backend.board() as url:
        log(f"{backend.name}: `kanban list` subprocess x{sizes.cli_runs}")
        env = {"KANBAN_HOME": str(backend.home), "KANBAN_DB_URL": url, "KANBAN_USER": "bench"}
        walls: list[float] = []
        peaks: list[float] = []
        for run in range(sizes.cli_runs + 1):  # run 0 warms the page cache
            wall, peak = run_cli([*kanban_command(), "list"], env, expect="no matching tasks")
            if run:
                walls.append(wall)
                peaks.append(peak)
        return median(walls), median(peaks)


# The child is started from a bare interpreter, not from this process: Linux carries the forking
# process's resident-set high-water mark into the child's ru_maxrss (fork copies it, vfork+exec
# records the shared mm's), so spawning straight from a benchmark that holds a 100k-task board
# would report the benchmark's memory, not kanban's. The launcher is ~10 MB, below any kanban.
_LAUNCHER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps([wall, peak, done.returncode, done.stdout, done.stderr]))
"""


def run_cli(argv: list[str], env: dict[str, str], *, expect: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (bytes) of one ``kanban`` process, measured by a launcher;
    its output must contain ``expect``. ``env`` adds to the environment without KANBAN_*."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("KANBAN_")}
    launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, *argv]
    done = subprocess.run(launcher, env=base | env, capture_output=True, text=True, check=True)
    wall, peak, code, out, err = json.loads(done.stdout)
    if code != 0 or expect not in out:
        raise RuntimeError(f"{' '.join(argv[1:])} failed ({code}): {err.strip() or out.strip()}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return float(wall), float(peak * scale)


def kanban_command() -> list[str]:
    """The installed ``kanban`` console script next to this interpreter, else ``-m``."""
    script = Path(sys.executable).parent / "kanban"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "kanban_core"]


def _check_board(board: Kanban, total: int | None, todo: int) -> None:
    with board.db.transaction(write=False) as tx:
        have_todo = tx.scalar(_COUNT_STATUS, {"status": "todo"})
        have_total = tx.scalar(_COUNT_TASKS)
    if have_todo != todo or (total is not None and have_total != total):
        raise RuntimeError(
            f"board has {have_total} tasks, {have_todo} todo; expected {total}/{todo}"
        )


def _mix_text(counts: dict[str, int]) -> str:
    return ", ".join(
        f"{status} {n:,}" for status, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
