"""The dispatcher: one pass reclaims, times out, promotes, then claims ready work up to the caps.

Caps are live counts of running tasks, re-read from config on every pass. Candidates are taken
per assignee with free capacity (an index lookup each), merged by priority, then claimed in one
batch whose every claim is a compare-and-set within the caps, so several dispatchers on one
board never double-claim nor overrun a cap. Ready tasks
nobody can run — unassigned, or assigned to a name with no profile — are reported, not dropped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kanban_core.board import hosts
from kanban_core.board.batch_claims import Candidate
from kanban_core.board.domain import Actor, Claim, RunId, RunOutcome, TaskId, format_task_id
from kanban_core.board.kanban import Kanban
from kanban_core.board.recovery import FailurePolicy, OverdueRun
from kanban_core.config import KanbanConfig
from kanban_core.dispatch import health
from kanban_core.dispatch.logs import log_path, tail
from kanban_core.dispatch.sandbox import probe
from kanban_core.dispatch.spawn import Spawner, SpawnError, WorkerSpec
from kanban_core.errors import KanbanError, StaleRun
from kanban_core.profiles import AssigneeProfile, SandboxMode
from kanban_core.storage import Query

# One scan of the running tasks' own index (it holds the assignee) gives every assignee's
# count and the total: the plain assignee index would walk each assignee's whole history.
_RUNNING_BY_ASSIGNEE = Query(
    "running_by_assignee",
    "SELECT assignee, count(*) FROM tasks {index:ix_tasks_running} "
    "WHERE status = 'running' GROUP BY assignee",
)
# Only what this host may run (the claim checks it again): a host's candidates are never
# crowded out by work placed on another.
_READY_FOR_SQL = (
    "SELECT id, priority, created_ms FROM tasks {index:ix_tasks_ready_assignee} "
    "WHERE status = 'ready' AND assignee = :assignee "
    "AND (not_before_ms IS NULL OR not_before_ms <= {now})%s "
    "ORDER BY priority DESC, created_ms, id LIMIT :limit"
)
_READY_FOR = Query("ready_for_assignee", _READY_FOR_SQL % hosts.IMPLICIT_PLACEMENT)
_READY_FOR_HOST = Query("ready_for_assignee_on_host", _READY_FOR_SQL % hosts.HOST_PLACEMENT)
# Ordered by the index's own key (assignee first, all NULL here): PostgreSQL then reads the
# ready-by-assignee index from its NULL end instead of filtering the whole ready queue.
_READY_UNASSIGNED = Query(
    "ready_unassigned",
    "SELECT id FROM tasks {index:ix_tasks_ready_assignee} "
    "WHERE status = 'ready' AND assignee IS NULL "
    "ORDER BY assignee, priority DESC, created_ms, id LIMIT :limit",
)
# The distinct assignees of ready tasks by hopping from one to the next in the index (a loose
# index scan): a few lookups, where DISTINCT would read every ready task's entry.
_READY_ASSIGNEES = Query(
    "ready_assignees",
    "WITH RECURSIVE hop(assignee) AS ("
    "SELECT min(assignee) FROM tasks {index:ix_tasks_ready_assignee} WHERE status = 'ready' "
    "UNION ALL SELECT (SELECT min(t.assignee) FROM tasks t {index:ix_tasks_ready_assignee} "
    "WHERE t.status = 'ready' AND t.assignee > hop.assignee) FROM hop "
    "WHERE hop.assignee IS NOT NULL) "
    "SELECT assignee FROM hop WHERE assignee IS NOT NULL",
)
_REPORT_LIMIT = 20


@dataclass(frozen=True, slots=True)
class Spawned:
    """A task handed to a worker this pass."""

    task_id: TaskId
    assignee: str
    run_id: int
    pid: int | None


@dataclass(slots=True)
class DispatchReport:
    """What one pass did, and what it could not do."""

    reclaimed: list[TaskId] = field(default_factory=list)
    timed_out: list[TaskId] = field(default_factory=list)
    crashed: list[TaskId] = field(default_factory=list)
    promoted: list[TaskId] = field(default_factory=list)
    spawned: list[Spawned] = field(default_factory=list)
    would_spawn: list[tuple[TaskId, str]] = field(default_factory=list)
    spawn_failed: list[tuple[TaskId, str]] = field(default_factory=list)
    gave_up: list[TaskId] = field(default_factory=list)
    #: Blocked because they are bound to a revoked host (nobody else may claim them).
    stranded: list[TaskId] = field(default_factory=list)
    skipped_unassigned: list[TaskId] = field(default_factory=list)
    skipped_unknown: dict[str, list[TaskId]] = field(default_factory=dict)
    at_capacity: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The ``dispatch --json`` shape (the reference's, plus what we add)."""
        ref = format_task_id
        return {
            "reclaimed": [ref(t) for t in self.reclaimed],
            "timed_out": [ref(t) for t in self.timed_out],
            "crashed": [ref(t) for t in self.crashed],
            "promoted": len(self.promoted),
            "spawned": [
                {
                    "task_id": ref(s.task_id),
                    "assignee": s.assignee,
                    "run_id": s.run_id,
                    "pid": s.pid,
                }
                for s in self.spawned
            ],
            "would_spawn": [{"task_id": ref(t), "assignee": a} for t, a in self.would_spawn],
            "spawn_failed": [{"task_id": ref(t), "error": e} for t, e in self.spawn_failed],
            "auto_blocked": [ref(t) for t in self.gave_up],
            "stranded": [ref(t) for t in self.stranded],
            "skipped_unassigned": [ref(t) for t in self.skipped_unassigned],
            "skipped_unknown_assignee": {
                name: [ref(t) for t in ids] for name, ids in self.skipped_unknown.items()
            },
            "at_capacity": self.at_capacity,
            "duration_ms": round(self.duration_ms, 3),
        }

    def counts(self) -> dict[str, int]:
        """Small numbers for the health record."""
        return {
            "reclaimed": len(self.reclaimed),
            "timed_out": len(self.timed_out),
            "crashed": len(self.crashed),
            "promoted": len(self.promoted),
            "spawned": len(self.spawned),
            "spawn_failed": len(self.spawn_failed),
            "gave_up": len(self.gave_up),
            "stranded": len(self.stranded),
            "unassigned": len(self.skipped_unassigned),
            "unknown_assignee": sum(len(v) for v in self.skipped_unknown.values()),
        }


