"""Stateful property tests: random operation sequences through the Kanban facade.

A hypothesis state machine creates, links, claims, completes, blocks, reclaims and archives
tasks as an operator and as (genuine, stale and forged) workers, predicts the outcome of every
call from the database state just before it, and after every step checks the board's
invariants by querying the tables directly (never through the kernel's reads).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings, strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kanban_core import (
    Actor,
    Claim,
    InvalidTransition,
    Kanban,
    KernelSettings,
    PermissionDenied,
    RunOutcome,
    RunProof,
    StaleRun,
    TaskId,
    TaskStatus,
    ValidationError,
)
from kanban_core.board.domain import RunId
from kanban_core.board.recovery import FailurePolicy, FailureVerdict
from kanban_core.storage import Database, Query

_TABLES = (
    "notify_deliveries, notify_subscriptions, task_events, task_runs, task_comments, "
    "task_links, tasks"
)
_SNAPSHOT_TABLES = {
    "tasks": "id",
    "task_runs": "id",
    "task_events": "id",
    "task_comments": "id",
    "task_links": "parent_id, child_id",
    "notify_subscriptions": "task_id, platform, chat_id, thread_id",
    "notify_deliveries": "id",
    "audit_log": "id",
    "dispatcher_health": "name",
}
_SATISFIED = frozenset({TaskStatus.DONE, TaskStatus.ARCHIVED})
_COMPLETABLE = frozenset({TaskStatus.READY, TaskStatus.RUNNING, TaskStatus.BLOCKED})
_BLOCKABLE = frozenset({TaskStatus.TRIAGE, TaskStatus.TODO, TaskStatus.READY, TaskStatus.RUNNING})
_KEYS = ("key-a", "key-b", "key-c")
_NAMES = ("bob", "carol")
_HOME = Path(tempfile.gettempdir()) / "kanban-invariants-home"
#: The backoff (an hour) outlasts any test, so a backed-off task stays put.
_BACKOFF_S = 3600
_FAILURES = (RunOutcome.CRASHED, RunOutcome.TIMED_OUT, RunOutcome.SPAWN_FAILED)

OPERATOR = Actor(name="alice")


def _q(sql: str) -> Query:
    return Query("test_invariants", sql)


# -- invariant queries: each returns the offending rows (none on a healthy board) -----------------

_VIOLATIONS: dict[str, Query] = {
    "(1) current_run_id names an open run of that very task": _q(
        "SELECT t.id, t.current_run_id FROM tasks t LEFT JOIN task_runs r "
        "ON r.id = t.current_run_id WHERE t.current_run_id IS NOT NULL "
        "AND (r.id IS NULL OR r.ended_ms IS NOT NULL OR r.task_id <> t.id)"
    ),
    "(2) every open run is its task's current run": _q(
        "SELECT r.id, r.task_id, t.current_run_id FROM task_runs r JOIN tasks t "
        "ON t.id = r.task_id WHERE r.ended_ms IS NULL "
        "AND (t.current_run_id IS NULL OR t.current_run_id <> r.id)"
    ),
    "(3) status is a valid status": _q(
        "SELECT id, status FROM tasks WHERE status NOT IN "
        f"({', '.join(repr(s.value) for s in TaskStatus)})"
    ),
    "(4a) lease (and heartbeat, deadline) only while running": _q(
        "SELECT id, status, lease_owner, lease_expires_ms, heartbeat_ms, deadline_ms FROM tasks "
        "WHERE status <> 'running' AND (lease_owner IS NOT NULL OR lease_expires_ms IS NOT NULL "
        "OR heartbeat_ms IS NOT NULL OR deadline_ms IS NOT NULL)"
    ),
    "(4b) running <=> current run and lease set": _q(
        "SELECT id, status, current_run_id, lease_owner, lease_expires_ms FROM tasks "
        "WHERE (status = 'running') <> (current_run_id IS NOT NULL) "
        "OR (status = 'running' AND (lease_owner IS NULL OR lease_expires_ms IS NULL))"
    ),
    "(5) started_ms <= ended_ms": _q(
        "SELECT id, started_ms, ended_ms FROM task_runs "
        "WHERE ended_ms IS NOT NULL AND started_ms > ended_ms"
    ),
    "(6) outcome set <=> ended_ms set": _q(
        "SELECT id, outcome, ended_ms FROM task_runs WHERE (outcome IS NULL) <> (ended_ms IS NULL)"
    ),
    "(8) an event's run exists and belongs to the event's task": _q(
        "SELECT e.id, e.run_id, e.task_id FROM task_events e LEFT JOIN task_runs r "
        "ON r.id = e.run_id WHERE e.run_id IS NOT NULL AND (r.id IS NULL OR r.task_id <> e.task_id)"
    ),
    "(9) no todo task whose parents are all done/archived (promotion is event-driven)": _q(
        "SELECT t.id FROM tasks t WHERE t.status = 'todo' AND NOT EXISTS (SELECT 1 FROM "
        "task_links l JOIN tasks p ON p.id = l.parent_id WHERE l.child_id = t.id "
        "AND p.status NOT IN ('done', 'archived'))"
    ),
    "(10) at most one live task per idempotency key": _q(
        "SELECT idempotency_key, count(*) FROM tasks WHERE idempotency_key IS NOT NULL "
        "AND status <> 'archived' GROUP BY idempotency_key HAVING count(*) > 1"
    ),
    "(11) block_kind set <=> blocked": _q(
        "SELECT id, status, block_kind FROM tasks "
        "WHERE (block_kind IS NOT NULL) <> (status = 'blocked')"
    ),
    "(12) a run's attempt number never exceeds the task's attempt counter": _q(
        "SELECT r.id, r.attempt, t.attempts FROM task_runs r JOIN tasks t ON t.id = r.task_id "
        "WHERE r.attempt > t.attempts OR r.attempt < 1"
    ),
}
_EVENT_STATS = _q("SELECT count(*), COALESCE(max(id), 0) FROM task_events")
_EVENTS_UP_TO = _q("SELECT count(*) FROM task_events WHERE id <= :max_id")
_EVENT_IDS = _q("SELECT id FROM task_events ORDER BY id")
_LINKS = _q("SELECT parent_id, child_id FROM task_links")
_STATUSES = _q("SELECT id, status FROM tasks")
_CURRENT_RUNS = _q("SELECT id, current_run_id FROM tasks WHERE current_run_id IS NOT NULL")
_TASK = _q(
    "SELECT status, current_run_id, lease_expires_ms, block_kind, assignee, priority, title, "
    "attempts, idempotency_key, consecutive_failures FROM tasks WHERE id = :id"
)
_RUN = _q("SELECT task_id, outcome, ended_ms, summary FROM task_runs WHERE id = :id")
_CLAIMABLE = _q(
    "SELECT id, priority, created_ms, assignee FROM tasks WHERE status = 'ready' "
    "AND (not_before_ms IS NULL OR not_before_ms <= {now})"
)
_LIVE_HOLDER = _q("SELECT id FROM tasks WHERE idempotency_key = :key AND status <> 'archived'")


def fresh_board(url: str) -> Kanban:
    """A board with empty tables: a new in-memory SQLite, or the PostgreSQL database truncated."""
    board = Kanban.open(KernelSettings(home=_HOME, db_url=url))
    if board.db.dialect == "postgresql":
        with board.db.transaction(write=True) as tx:
            tx.execute(_q(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    return board


class KanbanMachine(RuleBasedStateMachine):
    """Random operation sequences, each call's outcome predicted, invariants after every step."""

    tasks = Bundle("tasks")
    claims = Bundle("claims")

    #: The board's database; a subclass per test points it elsewhere.
    url = "sqlite://"

    def __init__(self) -> None:
        super().__init__()
        self.board = fresh_board(self.url)
        self.db: Database = self.board.db
        self.counter = 0
        #: Blocked tasks at the end of the previous step.
        self.blocked_before: set[int] = set()
        #: Blocked tasks the current step may move out of blocked, and where to.
        self.may_leave_blocked: dict[int, frozenset[TaskStatus]] = {}
        self.event_count = 0
        self.event_max = 0
        #: The dependency graph as the model believes it to be.
        self.edges: set[tuple[int, int]] = set()
        #: Claims whose run is still their task's current run, by task.
        self.live: dict[int, Claim] = {}
        #: Every claim made, and those whose task now runs a newer attempt.
        self.made: list[Claim] = []
        self.superseded: list[Claim] = []
        #: Task ids by status at the end of the previous step, to aim rules at rare states.
        self.by_status: dict[TaskStatus, list[int]] = {}

    def teardown(self) -> None:
        self.board.close()

    # -- helpers ----------------------------------------------------------------------------

    def rows(self, query: Query, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self.db.transaction(write=False) as tx:
            return tx.fetchall(query, params or {})

    def task(self, task_id: int) -> tuple[Any, ...]:
        rows = self.rows(_TASK, {"id": task_id})
        assert len(rows) == 1, f"t{task_id} missing"
        return rows[0]

    def status(self, task_id: int) -> TaskStatus:
        return TaskStatus(self.task(task_id)[0])

    def statuses(self) -> dict[int, TaskStatus]:
        return {row[0]: TaskStatus(row[1]) for row in self.rows(_STATUSES)}

    def run(self, run_id: int) -> tuple[Any, ...]:
        rows = self.rows(_RUN, {"id": run_id})
        assert len(rows) == 1, f"r{run_id} missing"
        return rows[0]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        with self.db.transaction(write=False) as tx:
            for table, key in _SNAPSHOT_TABLES.items():
                out[table] = tx.fetchall(_q(f"SELECT * FROM {table} ORDER BY {key}"))
        return out

    def unsatisfied_parents(self, task_id: int, statuses: dict[int, TaskStatus]) -> bool:
        return any(statuses[p] not in _SATISFIED for p, c in self.edges if c == task_id)

    def reachable(self, start: int, goal: int) -> bool:
        seen, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                stack.extend(c for p, c in self.edges if p == node)
        return False

    def refused(self, call: Callable[[], object], exc: type[Exception]) -> None:
        """The call must raise ``exc`` and change nothing at all."""
        before = self.snapshot()
        with pytest.raises(exc):
            call()
        assert self.snapshot() == before, "a refused call changed the database"

    def is_live(self, claim: Claim) -> bool:
        """The claim's run is still its task's current run."""
        status, current, *_ = self.task(claim.task.id)
        return bool(status == TaskStatus.RUNNING.value and current == claim.run_id)

    def title(self) -> str:
        self.counter += 1
        return f"task {self.counter}"

    # -- authoring --------------------------------------------------------------------------

    @initialize(target=tasks, priorities=st.lists(st.integers(-2, 2), min_size=1, max_size=4))
    def seed(self, priorities):
        ids = [self._create(OPERATOR, [], False, None, p, None) for p in priorities]
        return multiple(*ids)

    @rule(
        target=tasks,
        parents=st.lists(tasks, max_size=3, unique=True),
        triage=st.booleans(),
        key=st.none() | st.sampled_from(_KEYS),
        priority=st.integers(-2, 2),
        assignee=st.none() | st.sampled_from(_NAMES),
    )
    def create(self, parents, triage, key, priority, assignee):
        return self._create(OPERATOR, parents, triage, key, priority, assignee)

    @rule(target=tasks, claim=claims, parents=st.lists(tasks, max_size=2, unique=True))
    def worker_create(self, claim, parents, forged=False):
        """A worker decomposing its work; a stale run (or a forged token) cannot act at all."""
        proof = RunProof(claim.task.id, claim.run_id, claim.token + "x") if forged else claim.proof
        actor = Actor("bot", run=proof)
        if forged or not self.is_live(claim):
            self.refused(lambda: self.board.create(actor, title="sub-task"), StaleRun)
            return multiple()
        return self._create(actor, parents, False, None, 0, None)

    @rule(target=tasks, pick=st.integers(0, 7), forged=st.booleans())
    @precondition(lambda self: bool(self.live))
    def live_worker_creates(self, pick, forged):
        return self.worker_create(self.live_claim(pick), [], forged)

    def _create(
        self,
        actor: Actor,
        parents: list[TaskId],
        triage: bool,
        key: str | None,
        priority: int,
        assignee: str | None,
    ) -> TaskId:
        holder = self.rows(_LIVE_HOLDER, {"key": key}) if key is not None else []
        statuses = self.statuses()
        before = self.snapshot()
        result = self.board.create(
            actor,
            title=self.title(),
            parents=parents,
            triage=triage,
            idempotency_key=key,
            priority=priority,
            assignee=assignee,
        )
        if holder:
            assert not result.created
            assert result.task.id == holder[0][0]
            assert self.snapshot() == before, "an idempotent retry wrote something"
            return result.task.id
        assert result.created
        if triage:
            expected = TaskStatus.TRIAGE
        elif any(statuses[p] not in _SATISFIED for p in parents):
            expected = TaskStatus.TODO
        else:
            expected = TaskStatus.READY
        assert self.status(result.task.id) is expected
        assert result.task.status is expected
        self.edges.update((p, result.task.id) for p in parents)
        return result.task.id

    @rule(parent=tasks, child=tasks, as_worker=st.none() | claims)
    def link(self, parent, child, as_worker):
        # Workers may link (they decompose their work). A stale worker's link is not refused
        # today: see test_a_stale_worker_cannot_link; here only live workers link.
        live = as_worker is not None and self.is_live(as_worker)
        actor = Actor("bot", run=as_worker.proof) if live else OPERATOR
        if parent == child:
            self.refused(lambda: self.board.link(actor, parent, child), ValidationError)
            return
        if self.reachable(child, parent):
            self.refused(lambda: self.board.link(actor, parent, child), InvalidTransition)
            return
        statuses = self.statuses()
        added = self.board.link(actor, parent, child)
        assert added == ((parent, child) not in self.edges)
        self.edges.add((parent, child))
        after = self.status(child)
        if added and statuses[parent] not in _SATISFIED and statuses[child] is TaskStatus.READY:
            assert after is TaskStatus.TODO, "a ready child of an unfinished parent stays ready"
        else:
            assert after is statuses[child]

    @rule(parent=tasks, child=tasks)
    def unlink(self, parent, child):
        removed = self.board.unlink(OPERATOR, parent, child)
        assert removed == ((parent, child) in self.edges)
        self.edges.discard((parent, child))

    @rule(
        task=tasks,
        title=st.none() | st.sampled_from(["renamed", "other"]),
        priority=st.none() | st.integers(-3, 3),
    )
    def edit(self, task, title, priority):
        status = self.status(task)
        edited = self.board.edit(OPERATOR, task, title=title, priority=priority)
        row = self.task(task)
        if title is not None:
            assert row[6] == title == edited.title
        if priority is not None:
            assert row[5] == priority == edited.priority
        assert self.status(task) is status, "edit must not change the status"

    @rule(task=tasks, assignee=st.none() | st.sampled_from(_NAMES))
    def assign(self, task, assignee):
        status = self.status(task)
        if status is TaskStatus.RUNNING:
            self.refused(lambda: self.board.assign(OPERATOR, task, assignee), InvalidTransition)
            return
        self.board.assign(OPERATOR, task, assignee)
        assert self.task(task)[4] == assignee
        assert self.status(task) is status

    @rule(task=tasks)
    def comment(self, task):
        status = self.status(task)
        self.board.comment(OPERATOR, task, "hello")
        assert self.status(task) is status

    @rule(claim=claims)
    def worker_comment(self, claim):
        """A worker's comment carries its run's identity; a stale run cannot act at all."""
        task = claim.task.id
        actor = Actor("bot", run=claim.proof)
        if not self.is_live(claim):
            self.refused(lambda: self.board.comment(actor, task, "hello"), StaleRun)
            return
        status = self.status(task)
        self.board.comment(actor, task, "hello")
        assert self.status(task) is status

    # -- claims -----------------------------------------------------------------------------

    @rule(target=claims, task=tasks)
    def claim_by_id(self, task):
        if self.status(task) is not TaskStatus.READY:
            before = self.snapshot()
            assert self.board.claim(OPERATOR, task) is None
            assert self.snapshot() == before
            return multiple()
        claim = self.board.claim(OPERATOR, task)
        assert claim is not None
        return self._claimed(claim, task)

    @rule(target=claims, assignee=st.none() | st.sampled_from(_NAMES))
    def claim_next(self, assignee):
        ready = [r for r in self.rows(_CLAIMABLE) if assignee is None or r[3] == assignee]
        if not ready:
            before = self.snapshot()
            assert self.board.claim(OPERATOR, None, assignee=assignee) is None
            assert self.snapshot() == before
            return multiple()
        expected = min(ready, key=lambda r: (-r[1], r[2], r[0]))[0]
        claim = self.board.claim(OPERATOR, None, assignee=assignee)
        assert claim is not None
        return self._claimed(claim, expected)

    def _claimed(self, claim: Claim, task_id: int) -> Claim:
        assert claim.task.id == task_id
        status, current, lease, *_ = self.task(task_id)
        assert status == TaskStatus.RUNNING.value
        assert current == claim.run_id
        assert lease == claim.lease_expires_ms
        assert self.run(claim.run_id)[2] is None
        self.live[task_id] = claim
        self.made.append(claim)
        return claim

    # -- worker writes: genuine, stale and forged proofs --------------------------------------

    @rule(
        claim=claims,
        verb=st.sampled_from(["complete", "block", "heartbeat"]),
        forgery=st.sampled_from(["none", "token", "run", "scope"]),
        other=tasks,
    )
    def worker_write(self, claim, verb, forgery, other):
        task_id = claim.task.id
        proof = claim.proof
        if forgery == "token":
            proof = RunProof(task_id, claim.run_id, claim.token + "x")
        elif forgery == "run":
            proof = RunProof(task_id, RunId(claim.run_id + 1), claim.token)
        elif forgery == "scope":
            # Its own genuine proof, presented for some other task.
            task_id, forgery = other, "none"
        actor = Actor("bot", run=proof)

        def call() -> object:
            if verb == "complete":
                return self.board.complete(actor, task_id, summary="did it", result="ok")
            if verb == "block":
                return self.board.block(actor, task_id, "need a human")
            return self.board.heartbeat(actor, task_id, note="alive")

        if task_id != claim.task.id:
            self.refused(call, PermissionDenied)
            return
        lease = self.task(task_id)[2]
        if forgery != "none" or not self.is_live(claim):
            self.refused(call, StaleRun)
            return
        value = call()
        if verb == "heartbeat":
            new_status, new_current, new_lease, *_ = self.task(task_id)
            assert new_status == TaskStatus.RUNNING.value
            assert new_current == claim.run_id
            assert value == new_lease >= lease
            return
        expected = TaskStatus.DONE if verb == "complete" else TaskStatus.BLOCKED
        assert self.status(task_id) is expected
        outcome = self.run(claim.run_id)[1]
        assert outcome == ("completed" if verb == "complete" else "blocked")

    @rule(
        pick=st.integers(0, 7),
        verb=st.sampled_from(["complete", "block", "heartbeat"]),
        forgery=st.sampled_from(["none", "token", "run", "scope"]),
        other=tasks,
    )
    @precondition(lambda self: bool(self.live))
    def live_worker_write(self, pick, verb, forgery, other):
        """The worker of a running task (most claims in the bundle go stale), or a forger."""
        self.worker_write(self.live_claim(pick), verb, forgery, other)

    @rule(
        pick=st.integers(0, 7),
        verb=st.sampled_from(["complete", "block", "heartbeat"]),
        forgery=st.sampled_from(["token", "run"]),
    )
    @precondition(lambda self: bool(self.live))
    def forger_targets_a_live_run(self, pick, verb, forgery):
        claim = self.live_claim(pick)
        self.worker_write(claim, verb, forgery, claim.task.id)

    @rule(pick=st.integers(0, 7), verb=st.sampled_from(["complete", "block", "heartbeat", "fail"]))
    @precondition(lambda self: bool(self.superseded))
    def superseded_worker_acts(self, pick, verb):
        """A worker whose task was requeued and claimed again: its run is over."""
        claim = self.superseded[pick % len(self.superseded)]
        if verb == "fail":
            self.record_failure(claim, RunOutcome.CRASHED, "dispatcher", 3)
        else:
            self.worker_write(claim, verb, "none", claim.task.id)

    def live_claim(self, pick: int) -> Claim:
        return sorted(self.live.values(), key=lambda c: c.run_id)[pick % len(self.live)]

    # -- failures without a verdict (the dispatcher's and the supervisor's reports) ---------

    @rule(
        claim=claims,
        outcome=st.sampled_from(_FAILURES),
        reporter=st.sampled_from(["dispatcher", "worker", "forger", "other run"]),
        limit=st.integers(1, 3),
    )
    def record_failure(self, claim, outcome, reporter, limit):
        task_id = claim.task.id
        actor = {
            "dispatcher": Actor("dispatcher"),
            "worker": Actor("bot", run=claim.proof),
            "forger": Actor("bot", run=RunProof(task_id, claim.run_id, claim.token + "x")),
            "other run": Actor("bot", run=claim.proof),
        }[reporter]
        run_id = RunId(claim.run_id + 1) if reporter == "other run" else claim.run_id

        policy = FailurePolicy(limit=limit, backoff_base_s=_BACKOFF_S)

        def call() -> FailureVerdict:
            return self.board.record_failure(actor, task_id, run_id, outcome, "boom", policy)

        if reporter == "other run":
            self.refused(call, PermissionDenied)
            return
        failures = self.task(task_id)[9]
        waiting = self.unsatisfied_parents(task_id, self.statuses())
        if reporter == "forger" or not self.is_live(claim):
            self.refused(call, StaleRun)
            return
        verdict = call()
        gave_up = failures + 1 >= limit
        assert (verdict.failures, verdict.gave_up) == (failures + 1, gave_up)
        row = self.task(task_id)
        if gave_up:
            assert (row[0], row[3]) == ("blocked", "gave_up")
        else:
            # A link added while it ran keeps it waiting in todo until the parent finishes.
            assert row[0] == ("todo" if waiting else "ready")
        assert self.run(claim.run_id)[1] == outcome.value

    @rule(pick=st.integers(0, 7), outcome=st.sampled_from(_FAILURES), limit=st.integers(1, 3))
    @precondition(lambda self: bool(self.live))
    def live_run_fails(self, pick, outcome, limit):
        self.record_failure(self.live_claim(pick), outcome, "dispatcher", limit)

    # -- operator verbs ---------------------------------------------------------------------

    @rule(task=tasks, summary=st.none() | st.just("handoff"))
    def operator_complete(self, task, summary):
        status, current, *_ = self.task(task)
        if TaskStatus(status) not in _COMPLETABLE:
            self.refused(lambda: self.board.complete(OPERATOR, task), InvalidTransition)
            return
        self.may_leave_blocked[task] = frozenset({TaskStatus.DONE})
        self.board.complete(OPERATOR, task, summary=summary)
        assert self.status(task) is TaskStatus.DONE
        if current is not None:
            assert self.run(current)[1] == "completed"

    @rule(task=tasks, reason=st.none() | st.just("waiting on legal"))
    def operator_block(self, task, reason):
        status, current, *_ = self.task(task)
        if TaskStatus(status) not in _BLOCKABLE:
            self.refused(lambda: self.board.block(OPERATOR, task, reason), InvalidTransition)
            return
        self.board.block(OPERATOR, task, reason)
        row = self.task(task)
        assert (row[0], row[3]) == ("blocked", "human")
        if current is not None:
            assert self.run(current)[1] == "blocked"

    @rule(task=tasks)
    def operator_unblock(self, task):
        if self.status(task) is not TaskStatus.BLOCKED:
            self.refused(lambda: self.board.unblock(OPERATOR, task), InvalidTransition)
            return
        self.may_leave_blocked[task] = frozenset({TaskStatus.READY, TaskStatus.TODO})
        waiting = self.unsatisfied_parents(task, self.statuses())
        self.board.unblock(OPERATOR, task, "go on")
        assert self.status(task) is (TaskStatus.TODO if waiting else TaskStatus.READY)

    @rule(task=tasks)
    def operator_reclaim(self, task):
        status, current, *_ = self.task(task)
        if status != TaskStatus.RUNNING.value:
            self.refused(lambda: self.board.reclaim(OPERATOR, task), InvalidTransition)
            return
        waiting = self.unsatisfied_parents(task, self.statuses())
        self.board.reclaim(OPERATOR, task, "stuck")
        assert self.status(task) is (TaskStatus.TODO if waiting else TaskStatus.READY)
        assert self.run(current)[1] == "reclaimed"

    @rule(task=tasks)
    def operator_archive(self, task):
        status, current, *_ = self.task(task)
        if status == TaskStatus.ARCHIVED.value:
            self.refused(lambda: self.board.archive(OPERATOR, task), InvalidTransition)
            return
        self.may_leave_blocked[task] = frozenset({TaskStatus.ARCHIVED})
        self.board.archive(OPERATOR, task)
        assert self.status(task) is TaskStatus.ARCHIVED
        if current is not None:
            assert self.run(current)[1] == "reclaimed"

    # Random targets mostly hit refusals; these aim the rarer transitions at tasks they apply to.

    def pick(self, status: TaskStatus, index: int) -> int:
        candidates = self.by_status[status]
        return candidates[index % len(candidates)]

    @rule(target=claims, pick=st.integers(0, 7))
    @precondition(lambda self: TaskStatus.READY in self.by_status)
    def claim_a_ready_task(self, pick):
        return self.claim_by_id(self.pick(TaskStatus.READY, pick))

    @rule(pick=st.integers(0, 7))
    @precondition(lambda self: TaskStatus.BLOCKED in self.by_status)
    def unblock_a_blocked_task(self, pick):
        self.operator_unblock(self.pick(TaskStatus.BLOCKED, pick))

    @rule(pick=st.integers(0, 7))
    @precondition(lambda self: TaskStatus.RUNNING in self.by_status)
    def reclaim_a_running_task(self, pick):
        self.operator_reclaim(self.pick(TaskStatus.RUNNING, pick))

    @rule(pick=st.integers(0, 7), archive=st.booleans())
    @precondition(lambda self: bool(self.edges))
    def finish_a_parent(self, pick, archive):
        """Completing or archiving a parent is what promotes its waiting children."""
        parent = sorted(self.edges)[pick % len(self.edges)][0]
        if archive:
            self.operator_archive(parent)
        else:
            self.operator_complete(parent, None)

    @rule(target=claims, pick=st.integers(0, 7))
    @precondition(lambda self: TaskStatus.RUNNING in self.by_status)
    def requeue_and_claim_again(self, pick):
        """An operator requeues a stuck task and the dispatcher claims it again at once."""
        task = self.pick(TaskStatus.RUNNING, pick)
        self.operator_reclaim(task)
        return self.claim_by_id(task)

    @rule(pick=st.integers(0, 7), reason=st.none() | st.just("parked"))
    @precondition(lambda self: TaskStatus.TODO in self.by_status)
    def block_a_waiting_task(self, pick, reason):
        self.operator_block(self.pick(TaskStatus.TODO, pick), reason)

    @rule(pick=st.integers(0, 7))
    @precondition(lambda self: bool(self.edges))
    def unlink_an_edge(self, pick):
        parent, child = sorted(self.edges)[pick % len(self.edges)]
        self.unlink(parent, child)

    @rule(pick=st.integers(0, 7), parent=tasks)
    @precondition(lambda self: TaskStatus.RUNNING in self.by_status)
    def link_under_a_running_task(self, pick, parent):
        self.link(parent, self.pick(TaskStatus.RUNNING, pick), None)

    @rule(
        claim=claims,
        task=tasks,
        verb=st.sampled_from(
            ["claim", "edit", "assign", "unlink", "archive", "unblock", "reclaim", "heartbeat"]
        ),
    )
    def wrong_actor(self, claim, task, verb):
        """Workers may not use operator verbs; an operator has no run to heartbeat."""
        worker = Actor("bot", run=claim.proof)
        calls: dict[str, Callable[[], object]] = {
            "claim": lambda: self.board.claim(worker, None),
            "edit": lambda: self.board.edit(worker, task, title="hijacked"),
            "assign": lambda: self.board.assign(worker, task, "mallory"),
            "unlink": lambda: self.board.unlink(worker, task, claim.task.id),
            "archive": lambda: self.board.archive(worker, task),
            "unblock": lambda: self.board.unblock(worker, task),
            "reclaim": lambda: self.board.reclaim(worker, task),
            "heartbeat": lambda: self.board.heartbeat(OPERATOR, task),
        }
        self.refused(calls[verb], PermissionDenied)

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def board_is_consistent(self):
        with self.db.transaction(write=False) as tx:
            broken = {name: tx.fetchall(q) for name, q in _VIOLATIONS.items()}
            count, max_id = tx.fetchone(_EVENT_STATS) or (0, 0)
            kept = tx.scalar(_EVENTS_UP_TO, {"max_id": self.event_max})
            event_ids = [row[0] for row in tx.fetchall(_EVENT_IDS)]
            links = {(row[0], row[1]) for row in tx.fetchall(_LINKS)}
            statuses = {row[0]: TaskStatus(row[1]) for row in tx.fetchall(_STATUSES)}
            current: dict[int, int] = dict(tx.fetchall(_CURRENT_RUNS))
        violated = {name: rows for name, rows in broken.items() if rows}
        assert not violated, violated

        # (7) event ids strictly increasing: new events only ever get larger ids.
        assert event_ids == sorted(set(event_ids))
        assert kept == self.event_count, "events appeared below an id already handed out"
        assert max_id >= self.event_max
        assert count >= self.event_count
        self.event_count, self.event_max = count, max_id

        # The dependency graph is what the model expects, and acyclic.
        assert links == self.edges
        assert not any(self.reachable(c, p) for p, c in links)

        # A blocked task leaves blocked only by an explicit unblock (or complete/archive of it).
        for task_id in self.blocked_before:
            now = statuses[task_id]
            if now is not TaskStatus.BLOCKED:
                allowed = self.may_leave_blocked.get(task_id, frozenset())
                assert now in allowed, f"t{task_id} left blocked for {now} without an unblock"
        self.blocked_before = {t for t, s in statuses.items() if s is TaskStatus.BLOCKED}
        self.by_status = {}
        for task_id, status in sorted(statuses.items()):
            self.by_status.setdefault(status, []).append(task_id)
        self.may_leave_blocked = {}
        self.live = {t: c for t, c in self.live.items() if current.get(t) == c.run_id}
        self.superseded = [c for c in self.made if current.get(c.task.id) not in (None, c.run_id)]


# A failing machine spends a while shrinking its example; let it finish and report.
_SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.timeout(600)
def test_invariants_sqlite():
    run_state_machine_as_test(
        KanbanMachine,
        settings=settings(_SETTINGS, max_examples=250, stateful_step_count=40),
    )


@pytest.mark.timeout(600)
def test_invariants_postgresql(pg_database_url):
    class PostgresMachine(KanbanMachine):
        url = pg_database_url

    run_state_machine_as_test(
        PostgresMachine,
        settings=settings(_SETTINGS, max_examples=40, stateful_step_count=40),
    )


# -- bugs the machine found, or that modelling it exposed (each fails today) -------------------


def test_reclaim_respects_a_dependency_added_while_running(board, operator):
    """A running task given an unfinished parent must not come back claimable ahead of it.

    unblock() puts such a task in todo; reclaim() puts it in ready, so the dispatcher's next
    claim runs it before its dependency is done.
    """
    parent = board.create(operator, title="parent").task.id
    child = board.create(operator, title="child", priority=5).task.id
    assert board.claim(operator, child) is not None
    assert board.link(operator, parent, child)
    assert board.get(child).status is TaskStatus.RUNNING
    board.reclaim(operator, child, "stuck")
    assert board.get(child).status is TaskStatus.TODO
    claim = board.claim(operator, None)
    assert claim is not None
    assert claim.task.id == parent


def test_a_failed_run_respects_a_dependency_added_while_running(board, operator):
    """The same hole through the dispatcher's requeue: record_failure() also goes to ready."""
    parent = board.create(operator, title="parent").task.id
    child = board.create(operator, title="child").task.id
    claim = board.claim(operator, child)
    assert claim is not None
    assert board.link(operator, parent, child)
    verdict = board.record_failure(
        Actor("dispatcher"), child, claim.run_id, RunOutcome.CRASHED, "boom", FailurePolicy()
    )
    assert not verdict.gave_up
    assert board.get(child).status is TaskStatus.TODO


def test_a_live_worker_may_comment_on_another_task_as_its_run(board, operator):
    """Comments change no state: a live worker may leave a sibling a note, under its run."""
    mine = board.create(operator, title="mine", assignee="bot").task.id
    other = board.create(operator, title="other").task.id
    claim = board.claim(operator, mine)
    assert claim is not None
    worker = Actor("bot", run=claim.proof)
    board.comment(worker, other, "the API moved")
    (comment,) = board.detail(other).comments
    assert comment.author == f"bot@r{claim.run_id}"


def test_a_stale_worker_cannot_link(board, operator):
    """Stale runs cannot act at all (create and comment refuse them); link ignores the actor.

    A worker whose run has ended, or one presenting a forged token, can still add dependencies,
    and so demote other tasks from ready to todo.
    """
    done = board.create(operator, title="finished work").task.id
    parent = board.create(operator, title="parent").task.id
    victim = board.create(operator, title="someone else's ready task").task.id
    claim = board.claim(operator, done)
    assert claim is not None
    board.complete(Actor("bot", run=claim.proof), done)
    stale = Actor("bot", run=claim.proof)
    with pytest.raises(StaleRun):
        board.comment(stale, done, "still here")
    with pytest.raises(StaleRun):
        board.link(stale, parent, victim)
    assert board.get(victim).status is TaskStatus.READY
