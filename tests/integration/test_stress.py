"""Many processes hammering one board, on a SQLite file and on PostgreSQL.

* Four processes claim and complete 10,000 ready tasks until nothing is claimable: every task
  must be claimed exactly once, no worker may see an exception (a "database is locked" escaping
  the busy timeout included), and the SQLite file must pass ``PRAGMA integrity_check``.
* Four processes claim with caps (on the board, and per assignee) and complete 1,000 tasks of
  two assignees: after every claim the claimer counts what is running, which must never exceed
  a cap, and every task must still be claimed exactly once.
* Eight processes create with the same idempotency key at the same moment, round after round:
  each round must leave exactly one live task, which every process is handed.

Workers are ``spawn``-ed (no inherited connections) and released together by a barrier.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, TaskStatus
from kanban_core.storage import Query

pytestmark = [pytest.mark.integration, pytest.mark.stress]

N_TASKS = 10_000
N_CLAIMERS = 4
N_CAPPED_TASKS = 1_000
MAX_RUNNING = 3
MAX_RUNNING_ASSIGNEE = 2
ASSIGNEES = ("coder", "reviewer")
N_CREATORS = 8
CREATE_ROUNDS = 20
#: Generous bounds so a hung worker fails the test instead of hanging it.
BARRIER_TIMEOUT_S = 60.0
RESULT_TIMEOUT_S = 110.0

_CTX = multiprocessing.get_context("spawn")
_TABLES = (
    "notify_deliveries, notify_subscriptions, task_events, task_runs, task_comments, "
    "task_links, tasks"
)
# Only NOT NULL columns without a server default need values; the rest keep their defaults.
_INSERT_READY = Query(
    "stress_insert_ready",
    "INSERT INTO tasks (title, status, priority, workspace_kind, created_by, created_ms, "
    "updated_ms, attempts, consecutive_failures) "
    "VALUES (:title, 'ready', :priority, 'scratch', 'stress', {now}, {now}, 0, 0)",
)
_INSERT_ASSIGNED = Query(
    "stress_insert_assigned",
    "INSERT INTO tasks (title, assignee, status, priority, workspace_kind, created_by, "
    "created_ms, updated_ms, attempts, consecutive_failures) "
    "VALUES (:title, :assignee, 'ready', 0, 'scratch', 'stress', {now}, {now}, 0, 0)",
)
_RUNNING = Query(
    "stress_running", "SELECT assignee, count(*) FROM tasks WHERE status = 'running' GROUP BY 1"
)
_READY_LEFT = Query("stress_ready_left", "SELECT count(*) FROM tasks WHERE status = 'ready'")
_TRUNCATE = Query("stress_truncate", f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE")
_RUN_COUNTS = Query("stress_run_counts", "SELECT count(*), count(DISTINCT task_id) FROM task_runs")
_RUN_OUTCOMES = Query(
    "stress_run_outcomes", "SELECT outcome, count(*) FROM task_runs GROUP BY outcome"
)
_STATUS_COUNTS = Query("stress_status_counts", "SELECT status, count(*) FROM tasks GROUP BY status")
_OPEN_LEASES = Query(
    "stress_open_leases",
    "SELECT count(*) FROM tasks WHERE current_run_id IS NOT NULL OR lease_owner IS NOT NULL",
)
_CLAIM_EVENTS = Query(
    "stress_claim_events",
    "SELECT kind, count(*), count(DISTINCT task_id) FROM task_events GROUP BY kind",
)
_KEYED = Query(
    "stress_keyed",
    "SELECT idempotency_key, status, count(*) FROM tasks GROUP BY idempotency_key, status",
)
_INTEGRITY = Query("stress_integrity", "PRAGMA integrity_check")


# -- worker processes (module level, so ``spawn`` can import them) -------------------------------


def _open(url: str, home: str) -> Kanban:
    return Kanban.open(KernelSettings(home=Path(home), db_url=url))


def claim_until_empty(url: str, home: str, name: str, barrier: Any, results: Any) -> None:
    """Claim and complete until nothing is claimable; report the ids or the traceback."""
    claimed: list[int] = []
    error = None
    try:
        with _open(url, home) as board:
            barrier.wait(BARRIER_TIMEOUT_S)
            operator = Actor(name)
            while True:
                claim = board.claim(operator, None)
                if claim is None:
                    break
                worker = Actor(name, run=claim.proof)
                board.complete(worker, claim.task.id, result=f"done by {name}")
                claimed.append(claim.task.id)
    except BaseException:  # noqa: BLE001 - every failure is reported to the test
        error = traceback.format_exc()
    results.put((name, claimed, error))


def claim_with_caps(url: str, home: str, name: str, barrier: Any, results: Any) -> None:
    """Claim under caps until nothing is ready; after each claim, count what runs.

    Reports the claimed ids and the largest counts seen (on the board, for one assignee).
    """
    claimed: list[int] = []
    peak_total = peak_assignee = 0
    error = None
    try:
        with _open(url, home) as board:
            barrier.wait(BARRIER_TIMEOUT_S)
            operator = Actor(name)
            while True:
                claim = board.claim(
                    operator,
                    None,
                    max_running=MAX_RUNNING,
                    max_running_assignee=MAX_RUNNING_ASSIGNEE,
                )
                if claim is None:
                    with board.db.transaction(write=False) as tx:
                        if not tx.scalar(_READY_LEFT):
                            break
                    continue  # at a cap: the others complete theirs soon
                with board.db.transaction(write=False) as tx:
                    running: dict[str, int] = dict(tx.fetchall(_RUNNING))
                peak_total = max(peak_total, sum(running.values()))
                peak_assignee = max(peak_assignee, *running.values())
                board.complete(Actor(name, run=claim.proof), claim.task.id)
                claimed.append(claim.task.id)
    except BaseException:  # noqa: BLE001 - every failure is reported to the test
        error = traceback.format_exc()
    results.put((name, (claimed, peak_total, peak_assignee), error))


def create_with_shared_keys(url: str, home: str, name: str, barrier: Any, results: Any) -> None:
    """Each round, create with that round's key at the same moment as the others."""
    outcomes: list[tuple[int, int, bool]] = []
    error = None
    try:
        with _open(url, home) as board:
            operator = Actor(name)
            for round_no in range(CREATE_ROUNDS):
                barrier.wait(BARRIER_TIMEOUT_S)
                result = board.create(
                    operator, title=f"{name} round {round_no}", idempotency_key=f"race-{round_no}"
                )
                outcomes.append((round_no, result.task.id, result.created))
    except BaseException:  # noqa: BLE001 - every failure is reported to the test
        error = traceback.format_exc()
    results.put((name, outcomes, error))