class Dispatcher:
    """Hands ready tasks to supervised workers; one ``run_pass`` at a time per instance."""

    def __init__(
        self,
        board: Kanban,
        *,
        config: Callable[[], KanbanConfig],
        spawner: Spawner,
        name: str | None = None,
        sweep_every: int = 10,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self.board = board
        self._config = config
        self.spawner = spawner
        self.host = socket.gethostname()
        self.name = name or f"{self.host}:{os.getpid()}"
        self.actor = Actor(name=f"dispatcher@{self.host}")
        self._sweep_every = sweep_every
        #: Whether this dispatcher runs the board's maintenance (reclaiming dead runs, timeouts,
        #: permission expiry, the promotion sweep); among gateways, only the leader's does.
        self.leader = leader
        self._passes = 0
        self._started: dict[int, tuple[TaskId, RunId]] = {}
        self._lock = threading.Lock()

    def run_pass(self, *, dry_run: bool = False, max_spawn: int | None = None) -> DispatchReport:
        """One pass; its outcome (or error) is recorded as this dispatcher's health."""
        with self._lock:  # a scheduled pass and one asked for from chat never overlap
            return self._run_pass(dry_run=dry_run, max_spawn=max_spawn)

    def _run_pass(self, *, dry_run: bool, max_spawn: int | None) -> DispatchReport:
        started = time.perf_counter()
        report = DispatchReport()
        error: str | None = None
        try:
            config = self._config()
            if not dry_run:
                # The host's heartbeat (database clock); a revoked host's claims find nothing.
                revoked = self.board.host_heartbeat() is False
                self._reap(config, report, record=not revoked)
                if revoked:
                    # It acts on nothing more: its runs are fenced, and the leader on another
                    # host reclaims them (as reclaimed, not as a crash this host reports).
                    return report
                if self.leader():
                    self._recover(config, report)
                    # Promotion is event-driven; the sweep is a rare safety net.
                    if self._passes % self._sweep_every == 0:
                        report.promoted = self.board.promote_all()
            self._claim_and_spawn(config, report, dry_run=dry_run, max_spawn=max_spawn)
        except KanbanError as exc:
            error = str(exc)
            raise
        finally:
            self._passes += 1
            report.duration_ms = (time.perf_counter() - started) * 1000
            if not dry_run:
                with contextlib.suppress(KanbanError):
                    health.record_pass(
                        self.board, self.name, self.host, report.duration_ms, error, report.counts()
                    )
        return report

    # -- recovery ---------------------------------------------------------------------------

    def _reap(self, config: KanbanConfig, report: DispatchReport, *, record: bool = True) -> None:
        # A supervisor records its own verdicts; one that died without doing so (killed, or a
        # bug) is noticed here at once instead of when its lease runs out.
        for pid, code in self.spawner.reap():
            started = self._started.pop(pid, None)
            if started is None or code == 0 or not record:
                continue
            task_id, run_id = started
            task = self.board.get(task_id)
            if task.current_run_id != run_id:
                continue
            error = f"the worker supervisor (pid {pid}) exited with code {code} without a verdict"
            evidence = tail(log_path(self.board.settings.home, task_id), 4000)
            self._record(
                task_id,
                run_id,
                RunOutcome.CRASHED,
                error,
                _policy(config),
                report.crashed,
                report,
                evidence,
            )

    def _recover(self, config: KanbanConfig, report: DispatchReport) -> None:
        policy = _policy(config)
        # Recorded here so an unanswered request expires even when no agent is waiting on it.
        self.board.expire_permissions()
        # A dead host's runs: a revoked host's at once (first: its runs' leases run out too, and
        # that is not why they end), a missing host's by their leases (below).
        # Revoking is an admin's act, not the task failing: its run is reclaimed (no failure
        # counted, no backoff), so another host takes it up on this very pass.
        for task_id, _run_id, host in self.board.revoked_hosts_runs():
            try:
                self.board.reclaim(self.actor, task_id, f"its host {host!r} was revoked")
            except KanbanError:
                continue  # it ended meanwhile
            report.reclaimed.append(task_id)
        # What only a revoked host could run (its reclaimed runs among them) is blocked for an
        # admin to re-place, never left in ready where no one may claim it.
        report.stranded = self.board.block_stranded()
        for task_id, run_id, holder in self.board.expired_leases():
            error = f"lease expired: no heartbeat from {holder or 'its worker'}"
            self._record(
                task_id, run_id, RunOutcome.CRASHED, error, policy, report.reclaimed, report
            )
        grace_ms = (
            config.dispatcher.terminate_grace_seconds + config.dispatcher.lease_ttl_seconds
        ) * 1000
        for run in self.board.overdue_runs(grace_ms=grace_ms):
            # The verdict first: the supervisor, told to stop, then finds its run already
            # ended and records nothing of its own.
            error = f"exceeded its max runtime of {run.max_runtime_s}s"
            self._record(
                run.task_id,
                run.run_id,
                RunOutcome.TIMED_OUT,
                error,
                policy,
                report.timed_out,
                report,
            )
            if run.pid and self._runs_here(run):
                _kill_group(run.pid, config.dispatcher.terminate_grace_seconds)

    def _runs_here(self, run: OverdueRun) -> bool:
        """Whether the run's supervisor is a process of this machine: claimed by this enrolled
        host (two hosts may share a hostname) and started under this hostname."""
        mine = None if self.board.host is None else self.board.host.host_id
        return run.host_id == mine and run.host == self.host

    def _record(
        self,
        task_id: TaskId,
        run_id: Any,
        outcome: RunOutcome,
        error: str,
        policy: FailurePolicy,
        bucket: list[TaskId],
        report: DispatchReport,
        evidence: str | None = None,
    ) -> None:
        try:
            verdict = self.board.record_failure(
                self.actor, task_id, run_id, outcome, error, policy, evidence=evidence
            )
        except StaleRun:
            return  # the worker (or another dispatcher) recorded the end first
        bucket.append(task_id)
        if verdict.gave_up:
            report.gave_up.append(task_id)

    # -- claiming ---------------------------------------------------------------------------

    def _claim_and_spawn(
        self, config: KanbanConfig, report: DispatchReport, *, dry_run: bool, max_spawn: int | None
    ) -> None:
        profiles = config.assignees
        ready_for, placement = _READY_FOR, {}
        if self.board.host is not None:
            ready_for = _READY_FOR_HOST
            placement = {
                "host_id": self.board.host.host_id,
                "host_secret": self.board.host.secret_hash,
            }
        with self.board.db.transaction(write=False) as tx:
            running: dict[str | None, int] = dict(tx.fetchall(_RUNNING_BY_ASSIGNEE))
            free_global = config.dispatcher.max_in_progress - sum(running.values())
            if max_spawn is not None:
                free_global = min(free_global, max_spawn)
            candidates: list[tuple[int, int, int, str]] = []
            for name, profile in profiles.items():
                cap = profile.max_in_progress or config.dispatcher.max_in_progress
                free = min(cap - running.get(name, 0), max(free_global, 0))
                if free <= 0:
                    report.at_capacity.append(name)
                    continue
                for task_id, priority, created in tx.fetchall(
                    ready_for, {"assignee": name, "limit": free} | placement
                ):
                    candidates.append((-priority, created, task_id, name))
            report.skipped_unassigned = [
                TaskId(r[0]) for r in tx.fetchall(_READY_UNASSIGNED, {"limit": _REPORT_LIMIT})
            ]
            for (assignee,) in tx.fetchall(_READY_ASSIGNEES):
                if assignee not in profiles:
                    params = {"assignee": assignee, "limit": _REPORT_LIMIT} | placement
                    ids = tx.fetchall(ready_for, params)
                    report.skipped_unknown[assignee] = [TaskId(r[0]) for r in ids]
        candidates.sort()
        chosen = candidates[: max(free_global, 0)]
        if dry_run:
            report.would_spawn += [(TaskId(task_id), name) for _, _, task_id, name in chosen]
        elif chosen:
            self._start(chosen, config, report)

    def _start(
        self, chosen: list[tuple[int, int, int, str]], config: KanbanConfig, report: DispatchReport
    ) -> None:
        """Claim the pass's candidates in one batch, then hand each claimed task to a worker."""
        profiles = config.assignees
        # The caps again, in the claim itself: the pass's counts are a moment old, and other
        # dispatchers (other hosts) claim from the same board meanwhile. A candidate someone
        # else won, that changed meanwhile, or that a cap now stops is simply not claimed.
        claimed = self.board.claim_candidates(
            self.actor,
            [
                Candidate(
                    TaskId(task_id),
                    name,
                    profiles[name].max_in_progress or config.dispatcher.max_in_progress,
                )
                for _, _, task_id, name in chosen
            ],
            ttl_s=config.dispatcher.lease_ttl_seconds,
            max_running=config.dispatcher.max_in_progress,
        )
        for claim in claimed:
            assert claim.task.assignee is not None  # the candidates' assignees are profiles
            self._spawn(claim, profiles[claim.task.assignee], config, report)

    def _spawn(
        self, claim: Claim, profile: AssigneeProfile, config: KanbanConfig, report: DispatchReport
    ) -> None:
        ttl = config.dispatcher.lease_ttl_seconds
        task = claim.task
        task_id = task.id
        spec = WorkerSpec(
            task_id=task.id,
            run_id=claim.run_id,
            db_url=self.board.settings.db_url,
            home=str(self.board.settings.home),
            assignee=profile.name,
            command=profile.command,
            workspace=_workspace_text(profile),
            repo=profile.repo,
            env=dict(profile.env),
            pass_env=profile.pass_env,
            allow_dirty_base=profile.allow_dirty_base,
            lease_ttl_s=ttl,
            max_runtime_s=task.max_runtime_s or profile.max_runtime_s,
            terminate_grace_s=config.dispatcher.terminate_grace_seconds,
            log_rotate_bytes=config.dispatcher.log_rotate_bytes,
            log_backups=config.dispatcher.log_backups,
            failure_limit=config.dispatcher.failure_limit,
            backoff_base_s=config.dispatcher.backoff_base_seconds,
            backoff_cap_s=config.dispatcher.backoff_cap_seconds,
            first_turn_args=profile.first_turn_args,
            resume_args=profile.resume_args,
            sandbox=_sandbox_json(profile),
            permissions=profile.permissions.to_json(),
            protocol=profile.protocol,
            permission_ttl_s=config.permissions.ttl_seconds,
            quota_backoff_s=config.dispatcher.quota_backoff_seconds,
            max_cost_micro_usd=profile.max_cost_micro_usd,
            max_tokens=profile.max_tokens,
            progress_interval_s=profile.progress_interval_s,
        )
        try:
            pid = self.spawner.spawn(spec, claim.token)
        except SpawnError as exc:
            report.spawn_failed.append((task_id, str(exc)))
            with contextlib.suppress(StaleRun):
                verdict = self.board.record_failure(
                    self.actor,
                    task_id,
                    claim.run_id,
                    RunOutcome.SPAWN_FAILED,
                    str(exc),
                    _policy(config),
                )
                if verdict.gave_up:
                    report.gave_up.append(task_id)
            return
        self._started[pid] = (task_id, claim.run_id)
        self.board.set_worker(task_id, claim.run_id, pid=pid, host=self.host)
        report.spawned.append(Spawned(task_id, profile.name, claim.run_id, pid))


def _policy(config: KanbanConfig) -> FailurePolicy:
    d = config.dispatcher
    return FailurePolicy(d.failure_limit, d.backoff_base_seconds, d.backoff_cap_seconds)


def _sandbox_json(profile: AssigneeProfile) -> dict[str, object]:
    """The profile's policy, with this host's probe of bubblewrap (made once per process), so
    each supervisor need not pay for probing again."""
    policy = profile.sandbox
    if policy.mode is SandboxMode.OFF:
        return policy.to_json()
    return policy.to_json() | {"probe": probe() or ""}


def _workspace_text(profile: AssigneeProfile) -> str | None:
    spec = profile.workspace
    if spec is None:
        return None
    return f"dir:{spec.path}" if spec.path else spec.kind.value


def _kill_group(pid: int, grace_s: int) -> None:
    """SIGTERM the supervisor's process group, then SIGKILL it after the grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
