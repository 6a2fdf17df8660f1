"""Fast board builders: bulk inserts of realistic rows through the kernel's Database (executemany).

A board built here looks like one that has been used for a month: mostly done tasks with their
runs, links and events, a tail of active work (todo tasks waiting on unfinished parents, running
tasks holding leases, blocked and triage tasks) and a few archived ones. Ids are assigned by the
database, exactly as the kernel's own inserts get them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import islice

from kanban_core.board.domain import TaskId, format_task_id
from kanban_core.board.rows import dump_json
from kanban_core.storage import Database, Query

CHUNK = 20_000
_DAY_MS = 86_400_000
_SPAN_MS = 30 * _DAY_MS
_LEASE_MS = 6 * 3600 * 1000  # running tasks' leases outlive the whole benchmark
_TOKEN_HASH = "0" * 64

_INSERT_TASK = Query(
    "bench_insert_task",
    "INSERT INTO tasks (title, body, assignee, status, block_kind, priority, tenant, "
    "workspace_kind, created_by, created_ms, updated_ms, started_ms, completed_ms, result, "
    "attempts, lease_owner, lease_expires_ms, heartbeat_ms) VALUES (:title, :body, :assignee, "
    ":status, :block_kind, :priority, :tenant, 'scratch', :created_by, :created_ms, :updated_ms, "
    ":started_ms, :completed_ms, :result, :attempts, :lease_owner, :lease_expires_ms, "
    ":heartbeat_ms)",
)
_INSERT_RUN = Query(
    "bench_insert_run",
    "INSERT INTO task_runs (task_id, attempt, profile, claimer, token_hash, status, outcome, "
    "started_ms, ended_ms, lease_ttl_ms, heartbeat_ms, summary) VALUES (:task_id, 1, :profile, "
    "'dispatcher', :token_hash, :status, :outcome, :started_ms, :ended_ms, 900000, "
    ":heartbeat_ms, :summary)",
)
_INSERT_LINK = Query(
    "bench_insert_link",
    "INSERT INTO task_links (parent_id, child_id, created_ms) "
    "VALUES (:parent_id, :child_id, :created_ms)",
)
_INSERT_EVENT = Query(
    "bench_insert_event",
    "INSERT INTO task_events (task_id, run_id, kind, payload, created_ms) "
    "VALUES (:task_id, :run_id, :kind, :payload, :created_ms)",
)
_SET_CURRENT_RUN = Query(
    "bench_set_current_run",
    "UPDATE tasks SET current_run_id = (SELECT max(r.id) FROM task_runs r "
    "WHERE r.task_id = tasks.id) WHERE status = 'running'",
)
_MAX_TASK = Query("bench_max_task", "SELECT COALESCE(max(id), 0) FROM tasks")
_TASK_RANGE = Query(
    "bench_task_range", "SELECT count(*), min(id), max(id) FROM tasks WHERE id > :base"
)
_RUN_IDS = Query("bench_run_ids", "SELECT task_id, id FROM task_runs WHERE task_id > :base")
_EVENT_COUNT = Query("bench_event_count", "SELECT count(*) FROM task_events")
_TASK_IDS = Query("bench_task_ids", "SELECT min(id), max(id) FROM tasks")
_ANALYZE = Query("bench_analyze", "ANALYZE")

_PROFILES = ("coder", "coder", "reviewer", "writer", "researcher", None)
_TENANTS = (None, None, None, None, "acme", "globex", "initech")
_PRIORITIES = (0,) * 9 + (1, 2, 5, -1)
_WORDS = (
    "refactor", "parser", "migrate", "schema", "flaky", "test", "release", "notes", "dashboard",
    "latency", "audit", "cache", "retry", "webhook", "billing", "export", "onboarding", "docs",
    "lint", "upgrade", "dependency", "index", "query", "batch", "deploy", "rollback", "monitor",
    "alert", "invoice", "report", "cleanup", "benchmark", "review", "design", "spike",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class BoardMix:
    """How many tasks of each status a board has; the rest of ``total`` is done."""

    total: int
    todo: int = 0
    ready: int = 0
    running: int = 0
    blocked: int = 0
    triage: int = 0
    archived: int = 0
    #: Give the oldest running task this many events in all (heartbeats make up the rest).
    show_events: int = 0

    @classmethod
    def realistic(cls, total: int, *, todo: int, ready: int = 0, show_events: int = 0) -> BoardMix:
        """A month-old board: 1% running, 1% blocked, 0.5% triage, 2% archived, rest done."""
        return cls(
            total=total,
            todo=todo,
            ready=ready,
            running=max(1, total // 100),
            blocked=total // 100,
            triage=total // 200,
            archived=total // 50,
            show_events=show_events,
        )

    @property
    def done(self) -> int:
        """Tasks left over for ``done``."""
        rest = self.todo + self.ready + self.running + self.blocked + self.triage + self.archived
        if rest > self.total:
            raise ValueError(f"the mix needs {rest} tasks but the board has {self.total}")
        return self.total - rest


@dataclass(frozen=True, slots=True)
class Seeded:
    """What a builder made."""

    tasks: int
    events: int
    first_id: TaskId
    show_task: TaskId | None = None
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Card:
    index: int
    status: str
    created_ms: int
    started_ms: int | None = None
    completed_ms: int | None = None
    updated_ms: int = 0
    assignee: str | None = None
    tenant: str | None = None
    parents: list[int] = field(default_factory=list)


def seed_board(url: str, mix: BoardMix, *, seed: int = 1) -> Seeded:
    """Bulk-insert a board with the given status mix (an empty board is expected, not required)."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    cards = _plan(mix, rng, now)
    db = Database(url)
    try:
        base = _scalar(db, _MAX_TASK)
        insert_rows(db, _INSERT_TASK, (_task_params(card, rng) for card in cards))
        first = _check_ids(db, base, len(cards))
        insert_rows(db, _INSERT_LINK, _link_params(cards, first))
        insert_rows(db, _INSERT_RUN, _run_params(cards, first, now))
        with db.transaction(write=True) as tx:
            tx.execute(_SET_CURRENT_RUN)
            run_ids = {int(t): int(r) for t, r in tx.fetchall(_RUN_IDS, {"base": base})}
        show = _show_card(cards, mix)
        events = _events(cards, first, run_ids, show, mix.show_events, now)
        insert_rows(db, _INSERT_EVENT, events)
        analyze(db)
        counts: dict[str, int] = {}
        for card in cards:
            counts[card.status] = counts.get(card.status, 0) + 1
        return Seeded(
            tasks=len(cards),
            events=_scalar(db, _EVENT_COUNT),
            first_id=TaskId(first),
            show_task=None if show is None else TaskId(first + show.index),
            counts=counts,
        )
    finally:
        db.close()