# -- harness --------------------------------------------------------------------------------------


def run_workers(
    target: Callable[..., None], count: int, url: str, home: Path
) -> dict[str, tuple[Any, str | None]]:
    """Start ``count`` spawned workers, wait for all their reports, return them by name."""
    barrier = _CTX.Barrier(count)
    results = _CTX.Queue()
    processes = [
        _CTX.Process(
            target=target, args=(url, str(home), f"w{i}", barrier, results), name=f"stress-w{i}"
        )
        for i in range(count)
    ]
    for process in processes:
        process.start()
    reports: dict[str, tuple[Any, str | None]] = {}
    try:
        for _ in processes:
            name, value, error = results.get(timeout=RESULT_TIMEOUT_S)
            reports[name] = (value, error)
    except queue.Empty:
        pytest.fail(f"only {sorted(reports)} of {count} workers reported in time")
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        results.close()
        results.join_thread()
    exit_codes = {p.name: p.exitcode for p in processes}
    assert set(exit_codes.values()) == {0}, exit_codes
    return reports


def assert_no_errors(reports: dict[str, tuple[Any, str | None]]) -> None:
    errors = {name: error for name, (_, error) in reports.items() if error is not None}
    assert not errors, "\n\n".join(f"--- {name} ---\n{error}" for name, error in errors.items())


@pytest.fixture(params=["sqlite", "postgresql"])
def stress_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty board: a fresh SQLite file, or the session's PostgreSQL database truncated."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stress.db'}"
        _board(url, tmp_path).close()
        yield url
        return
    url = request.getfixturevalue("pg_database_url")
    with _board(url, tmp_path) as board, board.db.transaction(write=True) as tx:
        tx.execute(_TRUNCATE)
    yield url


