"""board.batch_claims: several claims in one call, each its own run, within caps and placement."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from kanban_core import (
    Actor,
    Kanban,
    KernelSettings,
    StaleRun,
    Task,
    TaskId,
    TaskStatus,
    ValidationError,
)
from kanban_core.board.batch_claims import Candidate
from kanban_core.board.hosts import HostIdentity
from kanban_core.board.reads import TaskFilter
from tests.kanban_core.support import db_now, event_kinds, rows, set_columns, snapshot, worker
from tests.support import roundtrips

MakeTask = Callable[..., Task]
_READY = TaskFilter(status=TaskStatus.READY)
_SECRET = "-".join(("not", "a", "real", "one"))


def _running(board: Kanban, assignee: str | None = None) -> int:
    if assignee is None:
        sql, params = "SELECT count(*) FROM tasks WHERE status = 'running'", {}
    else:
        sql = "SELECT count(*) FROM tasks WHERE status = 'running' AND assignee = :a"
        params = {"a": assignee}
    return int(rows(board, sql, **params)[0][0])


def test_the_next_tasks_come_in_priority_order_each_with_its_own_run(board, operator, make_task):
    low = make_task(priority=0)
    high = make_task(priority=5)
    middle = make_task(priority=2)
    make_task(priority=0)

    claims = board.claim_next(operator, 3, ttl_s=60)

    assert [c.task.id for c in claims] == [high.id, middle.id, low.id]
    assert len({c.run_id for c in claims}) == 3
    assert len({c.token for c in claims}) == 3
    for claim in claims:
        assert claim.task.status is TaskStatus.RUNNING
        assert event_kinds(board, claim.task.id)[-1] == "claimed"
    # Each token proves its own run and no other.
    first, second = claims[0], claims[1]
    before = snapshot(board)
    forged = dataclasses.replace(first.proof, token=second.token)
    with pytest.raises(StaleRun):
        board.complete(Actor(name="w", run=forged), first.task.id)
    assert snapshot(board) == before
    for claim in claims:
        board.complete(worker(claim), claim.task.id, result="ok")
    assert {board.get(c.task.id).status for c in claims} == {TaskStatus.DONE}


def test_a_batch_takes_what_is_ready_and_no_more(board, operator, make_task):
    make_task()
    waiting = make_task(parents=[make_task().id])
    later = make_task()
    set_columns(board, later.id, not_before_ms=db_now(board) + 3_600_000)

    claims = board.claim_next(operator, 10)

    assert len(claims) == 2
    assert waiting.id not in {c.task.id for c in claims}
    assert later.id not in {c.task.id for c in claims}
    assert board.claim_next(operator, 10) == []


def test_the_board_cap_and_the_assignee_cap_bound_a_batch(board, operator, make_task):
    for _ in range(4):
        make_task(assignee="alpha")
    for _ in range(4):
        make_task(assignee="beta")

    assert len(board.claim_next(operator, 10, max_running=3)) == 3
    assert board.claim_next(operator, 10, max_running=3) == []
    assert len(board.claim_next(operator, 10, assignee="beta", max_running_assignee=2)) == 2
    assert board.claim_next(operator, 10, assignee="beta", max_running_assignee=2) == []
    assert _running(board, "beta") == 2


def test_candidates_are_claimed_in_order_within_each_assignees_cap(board, operator, make_task):
    alpha = [make_task(assignee="alpha").id for _ in range(3)]
    beta = [make_task(assignee="beta").id for _ in range(2)]
    candidates = [
        Candidate(alpha[2], "alpha", 2),
        Candidate(beta[0], "beta", 1),
        Candidate(alpha[0], "alpha", 2),
        Candidate(beta[1], "beta", 1),
        Candidate(alpha[1], "alpha", 2),
    ]

    claims = board.claim_candidates(operator, candidates, max_running=10)

    assert [c.task.id for c in claims] == [alpha[2], beta[0], alpha[0]]
    assert _running(board, "alpha") == 2
    assert _running(board, "beta") == 1


def test_a_candidate_that_changed_since_it_was_read_is_left_alone(board, operator, make_task):
    reassigned = make_task(assignee="alpha")
    taken = make_task(assignee="alpha")
    blocked = make_task(assignee="alpha")
    fine = make_task(assignee="alpha")
    board.assign(operator, reassigned.id, "beta")
    assert board.claim(operator, taken.id) is not None
    board.block(operator, blocked.id, "wait for me")

    claims = board.claim_candidates(
        operator,
        [Candidate(t.id, "alpha", 5) for t in (reassigned, taken, blocked, fine)],
        max_running=None,
    )

    assert [c.task.id for c in claims] == [fine.id]
    assert board.get(reassigned.id).status is TaskStatus.READY
    assert board.get(blocked.id).status is TaskStatus.BLOCKED


def test_the_board_cap_counts_what_others_already_run(board, operator, make_task):
    ids = [make_task(assignee="alpha").id for _ in range(4)]
    assert board.claim(operator, ids[3]) is not None

    claims = board.claim_candidates(
        operator, [Candidate(i, "alpha", None) for i in ids[:3]], max_running=2
    )

    assert [c.task.id for c in claims] == [ids[0]]


def test_a_paused_task_resumes_with_its_chats_told(board, operator, make_task):
    task = make_task()
    board.subscribe(operator, task.id, platform="telegram", chat_id="42")
    set_columns(board, task.id, pause_reason="usage limit")

    (claim,) = board.claim_next(operator, 5)

    assert claim.task.pause_reason is None
    assert event_kinds(board, task.id)[-2:] == ["claimed", "quota_resumed"]
    delivered = rows(
        board,
        "SELECT e.kind FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id "
        "WHERE d.task_id = :id",
        id=task.id,
    )
    assert delivered == [("quota_resumed",)]


def test_a_host_batch_takes_only_its_work_and_a_revoked_host_none(board, operator, make_task):
    alpha = board.enroll_host(operator, name="alpha", labels=(), secret=_SECRET, readmit=False)
    beta = board.enroll_host(operator, name="beta", labels=("gpu",), secret=_SECRET, readmit=False)
    mine = make_task(host="beta").id
    gpu = make_task(label="gpu").id
    theirs = make_task(host="alpha").id
    loose = make_task().id

    board.host = beta
    claimed = {c.task.id for c in board.claim_next(operator, 10)}
    assert claimed == {mine, gpu, loose}
    assert rows(board, "SELECT DISTINCT host_id FROM task_runs") == [(beta.host_id,)]

    spare = make_task().id
    board.revoke_host(operator, "alpha")
    board.host = alpha
    assert board.claim_candidates(operator, [Candidate(spare, None, None)]) == []
    assert board.claim_next(operator, 10) == []
    board.host = HostIdentity(beta.host_id, "beta", "guessed")
    assert board.claim_next(operator, 10) == []
    assert board.get(spare).status is TaskStatus.READY
    assert board.get(theirs).status is TaskStatus.BLOCKED  # bound to the revoked host


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b, op: b.claim_next(op, 0), "between 1 and"),
        (lambda b, op: b.claim_next(op, 1001), "between 1 and"),
        (lambda b, op: b.claim_next(op, 5, max_running=-1), "cannot be negative"),
        (
            lambda b, op: b.claim_candidates(op, [Candidate(TaskId(1), None, -2)]),
            "cannot be negative",
        ),
        (lambda b, op: b.claim_next(op, 5, ttl_s=0), "--ttl"),
    ],
)
def test_bad_batches_are_refused_and_change_nothing(board, operator, make_task, call, message):
    make_task()
    before = snapshot(board)
    with pytest.raises(ValidationError, match=message):
        call(board, operator)
    assert snapshot(board) == before


def test_a_worker_may_not_claim_a_batch(board, operator, make_task):
    claim = board.claim(operator, make_task().id)
    assert claim is not None
    make_task()
    before = snapshot(board)
    with pytest.raises(Exception, match="claim"):
        board.claim_next(worker(claim), 5)
    assert snapshot(board) == before


def test_a_batch_is_one_round_trip_on_postgresql(board, operator, make_task):
    ids = [make_task(assignee="alpha").id for _ in range(5)]
    if board.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    with roundtrips.counting(board.db) as trips:
        claims = board.claim_candidates(
            operator, [Candidate(i, "alpha", 3) for i in ids], max_running=4
        )
    assert len(claims) == 3
    assert trips.count == 1, trips.lines


def test_racing_batches_claim_each_task_once_and_never_pass_a_cap(
    fresh_url: str, tmp_path: Path, operator: Actor
) -> None:
    """Four claimers, each with its own connections, take batches while a sampler reads the
    committed running counts: no task twice, no cap passed, nothing left behind."""
    settings = KernelSettings(home=tmp_path / "race", db_url=fresh_url)
    board = Kanban.open(settings)
    assignees = ("alpha", "beta", "gamma")
    for i in range(120):
        board.create(operator, title=f"race {i}", assignee=assignees[i % 3])
    board_cap, assignee_cap = 5, 2
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    claimed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sampler() -> None:
        with Kanban.open(settings) as reader:
            while not stop.is_set():
                by = rows(
                    reader,
                    "SELECT assignee, count(*) FROM tasks WHERE status = 'running' "
                    "GROUP BY assignee",
                )
                seen.append((sum(n for _, n in by), max((n for _, n in by), default=0)))

    def claimer(k: int) -> None:
        try:
            with Kanban.open(settings) as mine:
                me = Actor(name=f"claimer-{k}")
                while True:
                    claims = (
                        mine.claim_next(
                            me, 3, max_running=board_cap, max_running_assignee=assignee_cap
                        )
                        if k % 2
                        else mine.claim_candidates(
                            me,
                            [
                                Candidate(t.id, t.assignee, assignee_cap)
                                for t in mine.list(_READY)[:6]
                            ],
                            max_running=board_cap,
                        )
                    )
                    if not claims and not mine.list(_READY):
                        return
                    with lock:
                        claimed.extend(c.task.id for c in claims)
                    for claim in claims:
                        mine.complete(worker(claim), claim.task.id, result="ok")
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    watcher = threading.Thread(target=sampler)
    watcher.start()
    threads = [threading.Thread(target=claimer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    stop.set()
    watcher.join(timeout=30)

    assert not errors, errors
    assert sorted(claimed) == sorted(set(claimed))
    assert len(claimed) == 120
    assert seen, "the sampler never read the board"
    assert max(total for total, _ in seen) <= board_cap
    assert max(per for _, per in seen) <= assignee_cap
    assert rows(board, "SELECT count(*) FROM task_runs") == [(120,)]
    board.close()