def add_events(url: str, total: int, *, seed: int = 2) -> int:
    """Append heartbeat/comment events on existing tasks until the log holds ``total`` rows."""
    rng = random.Random(seed)
    db = Database(url)
    try:
        have = _scalar(db, _EVENT_COUNT)
        with db.transaction(write=False) as tx:
            low, high = tx.fetchone(_TASK_IDS) or (None, None)
        if low is None or high is None:
            raise ValueError("add_events needs a board with tasks")
        missing = max(0, total - have)
        now = int(time.time() * 1000)
        start = now - _DAY_MS

        def rows() -> Iterator[dict[str, object]]:
            payload: dict[str, object]
            for i in range(missing):
                if i % 3:
                    kind, payload = "heartbeat", {"note": f"step {i % 50} of 50"}
                else:
                    kind, payload = "commented", {"author": "alice", "len": 40 + i % 200}
                yield {
                    "task_id": rng.randint(low, high),
                    "run_id": None,
                    "kind": kind,
                    "payload": dump_json(payload),
                    "created_ms": start + i * _DAY_MS // max(1, missing),
                }

        insert_rows(db, _INSERT_EVENT, rows())
        analyze(db)
        return _scalar(db, _EVENT_COUNT)
    finally:
        db.close()


def insert_rows(db: Database, query: Query, rows: Iterable[Mapping[str, object]]) -> int:
    """executemany in chunks, one transaction per chunk; returns the number of rows."""
    count = 0
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        with db.transaction(write=True) as tx:
            tx.executemany(query, chunk)
        count += len(chunk)
    return count


