"""Dispatcher.run_pass: ordering, live caps, dry runs, reporting, backoff, failure accounting,
lease and deadline recovery, reaping supervisors, health, and several dispatchers on one board.

The spawner is the process edge, so it is faked here (it records what it was asked to start and
hands out pids that cannot exist); everything behind it — the board, its database and the
failure policy — is real, on in-memory SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from kanban_core import (
    Actor,
    BlockKind,
    Claim,
    Kanban,
    KernelSettings,
    RunId,
    RunOutcome,
    RunProof,
    StaleRun,
    Task,
    TaskId,
    TaskStatus,
    ValidationError,
)
from kanban_core.config import DispatcherConfig, KanbanConfig
from kanban_core.dispatch import health
from kanban_core.dispatch.dispatcher import Dispatcher, DispatchReport
from kanban_core.dispatch.logs import log_path
from kanban_core.dispatch.spawn import SpawnError, WorkerSpec
from kanban_core.permission_policy import (
    DEFAULT_POLICY,
    PermissionPolicy,
    PermissionRule,
    PolicyAction,
)
from kanban_core.profiles import AssigneeProfile
from kanban_core.storage import Query

#: Process ids above the kernel's pid_max (at most 2**22): a signal sent to one — the
#: dispatcher kills the process group of an overdue run on its own host — reaches nobody.
FAKE_PID_BASE = 1_000_000_000


class FakeSpawner:
    """The Spawner protocol, in memory: records each start, can fail, reaps what it is told."""

    _pids = iter(range(FAKE_PID_BASE, FAKE_PID_BASE + 10_000_000))
    _pids_lock = threading.Lock()

    def __init__(self) -> None:
        self.started: list[tuple[WorkerSpec, str, int]] = []
        #: While set, every spawn raises SpawnError with this message.
        self.failure: str | None = None
        #: (pid, exit code) pairs the next reap() returns.
        self.exited: list[tuple[int, int]] = []
        self.reaps = 0

    def spawn(self, spec: WorkerSpec, token: str) -> int:
        if self.failure is not None:
            raise SpawnError(self.failure)
        with self._pids_lock:
            pid = next(self._pids)
        self.started.append((spec, token, pid))
        return pid

    def reap(self) -> list[tuple[int, int]]:
        self.reaps += 1
        done, self.exited = self.exited, []
        return done

    def started_ids(self) -> list[TaskId]:
        return [TaskId(spec.task_id) for spec, _, _ in self.started]

    def entry(self, task_id: TaskId) -> tuple[WorkerSpec, str, int]:
        (found,) = [e for e in self.started if e[0].task_id == task_id]
        return found

    def proof(self, task_id: TaskId) -> RunProof:
        spec, token, _ = self.entry(task_id)
        return RunProof(TaskId(spec.task_id), RunId(spec.run_id), token)

    def pid(self, task_id: TaskId) -> int:
        return self.entry(task_id)[2]


def profile(name: str, cap: int | None = None, **kwargs: Any) -> AssigneeProfile:
    return AssigneeProfile(
        name=name, command=("agent", "--task", "{task_id}"), max_in_progress=cap, **kwargs
    )


class ConfigHolder:
    """The dispatcher's ``config`` callable; a test edits it between passes."""

    def __init__(self, *profiles: AssigneeProfile, **dispatcher: Any) -> None:
        self.profiles = {p.name: p for p in profiles}
        self.dispatcher = DispatcherConfig(**dispatcher)
        self.reads = 0
        self.error: Exception | None = None

    def __call__(self) -> KanbanConfig:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return KanbanConfig(dispatcher=self.dispatcher, assignees=dict(self.profiles))

    def set(self, **changes: Any) -> None:
        self.dispatcher = dataclasses.replace(self.dispatcher, **changes)

    def set_cap(self, name: str, cap: int | None) -> None:
        self.profiles[name] = dataclasses.replace(self.profiles[name], max_in_progress=cap)


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner()


@pytest.fixture
def config() -> ConfigHolder:
    return ConfigHolder(profile("alpha"), profile("beta"), max_in_progress=10, failure_limit=3)


