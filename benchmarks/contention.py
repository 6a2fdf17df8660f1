"""Several processes claiming one board's ready tasks at once: throughput and exactly-once checks.

Each worker process opens the board through the facade, waits at a barrier (so process start-up
is not timed), then loops ``claim(None)`` (or ``claim_next`` of a batch) + ``complete`` until
nothing is left. Afterwards every
task must be done with exactly one run, no worker may have seen "database is locked" (or any
other error), and on SQLite ``PRAGMA integrity_check`` must say ok.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from threading import BrokenBarrierError

from benchmarks.backends import Backend
from benchmarks.seed import BoardMix, seed_board
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress, median
from kanban_core import Actor, Kanban, KernelSettings
from kanban_core.storage import Database, Query

_START_TIMEOUT_S = 120
_RUN_TIMEOUT_S = 900
_MAX_ERRORS = 50

_RUNS = Query("bench_runs", "SELECT count(*) FROM task_runs")
_DUPLICATE_RUNS = Query(
    "bench_duplicate_runs",
    "SELECT count(*) FROM (SELECT task_id FROM task_runs GROUP BY task_id "
    "HAVING count(*) > 1) AS dupes",
)
_NOT_DONE = Query("bench_not_done", "SELECT count(*) FROM tasks WHERE status <> 'done'")
_OPEN_RUNS = Query("bench_open_runs", "SELECT count(*) FROM task_runs WHERE ended_ms IS NULL")
_INTEGRITY = Query("bench_integrity", "PRAGMA integrity_check")


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """What one worker did."""

    claims: int = 0
    completes: int = 0
    locked: int = 0
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class Round:
    """One repetition: throughput and whatever went wrong."""

    claims_per_s: float
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Contention:
    """All repetitions."""

    claims_per_s: float
    rounds: int
    ok: int
    problems: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """``20/20 ok`` (marked ✗ when any round failed)."""
        return f"{self.ok}/{self.rounds} ok" + ("" if self.ok == self.rounds else " ✗")


def run(backend: Backend, sizes: Sizes, log: Progress, *, batch: int = 1) -> Contention:
    """``sizes.contention_reps`` rounds on fresh boards; each claim takes up to ``batch``."""
    rounds: list[Round] = []
    for rep in range(sizes.contention_reps):
        with backend.board() as url:
            seed_board(url, BoardMix(total=sizes.contention_tasks, ready=sizes.contention_tasks))
            result = _round(backend, url, sizes, batch)
            result.problems += _verify(url, sizes.contention_tasks)
        rounds.append(result)
        status = "ok" if not result.problems else "FAILED: " + "; ".join(result.problems)
        log(
            f"{backend.name}: {sizes.contention_workers} claimers (batches of {batch}), "
            f"round {rep + 1}/"
            f"{sizes.contention_reps}: {result.claims_per_s:,.0f} claims/s, {status}"
        )
    problems = tuple(
        f"round {i + 1}: {problem}" for i, r in enumerate(rounds) for problem in r.problems
    )
    return Contention(
        claims_per_s=median([r.claims_per_s for r in rounds]),
        rounds=len(rounds),
        ok=sum(1 for r in rounds if not r.problems),
        problems=problems,
    )


def _round(backend: Backend, url: str, sizes: Sizes, batch: int) -> Round:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(sizes.contention_workers + 1)
    reports: Queue[WorkerReport] = ctx.Queue()
    home = str(backend.home)
    procs: list[BaseProcess] = [
        ctx.Process(target=worker, args=(url, home, barrier, reports, batch), daemon=True)
        for _ in range(sizes.contention_workers)
    ]
    for proc in procs:
        proc.start()
    got: list[WorkerReport] = []
    elapsed = 0.0
    try:
        barrier.wait(timeout=_START_TIMEOUT_S)
        start = time.perf_counter()
        deadline = time.monotonic() + _RUN_TIMEOUT_S
        for _ in procs:
            got.append(reports.get(timeout=max(0.1, deadline - time.monotonic())))
        elapsed = time.perf_counter() - start
    except (BrokenBarrierError, queue.Empty) as exc:
        got.append(WorkerReport(errors=(f"workers did not finish: {type(exc).__name__}",)))
        got += _drain(reports)
    except BaseException:  # Ctrl-C: do not leave claimers behind
        _stop(procs, grace_s=0)
        raise
    _stop(procs, grace_s=10)
    claims = sum(r.claims for r in got)
    problems = [error for r in got for error in r.errors]
    locked = sum(r.locked for r in got)
    if locked:
        problems.insert(0, f'{locked} "database is locked" errors surfaced')
    if claims != sizes.contention_tasks:
        problems.append(f"{claims} claims for {sizes.contention_tasks} tasks")
    return Round(claims / elapsed if elapsed else 0.0, problems)


def _drain(reports: Queue[WorkerReport]) -> list[WorkerReport]:
    """Whatever the workers did report after a failure."""
    got: list[WorkerReport] = []
    while True:
        try:
            got.append(reports.get(timeout=1))
        except queue.Empty:
            return got


def _stop(procs: list[BaseProcess], *, grace_s: float) -> None:
    """Join the workers (which exit on their own), terminating any still alive after the grace."""
    for proc in procs:
        proc.join(timeout=grace_s)
        if proc.is_alive():
            proc.terminate()
            proc.join()


def worker(
    url: str, home: str, barrier: Barrier, reports: Queue[WorkerReport], batch: int = 1
) -> None:
    """A claimer process: open, wait for the start, claim and complete until nothing is left."""
    try:
        board = Kanban.open(KernelSettings(home=Path(home), db_url=url))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which counts it
        reports.put(WorkerReport(errors=(f"open failed: {exc}",)))
        barrier.abort()
        return
    try:
        barrier.wait(timeout=_START_TIMEOUT_S)
        reports.put(_claim_until_empty(board, batch))
    except BrokenBarrierError:
        reports.put(WorkerReport(errors=("the start barrier broke",)))
    finally:
        board.close()


def _claim_until_empty(board: Kanban, batch: int) -> WorkerReport:
    operator = Actor(name=f"claimer-{multiprocessing.current_process().pid}")
    claims = completes = locked = 0
    errors: list[str] = []

    def failed(exc: Exception, verb: str) -> None:
        nonlocal locked
        if "locked" in str(exc).lower():
            locked += 1
        else:
            errors.append(f"{verb}: {type(exc).__name__}: {exc}")

    while locked + len(errors) < _MAX_ERRORS:
        try:
            if batch == 1:
                claim = board.claim(operator, None, ttl_s=600)
                taken = [] if claim is None else [claim]
            else:
                taken = board.claim_next(operator, batch, ttl_s=600)
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
            failed(exc, "claim")
            continue
        if not taken:
            break
        claims += len(taken)
        for claim in taken:
            try:
                board.complete(Actor(name=operator.name, run=claim.proof), claim.task.id)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                failed(exc, "complete")
            else:
                completes += 1
    return WorkerReport(claims, completes, locked, tuple(errors[:5]))


def _verify(url: str, tasks: int) -> list[str]:
    """Exactly-once: one run per task, every task done, no open run, an intact database."""
    problems: list[str] = []
    db = Database(url)
    try:
        with db.transaction(write=False) as tx:
            runs = tx.scalar(_RUNS)
            dupes = tx.scalar(_DUPLICATE_RUNS)
            not_done = tx.scalar(_NOT_DONE)
            open_runs = tx.scalar(_OPEN_RUNS)
            integrity = (
                [str(row[0]) for row in tx.fetchall(_INTEGRITY)] if db.dialect == "sqlite" else []
            )
    finally:
        db.close()
    if runs != tasks:
        problems.append(f"task_runs has {runs} rows for {tasks} tasks")
    if dupes:
        problems.append(f"{dupes} tasks were claimed more than once")
    if not_done:
        problems.append(f"{not_done} tasks are not done")
    if open_runs:
        problems.append(f"{open_runs} runs are still open")
    if integrity and integrity != ["ok"]:
        problems.append("integrity_check: " + "; ".join(integrity[:3]))
    return problems