def analyze(db: Database) -> None:
    """PostgreSQL's autovacuum would have analysed a month-old board; SQLite boards never are."""
    if db.dialect == "postgresql":
        with db.transaction(write=True) as tx:
            tx.execute(_ANALYZE)


# -- planning ------------------------------------------------------------------------------


def _plan(mix: BoardMix, rng: random.Random, now: int) -> list[_Card]:
    """Old done/archived tasks first, then the active tail, each with times and parents."""
    old = ["done"] * mix.done + ["archived"] * mix.archived
    new = (
        ["todo"] * mix.todo
        + ["ready"] * mix.ready
        + ["running"] * mix.running
        + ["blocked"] * mix.blocked
        + ["triage"] * mix.triage
    )
    rng.shuffle(old)
    rng.shuffle(new)
    statuses = old + new
    total = len(statuses)
    cards = [
        _card(i, status, now - _SPAN_MS + i * _SPAN_MS // max(1, total), rng, now)
        for i, status in enumerate(statuses)
    ]
    _link(cards, rng)
    return cards


def _card(index: int, status: str, created: int, rng: random.Random, now: int) -> _Card:
    card = _Card(
        index=index,
        status=status,
        created_ms=created,
        updated_ms=created,
        assignee=rng.choice(_PROFILES),
        tenant=rng.choice(_TENANTS),
    )
    if status == "done":
        card.started_ms = min(now - 2_000, created + rng.randint(1_000, 600_000))
        card.completed_ms = min(now - 1_000, card.started_ms + rng.randint(30_000, 3_600_000))
        card.updated_ms = card.completed_ms
    elif status in ("running", "blocked"):
        card.started_ms = min(now - 1_000, created + rng.randint(1_000, 60_000))
        card.updated_ms = card.started_ms
    elif status == "archived":
        card.updated_ms = min(now - 1_000, created + rng.randint(60_000, _DAY_MS))
    return card


def _link(cards: list[_Card], rng: random.Random) -> None:
    """Each todo task waits on an older unfinished task; some tasks also have done parents."""
    unfinished: list[int] = []
    done: list[int] = []
    anchors = [c.index for c in cards if c.status in ("running", "blocked")]
    for card in cards:
        if card.status == "todo":
            pool = unfinished or anchors
            if not pool:
                raise ValueError("todo tasks need a running or blocked task to wait on")
            card.parents.append(rng.choice(pool))
            if done and rng.random() < 0.2:
                card.parents.append(rng.choice(done))
        elif card.status == "done" and done and rng.random() < 0.3:
            card.parents.append(rng.choice(done))
        if card.status in ("todo", "running", "blocked"):
            unfinished.append(card.index)
        elif card.status == "done":
            done.append(card.index)


def _show_card(cards: list[_Card], mix: BoardMix) -> _Card | None:
    if mix.show_events <= 0:
        return None
    running = [c for c in cards if c.status == "running"]
    if not running:
        raise ValueError("show_events needs a running task")
    return running[0]


# -- rows ----------------------------------------------------------------------------------

_BODIES = tuple(
    " ".join(random.Random(n).choices(_WORDS, k=10 + (n * 7) % 60)).capitalize() + "."
    for n in range(64)
)


def _task_params(card: _Card, rng: random.Random) -> dict[str, object]:
    words = rng.choices(_WORDS, k=3 + card.index % 5)
    running = card.status == "running"
    return {
        "title": f"{' '.join(words).capitalize()} #{card.index}",
        "body": _BODIES[card.index % len(_BODIES)] if card.index % 2 else None,
        "assignee": card.assignee,
        "status": card.status,
        "block_kind": "human" if card.status == "blocked" else None,
        "priority": rng.choice(_PRIORITIES),
        "tenant": card.tenant,
        "created_by": "alice",
        "created_ms": card.created_ms,
        "updated_ms": card.updated_ms,
        "started_ms": card.started_ms,
        "completed_ms": card.completed_ms,
        "result": f"Done: {words[0]} handled, see PR {card.index}."
        if card.status == "done"
        else None,
        "attempts": 1 if card.started_ms is not None else 0,
        "lease_owner": "dispatcher" if running else None,
        "lease_expires_ms": card.updated_ms + _LEASE_MS if running else None,
        "heartbeat_ms": card.updated_ms if running else None,
    }


def _link_params(cards: list[_Card], first: int) -> Iterator[dict[str, object]]:
    for card in cards:
        for parent in card.parents:
            yield {
                "parent_id": first + parent,
                "child_id": first + card.index,
                "created_ms": card.created_ms,
            }


def _run_params(cards: list[_Card], first: int, now: int) -> Iterator[dict[str, object]]:
    outcomes = {"done": ("done", "completed"), "blocked": ("blocked", "blocked")}
    for card in cards:
        if card.started_ms is None:
            continue
        status, outcome = outcomes.get(card.status, ("running", None))
        ended = card.completed_ms if card.status == "done" else None
        if card.status == "blocked":
            ended = card.started_ms + 1_000
        yield {
            "task_id": first + card.index,
            "profile": card.assignee,
            "token_hash": _TOKEN_HASH,
            "status": status,
            "outcome": outcome,
            "started_ms": card.started_ms,
            "ended_ms": ended,
            "heartbeat_ms": now if card.status == "running" else card.started_ms,
            "summary": "handled" if card.status == "done" else None,
        }


_EventRow = tuple[int, int, int | None, str, str | None]


def _events(
    cards: list[_Card],
    first: int,
    run_ids: dict[int, int],
    show: _Card | None,
    show_events: int,
    now: int,
) -> Iterator[dict[str, object]]:
    """Every task's history, interleaved in time order as the kernel would have written it."""
    rows: list[_EventRow] = []
    for card in cards:
        rows.extend(_history(card, first, run_ids.get(first + card.index)))
    if show is not None and show.started_ms is not None:
        task_id = first + show.index
        run_id = run_ids.get(task_id)
        beats = show_events - 2  # created and claimed are already there
        span = max(1, now - show.started_ms)
        for i in range(beats):
            note = dump_json({"note": f"step {i + 1} of {beats}: still working"})
            created = show.started_ms + (i + 1) * span // (beats + 1)
            rows.append((created, task_id, run_id, "heartbeat", note))
    rows.sort(key=lambda row: row[0])
    for created, task_id, run_id, kind, payload in rows:
        yield {
            "task_id": task_id,
            "run_id": run_id,
            "kind": kind,
            "payload": payload,
            "created_ms": created,
        }


def _history(card: _Card, first: int, run_id: int | None) -> list[_EventRow]:
    task_id = first + card.index
    initial = "todo" if card.status == "todo" else "triage" if card.status == "triage" else "ready"
    created = {
        "assignee": card.assignee,
        "created_by": "alice",
        "parents": [format_task_id(first + p) for p in card.parents],
        "skills": [],
        "status": initial,
        "tenant": card.tenant,
    }
    out: list[_EventRow] = [(card.created_ms, task_id, None, "created", dump_json(created))]
    if card.started_ms is not None:
        claimed = {"claimer": "dispatcher", "lease_expires_ms": card.started_ms + 900_000}
        out.append((card.started_ms, task_id, run_id, "claimed", dump_json(claimed)))
    if card.status == "done" and card.completed_ms is not None:
        completed = {"result_len": 40, "summary": "handled"}
        out.append((card.completed_ms, task_id, run_id, "completed", dump_json(completed)))
    elif card.status == "blocked" and card.started_ms is not None:
        blocked = {"kind": "human", "reason": "needs a decision"}
        out.append((card.started_ms + 1_000, task_id, run_id, "blocked", dump_json(blocked)))
    elif card.status == "archived":
        out.append((card.updated_ms, task_id, None, "archived", dump_json({"previous": "ready"})))
    return out


# -- helpers -------------------------------------------------------------------------------


def _scalar(db: Database, query: Query) -> int:
    with db.transaction(write=False) as tx:
        return int(tx.scalar(query))


def _check_ids(db: Database, base: int, expected: int) -> int:
    """The new tasks got ids base+1 … base+n (true on a board nobody else writes to)."""
    with db.transaction(write=False) as tx:
        row = tx.fetchone(_TASK_RANGE, {"base": base})
    assert row is not None
    count, low, high = row
    if count != expected or (expected and (low != base + 1 or high != base + expected)):
        raise RuntimeError(f"task ids are not contiguous after bulk insert: {row!r}")
    return base + 1