def _board(url: str, tmp_path: Path) -> Kanban:
    return Kanban.open(KernelSettings(home=tmp_path / "home", db_url=url))


# -- tests ----------------------------------------------------------------------------------------


def test_every_task_is_claimed_exactly_once(stress_url: str, tmp_path: Path) -> None:
    with _board(stress_url, tmp_path) as board:
        rows = [{"title": f"stress {i}", "priority": i % 5} for i in range(N_TASKS)]
        with board.db.transaction(write=True) as tx:
            tx.executemany(_INSERT_READY, rows)

    reports = run_workers(claim_until_empty, N_CLAIMERS, stress_url, tmp_path / "home")

    assert_no_errors(reports)
    claimed = Counter(task_id for ids, _ in reports.values() for task_id in ids)
    assert len(claimed) == N_TASKS
    twice = [task_id for task_id, times in claimed.items() if times > 1]
    assert not twice, f"claimed more than once: {twice[:20]}"

    with _board(stress_url, tmp_path) as board, board.db.transaction(write=False) as tx:
        assert tuple(tx.fetchone(_RUN_COUNTS) or ()) == (N_TASKS, N_TASKS)
        assert dict(tx.fetchall(_RUN_OUTCOMES)) == {"completed": N_TASKS}
        assert dict(tx.fetchall(_STATUS_COUNTS)) == {TaskStatus.DONE.value: N_TASKS}
        assert tx.scalar(_OPEN_LEASES) == 0
        events = {kind: (n, distinct) for kind, n, distinct in tx.fetchall(_CLAIM_EVENTS)}
        assert events["claimed"] == (N_TASKS, N_TASKS)
        assert events["completed"] == (N_TASKS, N_TASKS)
        if board.db.dialect == "sqlite":
            assert tx.fetchall(_INTEGRITY) == [("ok",)]


def test_caps_hold_for_claimers_racing(stress_url: str, tmp_path: Path) -> None:
    with _board(stress_url, tmp_path) as board:
        rows = [
            {"title": f"capped {i}", "assignee": ASSIGNEES[i % 2]} for i in range(N_CAPPED_TASKS)
        ]
        with board.db.transaction(write=True) as tx:
            tx.executemany(_INSERT_ASSIGNED, rows)

    reports = run_workers(claim_with_caps, N_CLAIMERS, stress_url, tmp_path / "home")

    assert_no_errors(reports)
    peaks = [(total, one) for (_, total, one), _ in reports.values()]
    assert max(total for total, _ in peaks) <= MAX_RUNNING, peaks
    assert max(one for _, one in peaks) <= MAX_RUNNING_ASSIGNEE, peaks
    claimed = Counter(task_id for (ids, _, _), _ in reports.values() for task_id in ids)
    assert len(claimed) == N_CAPPED_TASKS
    assert max(claimed.values()) == 1
    with _board(stress_url, tmp_path) as board, board.db.transaction(write=False) as tx:
        assert dict(tx.fetchall(_STATUS_COUNTS)) == {TaskStatus.DONE.value: N_CAPPED_TASKS}
        assert tuple(tx.fetchone(_RUN_COUNTS) or ()) == (N_CAPPED_TASKS, N_CAPPED_TASKS)


def test_one_live_task_per_idempotency_key(stress_url: str, tmp_path: Path) -> None:
    reports = run_workers(create_with_shared_keys, N_CREATORS, stress_url, tmp_path / "home")

    assert_no_errors(reports)
    for round_no in range(CREATE_ROUNDS):
        seen = [
            (task_id, created)
            for outcomes, _ in reports.values()
            for r, task_id, created in outcomes
            if r == round_no
        ]
        assert len(seen) == N_CREATORS
        assert len({task_id for task_id, _ in seen}) == 1, f"round {round_no}: {seen}"
        assert sum(created for _, created in seen) == 1, f"round {round_no}: {seen}"

    with _board(stress_url, tmp_path) as board, board.db.transaction(write=False) as tx:
        keyed = {(key, status): n for key, status, n in tx.fetchall(_KEYED)}
        assert keyed == {(f"race-{r}", TaskStatus.READY.value): 1 for r in range(CREATE_ROUNDS)}
        if board.db.dialect == "sqlite":
            assert tx.fetchall(_INTEGRITY) == [("ok",)]