@pytest.fixture
def dispatcher(board: Kanban, config: ConfigHolder, spawner: FakeSpawner) -> Dispatcher:
    # A unique name: health rows are not emptied between PostgreSQL tests.
    return Dispatcher(board, config=config, spawner=spawner, name=f"test-{uuid.uuid4().hex[:8]}")


# -- raw helpers ------------------------------------------------------------------------------


def execute(board: Kanban, sql: str, **params: Any) -> int:
    """A raw write through the board's database (``{now}`` is the database clock)."""
    with board.db.transaction(write=True) as tx:
        return tx.execute(Query("test_dispatcher_write", sql), params)


def scalar(board: Kanban, sql: str, **params: Any) -> Any:
    with board.db.transaction(write=False) as tx:
        return tx.scalar(Query("test_dispatcher_read", sql), params)


def make_due(board: Kanban, task_id: TaskId) -> None:
    """Pretend the backoff has elapsed."""
    assert execute(board, "UPDATE tasks SET not_before_ms = {now} - 1 WHERE id = :id", id=task_id)


def kinds(board: Kanban, task_id: TaskId) -> list[str]:
    return [event.kind for event in board.detail(task_id).events]


def statuses(board: Kanban, ids: Iterable[TaskId]) -> list[TaskStatus]:
    return [board.get(task_id).status for task_id in ids]


def running_count(board: Kanban) -> int:
    return int(scalar(board, "SELECT count(*) FROM tasks WHERE status = 'running'"))


def complete_as_worker(board: Kanban, spawner: FakeSpawner, task_id: TaskId) -> Task:
    proof = spawner.proof(task_id)
    return board.complete(Actor(name="agent", run=proof), task_id, summary="done")


def make_tasks(make_task: Callable[..., Task], n: int, **kwargs: Any) -> list[TaskId]:
    return [make_task(**kwargs).id for _ in range(n)]


# -- ordering ---------------------------------------------------------------------------------


def test_claims_by_priority_then_age_across_assignees(board, dispatcher, spawner, make_task):
    low_old = make_task(title="low old", assignee="alpha", priority=1).id
    high_beta = make_task(title="high beta", assignee="beta", priority=5).id
    mid_young = make_task(title="mid young", assignee="alpha", priority=3).id
    mid_old = make_task(title="mid old", assignee="beta", priority=3).id
    high_alpha = make_task(title="high alpha", assignee="alpha", priority=5).id
    # Age is creation time, not id: the later-created "old" ones are made older by hand.
    base = int(scalar(board, "SELECT min(created_ms) FROM tasks"))
    ages = {low_old: 0, high_beta: 40, mid_young: 50, mid_old: 10, high_alpha: 20}
    for task_id, offset in ages.items():
        execute(
            board, "UPDATE tasks SET created_ms = :ms WHERE id = :id", ms=base + offset, id=task_id
        )

    report = dispatcher.run_pass()

    expected = [high_alpha, high_beta, mid_old, mid_young, low_old]
    assert [s.task_id for s in report.spawned] == expected
    assert spawner.started_ids() == expected
    assert [s.assignee for s in report.spawned] == ["alpha", "beta", "beta", "alpha", "alpha"]
    assert statuses(board, expected) == [TaskStatus.RUNNING] * 5


def test_the_global_cap_takes_the_best_tasks_of_every_assignee(
    board, dispatcher, spawner, config, make_task
):
    config.set(max_in_progress=3)
    alpha = [make_task(assignee="alpha", priority=p).id for p in (1, 9, 2)]
    beta = [make_task(assignee="beta", priority=p).id for p in (8, 3, 0)]

    report = dispatcher.run_pass()

    assert [s.task_id for s in report.spawned] == [alpha[1], beta[0], beta[1]]
    assert running_count(board) == 3


def test_the_spawn_spec_carries_the_run_profile_and_timing(
    board, dispatcher, spawner, config, make_task
):
    config.profiles["alpha"] = profile(
        "alpha", env={"MODE": "ci"}, pass_env=("API_KEY",), max_runtime_s=600
    )
    config.set(lease_ttl_seconds=45, terminate_grace_seconds=7, failure_limit=4)
    by_profile = make_task(assignee="alpha").id
    by_task = make_task(assignee="alpha", max_runtime_s=30).id

    report = dispatcher.run_pass()

    assert {s.task_id for s in report.spawned} == {by_profile, by_task}
    spec, token, pid = spawner.entry(by_profile)
    task = board.get(by_profile)
    assert spec.run_id == task.current_run_id
    assert spec.assignee == "alpha"
    assert spec.command == ("agent", "--task", "{task_id}")
    assert spec.db_url == board.settings.db_url
    assert spec.home == str(board.settings.home)
    assert dict(spec.env) == {"MODE": "ci"}
    assert spec.pass_env == ("API_KEY",)
    assert (spec.lease_ttl_s, spec.terminate_grace_s, spec.failure_limit) == (45, 7, 4)
    assert spec.max_runtime_s == 600
    assert spawner.entry(by_task)[0].max_runtime_s == 30  # the task's own limit wins
    assert len(token) >= 20
    # The token proves the run: the worker can heartbeat with it.
    board.heartbeat(Actor(name="agent", run=spawner.proof(by_profile)), by_profile)
    (run,) = board.runs(by_profile)
    assert run.worker_pid == pid
    assert run.status == "running"
    assert "spawned" in kinds(board, by_profile)


def test_the_spawn_spec_carries_the_profiles_permission_policy(
    dispatcher, spawner, config, make_task
):
    policy = PermissionPolicy((PermissionRule(PolicyAction.ALLOW, tools=("pytest*",)),))
    config.profiles["alpha"] = profile("alpha", permissions=policy.then(DEFAULT_POLICY))
    task_id = make_task(assignee="alpha").id

    dispatcher.run_pass()

    spec = WorkerSpec.from_json(spawner.entry(task_id)[0].to_json())
    assert spec.profile().permissions == policy.then(DEFAULT_POLICY)


# -- caps -------------------------------------------------------------------------------------


def test_global_cap_is_a_live_count_reread_every_pass(
    board, operator, dispatcher, spawner, config, make_task
):
    config.set(max_in_progress=2)
    ids = make_tasks(make_task, 5, assignee="alpha")

    assert len(dispatcher.run_pass().spawned) == 2
    assert dispatcher.run_pass().spawned == []  # the two are still running
    assert running_count(board) == 2

    config.set(max_in_progress=3)  # an edited config applies on the next pass
    assert [s.task_id for s in dispatcher.run_pass().spawned] == [ids[2]]

    complete_as_worker(board, spawner, ids[0])  # a slot frees up when a task finishes
    assert [s.task_id for s in dispatcher.run_pass().spawned] == [ids[3]]

    # Running tasks count whoever claimed them, not only this dispatcher's workers.
    config.set(max_in_progress=4)
    other = make_task(assignee="beta").id
    assert board.claim(operator, other) is not None
    assert dispatcher.run_pass().spawned == []
    assert running_count(board) == 4
    assert config.reads == 5


def test_per_assignee_cap_is_a_live_count(board, dispatcher, spawner, config, make_task):
    config.set_cap("alpha", 1)
    config.set_cap("beta", 2)
    alpha = make_tasks(make_task, 3, assignee="alpha")
    beta = make_tasks(make_task, 3, assignee="beta")

    first = dispatcher.run_pass()
    assert sorted(s.task_id for s in first.spawned) == [alpha[0], beta[0], beta[1]]

    second = dispatcher.run_pass()
    assert second.spawned == []
    assert sorted(second.at_capacity) == ["alpha", "beta"]

    config.set_cap("alpha", 2)
    third = dispatcher.run_pass()
    assert [s.task_id for s in third.spawned] == [alpha[1]]
    assert third.at_capacity == ["beta"]

    complete_as_worker(board, spawner, beta[0])
    assert [s.task_id for s in dispatcher.run_pass().spawned] == [beta[2]]
    assert statuses(board, [alpha[2]]) == [TaskStatus.READY]


def test_per_assignee_cap_never_exceeds_the_global_cap(board, dispatcher, config, make_task):
    config.set(max_in_progress=2)
    config.set_cap("alpha", 5)
    make_tasks(make_task, 4, assignee="alpha")

    assert len(dispatcher.run_pass().spawned) == 2
    assert running_count(board) == 2


def test_the_claim_rechecks_the_caps_another_claimer_filled_during_the_pass(
    board: Kanban,
    operator: Actor,
    dispatcher: Dispatcher,
    spawner: FakeSpawner,
    config: ConfigHolder,
    make_task: Callable[..., Task],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config.set(max_in_progress=2)
    alpha = make_tasks(make_task, 2, assignee="alpha")
    elsewhere = make_task(assignee="beta").id
    claim_candidates = board.claim_candidates

    def another_host_claims_first(*args: Any, **kwargs: Any) -> list[Claim]:
        # Between this pass's count and its claim, someone else takes a slot.
        assert board.claim(operator, elsewhere) is not None
        return claim_candidates(*args, **kwargs)

    monkeypatch.setattr(board, "claim_candidates", another_host_claims_first)

    report = dispatcher.run_pass()

    assert [s.task_id for s in report.spawned] == [alpha[0]]
    assert running_count(board) == 2
    assert statuses(board, [alpha[1]]) == [TaskStatus.READY]


# -- dry run and --max ------------------------------------------------------------------------


def test_dry_run_claims_nothing(board, dispatcher, spawner, config, make_task):
    config.set(max_in_progress=2)
    low = make_task(assignee="alpha", priority=0).id
    high = make_task(assignee="beta", priority=1).id
    make_task(assignee="alpha", priority=-1)
    loose = make_task().id
    events_before = {t.id: kinds(board, t.id) for t in board.list()}

    report = dispatcher.run_pass(dry_run=True)

    assert report.would_spawn == [(high, "beta"), (low, "alpha")]
    assert report.spawned == []
    assert report.skipped_unassigned == [loose]
    assert spawner.started == []
    assert spawner.reaps == 0
    assert running_count(board) == 0
    assert {t.id: kinds(board, t.id) for t in board.list()} == events_before
    assert scalar(board, "SELECT count(*) FROM task_runs") == 0
    assert [h for h in health.read(board) if h.name == dispatcher.name] == []

    # A real pass afterwards does what the dry run said it would.
    assert [(s.task_id, s.assignee) for s in dispatcher.run_pass().spawned] == report.would_spawn


def test_max_limits_the_spawns_of_one_pass(board, dispatcher, spawner, make_task):
    ids = make_tasks(make_task, 5, assignee="alpha")

    assert dispatcher.run_pass(max_spawn=0).spawned == []
    assert [s.task_id for s in dispatcher.run_pass(max_spawn=2).spawned] == ids[:2]
    assert [t for t, _ in dispatcher.run_pass(dry_run=True, max_spawn=1).would_spawn] == [ids[2]]
    assert [s.task_id for s in dispatcher.run_pass().spawned] == ids[2:]


# -- what nobody can run ----------------------------------------------------------------------


def test_unassigned_and_unknown_assignees_are_reported_and_stay_ready(
    board, dispatcher, spawner, make_task
):
    loose = make_task(title="nobody's").id
    ghost = [make_task(assignee="ghost").id, make_task(assignee="ghost").id]
    mine = make_task(assignee="alpha").id
    # Unknown names on both sides of a known one, in index order: each is found.
    first, last = make_task(assignee="aardvark").id, make_task(assignee="zed").id
    unknown = {"aardvark": [first], "ghost": ghost, "zed": [last]}

    report = dispatcher.run_pass()

    assert [s.task_id for s in report.spawned] == [mine]
    assert report.skipped_unassigned == [loose]
    assert report.skipped_unknown == unknown
    assert statuses(board, [loose, *ghost, first, last]) == [TaskStatus.READY] * 5
    data = report.to_json()
    assert data["skipped_unassigned"] == [f"t{loose}"]
    assert data["skipped_unknown_assignee"]["ghost"] == [f"t{t}" for t in ghost]
    assert report.counts()["unassigned"] == 1
    assert report.counts()["unknown_assignee"] == 4

    again = dispatcher.run_pass()  # still reported, still not dropped
    assert again.skipped_unassigned == [loose]
    assert again.skipped_unknown == unknown
    assert kinds(board, loose) == ["created"]


# -- failures ---------------------------------------------------------------------------------


def test_spawn_failure_records_a_run_and_backs_off(board, dispatcher, spawner, make_task):
    task_id = make_task(assignee="alpha").id
    spawner.failure = "no such agent: agent"

    report = dispatcher.run_pass()

    assert report.spawned == []
    assert report.spawn_failed == [(task_id, "no such agent: agent")]
    assert report.gave_up == []
    task = board.get(task_id)
    assert task.status is TaskStatus.READY
    assert task.consecutive_failures == 1
    assert task.last_failure_error == "no such agent: agent"
    assert task.current_run_id is None
    assert task.not_before_ms is not None
    (run,) = board.runs(task_id)
    assert run.outcome is RunOutcome.SPAWN_FAILED
    assert run.error == "no such agent: agent"
    assert run.ended_ms is not None
    (event,) = [e for e in board.detail(task_id).events if e.kind == "spawn_failed"]
    assert event.payload is not None
    assert event.payload["failures"] == 1
    assert event.payload["limit"] == 3
    assert event.payload["backoff_ms"] == 30_000


def test_backoff_keeps_a_failed_task_from_being_reclaimed_until_due(
    board, dispatcher, spawner, make_task
):
    task_id = make_task(assignee="alpha").id
    spawner.failure = "boom"
    dispatcher.run_pass()
    spawner.failure = None

    for _ in range(2):
        report = dispatcher.run_pass()
        assert report.spawned == []
        assert report.spawn_failed == []
    assert board.get(task_id).status is TaskStatus.READY
    assert dispatcher.run_pass(dry_run=True).would_spawn == []

    make_due(board, task_id)
    assert [s.task_id for s in dispatcher.run_pass().spawned] == [task_id]
    task = board.get(task_id)
    assert task.status is TaskStatus.RUNNING
    assert task.attempts == 2
    assert task.consecutive_failures == 1  # only a verdict resets the count


def test_backoff_of_one_task_does_not_hold_up_the_others(board, dispatcher, spawner, make_task):
    failing = make_task(assignee="alpha", priority=9).id
    spawner.failure = "boom"
    dispatcher.run_pass()
    spawner.failure = None
    later = make_task(assignee="alpha", priority=0).id

    assert [s.task_id for s in dispatcher.run_pass().spawned] == [later]
    assert board.get(failing).status is TaskStatus.READY


def test_backoff_grows_exponentially_up_to_the_cap(board, dispatcher, spawner, config, make_task):
    config.set(failure_limit=5, backoff_base_seconds=10, backoff_cap_seconds=25)
    task_id = make_task(assignee="alpha").id
    spawner.failure = "boom"
    for _ in range(4):
        make_due(board, task_id)
        dispatcher.run_pass()
    backoffs = [
        e.payload["backoff_ms"]
        for e in board.detail(task_id).events
        if e.kind == "spawn_failed" and e.payload is not None
    ]
    assert backoffs == [10_000, 20_000, 25_000, 25_000]


def test_spawn_failures_give_up_at_the_limit_and_unblock_resets_the_count(
    board, operator, dispatcher, spawner, make_task
):
    task_id = make_task(assignee="alpha").id
    for attempt in (1, 2):
        spawner.failure = f"failure number {attempt}"
        report = dispatcher.run_pass()
        assert report.gave_up == []
        assert board.get(task_id).consecutive_failures == attempt
        make_due(board, task_id)

    spawner.failure = "failure number 3"
    report = dispatcher.run_pass()

    assert report.spawn_failed == [(task_id, "failure number 3")]
    assert report.gave_up == [task_id]
    assert report.to_json()["auto_blocked"] == [f"t{task_id}"]
    task = board.get(task_id)
    assert task.status is TaskStatus.BLOCKED
    assert task.block_kind is BlockKind.GAVE_UP
    assert task.last_failure_error == "failure number 3"
    assert task.consecutive_failures == 3
    assert [r.outcome for r in board.runs(task_id)] == [RunOutcome.SPAWN_FAILED] * 3
    gave_up = [e for e in board.detail(task_id).events if e.kind == "gave_up"]
    assert len(gave_up) == 1
    assert gave_up[0].payload is not None
    assert gave_up[0].payload["error"] == "failure number 3"
    assert gave_up[0].payload["trigger"] == "spawn_failed"
    assert kinds(board, task_id).count("spawn_failed") == 3

    # Blocked stays blocked: later passes neither claim nor lift it.
    spawner.failure = None
    for _ in range(3):
        assert dispatcher.run_pass().spawned == []
    assert board.get(task_id).status is TaskStatus.BLOCKED

    unblocked = board.unblock(operator, task_id, reason="agent installed")
    assert unblocked.status is TaskStatus.READY
    assert unblocked.consecutive_failures == 0
    assert unblocked.last_failure_error is None
    assert unblocked.not_before_ms is None

    # The count starts again from zero: one more failure is the first, not the fourth.
    spawner.failure = "failure after unblock"
    report = dispatcher.run_pass()
    assert report.spawn_failed == [(task_id, "failure after unblock")]
    assert report.gave_up == []
    task = board.get(task_id)
    assert (task.status, task.consecutive_failures) == (TaskStatus.READY, 1)

    make_due(board, task_id)
    spawner.failure = None
    assert [s.task_id for s in dispatcher.run_pass().spawned] == [task_id]


# -- recovery ---------------------------------------------------------------------------------


def test_only_the_leader_reclaims_and_a_follower_still_claims(board, config, spawner, make_task):
    leading = [False]
    follower = Dispatcher(
        board, config=config, spawner=spawner, name="follower", leader=lambda: leading[0]
    )
    stale = make_task(assignee="alpha").id
    follower.run_pass()
    execute(board, "UPDATE tasks SET lease_expires_ms = {now} - 1000 WHERE id = :id", id=stale)
    fresh = make_task(assignee="alpha").id

    report = follower.run_pass()

    assert report.reclaimed == []  # maintenance is the leader's
    assert [s.task_id for s in report.spawned] == [fresh]  # claiming is everyone's
    leading[0] = True
    assert follower.run_pass().reclaimed == [stale]


def test_an_expired_lease_is_reclaimed_as_crashed(board, dispatcher, spawner, make_task):
    stale = make_task(assignee="alpha").id
    fresh = make_task(assignee="alpha").id
    dispatcher.run_pass()
    run_id = board.get(stale).current_run_id
    execute(board, "UPDATE tasks SET lease_expires_ms = {now} - 1000 WHERE id = :id", id=stale)

    report = dispatcher.run_pass()

    assert report.reclaimed == [stale]
    assert report.spawned == []  # backoff: not handed straight back out
    task = board.get(stale)
    assert task.status is TaskStatus.READY
    assert task.consecutive_failures == 1
    assert task.last_failure_error is not None
    assert "lease expired" in task.last_failure_error
    assert task.not_before_ms is not None
    (run,) = board.runs(stale)
    assert run.id == run_id
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert "lease expired" in run.error
    assert kinds(board, stale)[-1] == "crashed"
    assert board.get(fresh).status is TaskStatus.RUNNING

    # The old worker's late writes are refused.
    with pytest.raises(StaleRun, match="refused"):
        board.heartbeat(Actor(name="agent", run=spawner.proof(stale)), stale)


def test_a_pass_records_the_expiry_of_unanswered_permission_requests(
    board, dispatcher, spawner, make_task
):
    task_id = make_task(assignee="alpha").id
    dispatcher.run_pass()
    agent = Actor(name="agent", run=spawner.proof(task_id))
    asked = [
        board.request_permission(
            agent, task_id, tool_kind="execute", tool_name="bash", summary=s, ttl_s=600
        )
        for s in ("late", "in time")
    ]
    execute(board, "UPDATE permission_requests SET expires_ms = 0 WHERE id = :id", id=asked[0].id)

    dispatcher.run_pass()

    assert [board.permission(r.ref).status.value for r in asked] == ["expired", "pending"]
    assert kinds(board, task_id)[-1] == "permission_expired"


def test_an_overdue_run_is_timed_out_after_the_grace(board, dispatcher, spawner, config, make_task):
    config.set(lease_ttl_seconds=30, terminate_grace_seconds=5)
    overdue = make_task(assignee="alpha", max_runtime_s=60).id
    within_grace = make_task(assignee="alpha", max_runtime_s=60).id
    dispatcher.run_pass()
    grace_ms = (30 + 5) * 1000
    execute(
        board,
        "UPDATE tasks SET deadline_ms = {now} - :ms WHERE id = :id",
        ms=grace_ms + 5000,
        id=overdue,
    )
    execute(
        board,
        "UPDATE tasks SET deadline_ms = {now} - :ms WHERE id = :id",
        ms=grace_ms - 10_000,
        id=within_grace,
    )

    report = dispatcher.run_pass()

    assert report.timed_out == [overdue]
    assert report.reclaimed == []
    task = board.get(overdue)
    assert task.status is TaskStatus.READY
    assert task.consecutive_failures == 1
    (run,) = board.runs(overdue)
    assert run.outcome is RunOutcome.TIMED_OUT
    assert run.error == "exceeded its max runtime of 60s"
    assert kinds(board, overdue)[-1] == "timed_out"
    assert board.get(within_grace).status is TaskStatus.RUNNING


def test_timeouts_count_toward_giving_up(board, dispatcher, spawner, config, make_task):
    config.set(failure_limit=1)
    task_id = make_task(assignee="alpha", max_runtime_s=1).id
    dispatcher.run_pass()
    execute(board, "UPDATE tasks SET deadline_ms = {now} - 10000000 WHERE id = :id", id=task_id)

    report = dispatcher.run_pass()

    assert report.timed_out == [task_id]
    assert report.gave_up == [task_id]
    task = board.get(task_id)
    assert (task.status, task.block_kind) == (TaskStatus.BLOCKED, BlockKind.GAVE_UP)
    assert task.last_failure_error == "exceeded its max runtime of 1s"
    assert kinds(board, task_id)[-2:] == ["timed_out", "gave_up"]


def test_a_supervisor_that_dies_without_a_verdict_is_a_crash_at_once(
    board, dispatcher, spawner, make_task
):
    task_id = make_task(assignee="alpha").id
    other = make_task(assignee="alpha").id
    dispatcher.run_pass()
    log = log_path(board.settings.home, task_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("agent: step one\nagent: the last words\n", encoding="utf-8")
    pid = spawner.pid(task_id)
    spawner.exited = [(pid, 137)]

    report = dispatcher.run_pass()

    assert report.crashed == [task_id]
    assert report.reclaimed == []
    task = board.get(task_id)
    assert task.status is TaskStatus.READY
    assert task.consecutive_failures == 1
    (run,) = board.runs(task_id)
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert f"pid {pid}" in run.error
    assert "code 137" in run.error
    assert "the last words" in run.error  # the log's tail is the evidence
    assert kinds(board, task_id)[-1] == "crashed"
    assert board.get(other).status is TaskStatus.RUNNING
    # Reaped once: the same pid reported again changes nothing.
    spawner.exited = [(pid, 137)]
    assert dispatcher.run_pass().reclaimed == []


def test_a_reaped_supervisor_whose_run_ended_changes_nothing(
    board, operator, dispatcher, spawner, make_task
):
    completed = make_task(assignee="alpha").id
    blocked = make_task(assignee="alpha").id
    requeued = make_task(assignee="alpha").id
    clean_exit = make_task(assignee="alpha").id
    dispatcher.run_pass()
    complete_as_worker(board, spawner, completed)
    board.block(Actor(name="agent", run=spawner.proof(blocked)), blocked, "need a key")
    board.reclaim(operator, requeued)
    before = {t: board.detail(t) for t in (completed, blocked, requeued, clean_exit)}
    spawner.exited = [
        (spawner.pid(completed), 1),
        (spawner.pid(blocked), 1),
        (spawner.pid(requeued), 1),
        (spawner.pid(clean_exit), 0),
        (FAKE_PID_BASE - 1, 1),  # not one of ours
    ]

    report = dispatcher.run_pass(max_spawn=0)

    assert report.reclaimed == []
    assert report.gave_up == []
    assert {t: board.detail(t) for t in before} == before


def test_a_reaped_supervisor_of_an_older_attempt_spares_the_new_one(
    board, operator, dispatcher, spawner, make_task
):
    task_id = make_task(assignee="alpha").id
    dispatcher.run_pass()
    old_pid = spawner.pid(task_id)
    board.reclaim(operator, task_id)
    spawner.started.clear()
    dispatcher.run_pass()  # a second attempt, with a new supervisor
    current = board.get(task_id).current_run_id
    spawner.exited = [(old_pid, 1)]

    report = dispatcher.run_pass()

    assert report.reclaimed == []
    task = board.get(task_id)
    assert (task.status, task.current_run_id) == (TaskStatus.RUNNING, current)


# -- health -----------------------------------------------------------------------------------


def own_health(board: Kanban, dispatcher: Dispatcher) -> health.DispatcherHealth:
    (row,) = [h for h in health.read(board) if h.name == dispatcher.name]
    return row


def test_every_pass_records_health(board, dispatcher, spawner, config, make_task):
    make_tasks(make_task, 2, assignee="alpha")
    make_task()
    dispatcher.run_pass()
    first = own_health(board, dispatcher)
    assert first.passes == 1
    assert first.last_error is None
    assert first.host == dispatcher.host
    assert first.counts["spawned"] == 2
    assert first.counts["unassigned"] == 1

    dispatcher.run_pass()
    second = own_health(board, dispatcher)
    assert second.passes == 2
    assert second.counts["spawned"] == 0
    assert second.last_pass_ms >= first.last_pass_ms


def test_a_failed_pass_records_its_error(board, dispatcher, config):
    dispatcher.run_pass()
    config.error = ValidationError("config.yaml: dispatcher.max_in_progress: must be positive")

    with pytest.raises(ValidationError):
        dispatcher.run_pass()

    row = own_health(board, dispatcher)
    assert row.passes == 2
    assert row.last_error == "config.yaml: dispatcher.max_in_progress: must be positive"
    assert row.last_error_ms is not None
    assert row.to_json()["last_error"] == row.last_error

    config.error = None
    dispatcher.run_pass()
    assert own_health(board, dispatcher).passes == 3


# -- several dispatchers ----------------------------------------------------------------------

CONCURRENT_TASKS = 200
DISPATCHERS = 4


def test_concurrent_dispatchers_claim_every_task_exactly_once(db_url: str, tmp_path: Path):
    # Several processes share a file or a server, never one in-memory database.
    url = f"sqlite:///{tmp_path / 'shared.db'}" if db_url == "sqlite://" else db_url
    settings = KernelSettings(home=tmp_path / "home", db_url=url)
    author = Actor(name="alice")
    with Kanban.open(settings) as setup:
        ids = [
            setup.create(author, title=f"job {i}", assignee=("alpha", "beta")[i % 2]).task.id
            for i in range(CONCURRENT_TASKS)
        ]
    config = ConfigHolder(profile("alpha"), profile("beta"), max_in_progress=10 * CONCURRENT_TASKS)
    boards = [Kanban.open(settings) for _ in range(DISPATCHERS)]
    spawners = [FakeSpawner() for _ in range(DISPATCHERS)]
    dispatchers = [
        Dispatcher(b, config=config, spawner=s, name=f"concurrent-{i}-{uuid.uuid4().hex[:6]}")
        for i, (b, s) in enumerate(zip(boards, spawners, strict=True))
    ]
    start = threading.Barrier(DISPATCHERS)

    def drive(dispatcher: Dispatcher) -> list[DispatchReport]:
        start.wait()
        reports = []
        for _ in range(CONCURRENT_TASKS):
            report = dispatcher.run_pass()
            reports.append(report)
            if not scalar(dispatcher.board, "SELECT count(*) FROM tasks WHERE status = 'ready'"):
                break
        return reports

    try:
        with ThreadPoolExecutor(DISPATCHERS) as pool:
            results = list(pool.map(drive, dispatchers))
        check = boards[0]
        claimed = [s.task_id for reports in results for r in reports for s in r.spawned]
        started = [t for s in spawners for t in s.started_ids()]
        assert sorted(claimed) == sorted(ids)
        assert sorted(started) == sorted(ids)
        assert scalar(check, "SELECT count(*) FROM tasks WHERE status = 'running'") == len(ids)
        assert scalar(check, "SELECT count(*) FROM task_runs") == len(ids)
        assert scalar(check, "SELECT max(attempts) FROM tasks") == 1
        claims = scalar(check, "SELECT count(*) FROM task_events WHERE kind = 'claimed'")
        assert claims == len(ids)
        assert all(r.spawn_failed == [] and r.reclaimed == [] for rs in results for r in rs)
        names = {h.name for h in health.read(check)}
        assert {d.name for d in dispatchers} <= names
    finally:
        for b in boards:
            b.close()
