"""The Kanban facade: validated operations, each in one transaction. What CLI and gateway call."""

from __future__ import annotations

import builtins
import enum
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kanban_core import enrollment
from kanban_core.board import (
    audit,
    batch_claims,
    cards,
    deliveries,
    hosts,
    identity,
    links,
    maintenance,
    notify,
    permissions,
    placement,
    progress,
    reads,
    recovery,
    runs,
    tasks,
)
from kanban_core.board.changes import ChangeWatch, wait_for_change
from kanban_core.board.domain import (
    Actor,
    BlockKind,
    BoardStats,
    Claim,
    CreateResult,
    Event,
    GcReport,
    PermissionDecision,
    PermissionRequest,
    PermissionStatus,
    Run,
    RunId,
    RunOutcome,
    Subscription,
    Task,
    TaskDetail,
    TaskId,
    TaskStatus,
    format_run_id,
    format_task_id,
    parse_permission_ref,
)
from kanban_core.board.progress import bounded_snapshot
from kanban_core.board.recovery import FailurePolicy, FailureVerdict, OverdueRun
from kanban_core.board.rows import event_from_row
from kanban_core.board.validation import (
    MAX_BODY_BYTES,
    MAX_COMMENT_BYTES,
    MAX_SUMMARY_BYTES,
    WorkspaceSpec,
    check_metadata,
    clean_idempotency_key,
    clean_name,
    clean_optional,
    clean_repo,
    clean_skills,
    clean_text,
    clean_title,
)
from kanban_core.errors import InvalidTransition, PermissionDenied, StaleRun, ValidationError
from kanban_core.storage import Database, Transaction
from kanban_core.storage.migrate import ensure_schema

if TYPE_CHECKING:
    # The board needs settings of this shape, not how they are read (that is config's job).
    from kanban_core.settings import KernelSettings

_PRIORITY_RANGE = range(-1_000_000, 1_000_001)
_MAX_TTL_S = 7 * 86400
#: The most tasks one batch claim takes (a dispatcher pass's slots, a worker loop's bite).
_MAX_BATCH = 1000
_MAX_PLATFORM_CHARS = 32
_MAX_RETENTION_DAYS = 36_500
_MAX_ASK_TTL_S = 86400
#: How many stranded tasks a revocation blocks in its own commit (the leader's sweep the rest).
_REVOKE_BLOCK_LIMIT = 1000
#: A waiter re-reads its request this often even without a change hint (a missed hint then
#: costs this much latency, never an answer).
PERMISSION_PROBE_S = 2.0


class OnMissing(enum.Enum):
    """What opening a board does when there is none where the settings point."""

    #: Reads: BoardNotFound, naming where it looked. Nothing is created.
    REFUSE = "refuse"
    #: A writing verb's first use: the board file, and the board's home directory, but no
    #: other missing directory (that is a mistyped path).
    CREATE = "create"
    #: ``init`` and the gateway's first start: the board and whatever directories it needs.
    CREATE_ANYWHERE = "create_anywhere"


#: The scheduled job that collects the board's old rows (``maintenance_runs.job``).
GC_JOB = "gc"


class Kanban:
    """A board. Every method is one transaction; reads never write."""

    def __init__(self, db: Database, settings: KernelSettings) -> None:
        self.db = db
        self.settings = settings
        #: The enrolled host this machine acts as, from its local file; None: the implicit host.
        self.host = enrollment.load(settings.home)
        if self.host is not None:
            with db.transaction(write=False) as tx:
                enrollment.check_board(settings.home, self.host, identity.board_id(tx))

    @classmethod
    def open(
        cls, settings: KernelSettings, *, on_missing: OnMissing = OnMissing.CREATE_ANYWHERE
    ) -> Kanban:
        """Open the board the settings point at, upgrading its schema if needed; whether a
        missing board is created is ``on_missing``'s choice."""
        db = Database(
            settings.db_url, synchronous=settings.synchronous, pool_size=settings.pool_size
        )
        try:
            ensure_schema(
                db,
                create=on_missing is not OnMissing.REFUSE,
                make_dirs=on_missing is OnMissing.CREATE_ANYWHERE
                or (db.sqlite_path is not None and Path(db.sqlite_path).parent == settings.home),
            )
        except BaseException:
            db.close()
            raise
        try:
            return cls(db, settings)
        except BaseException:
            db.close()  # a host.json from another board: nothing is done with this one
            raise

    def close(self) -> None:
        """Release every database connection."""
        self.db.close()

    def __enter__(self) -> Kanban:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- hosts ------------------------------------------------------------------------------

    def enroll_host(
        self, actor: Actor, *, name: str, labels: Sequence[str], secret: str, readmit: bool
    ) -> hosts.HostIdentity:
        """Register this machine as a host (readmitting a revoked one is ``readmit``)."""
        _require_operator(actor, "enroll a host")
        clean = hosts.clean_host_name(name)
        clean_labels = hosts.clean_labels(labels)
        with self.db.transaction(write=True) as tx:
            host_id = hosts.enroll(
                tx, name=clean, labels=clean_labels, secret=secret, readmit=readmit
            )
            board = identity.ensure_board_id(tx)
        return hosts.HostIdentity(host_id, clean, secret, board)

    def host_heartbeat(self) -> bool | None:
        """This host seen now (database clock): False if revoked, None if not enrolled."""
        if self.host is None:
            return None
        with self.db.transaction(write=True) as tx:
            return hosts.heartbeat(tx, self.host)

    def list_hosts(
        self, *, missing_after_ms: int = hosts.MISSING_AFTER_MS
    ) -> builtins.list[hosts.HostInfo]:
        """Every enrolled host, with its state, open runs and the leases it holds."""
        with self.db.transaction(write=False) as tx:
            return hosts.list_hosts(tx, missing_after_ms=missing_after_ms)

    def revoke_host(self, actor: Actor, name: str) -> builtins.list[TaskId]:
        """Revoke a host: from now on it claims nothing and its runs cannot write.

        The ready and waiting tasks bound to it are blocked in the same commit (kind
        placement: nobody else may claim them until an admin re-places them); their ids.
        """
        _require_operator(actor, "revoke a host")
        clean = hosts.clean_host_name(name)
        with self.db.transaction(write=True) as tx:
            hosts.revoke(tx, clean)
            return placement.block_stranded(tx, limit=_REVOKE_BLOCK_LIMIT)

    def block_stranded(self, limit: int = 100) -> builtins.list[TaskId]:
        """Block the ready or waiting tasks bound to a revoked host (the leader's sweep: its
        reclaimed runs, and tasks that reached ready since); a read when there are none."""
        with self.db.transaction(write=False) as tx:
            if not placement.stranded(tx, limit=1):
                return []
        with self.db.transaction(write=True) as tx:
            return placement.block_stranded(tx, limit=limit)

    def place(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        host: str | None = None,
        label: str | None = None,
        any_host: bool = False,
    ) -> placement.Replaced:
        """An admin re-places a task: on ``host``, on hosts carrying ``label``, or anywhere.

        An unknown or revoked host, or a label no live host carries, is refused and changes
        nothing. A blocked task stays blocked: an explicit unblock lets the new host claim it.
        """
        _require_operator(actor, "re-place a task")
        if (host is not None) + (label is not None) + any_host != 1:
            raise ValidationError("re-placing names one of a host, a label or any host")
        with self.db.transaction(write=True) as tx:
            host_id, host_label = hosts.resolve_placement(tx, host, label)
            return placement.replace(tx, task_id, host_id=host_id, label=host_label, by=actor.name)

    # -- authoring --------------------------------------------------------------------------

    def create(
        self,
        actor: Actor,
        *,
        title: str,
        body: str | None = None,
        assignee: str | None = None,
        parents: Iterable[TaskId] = (),
        workspace: WorkspaceSpec | None = None,
        tenant: str | None = None,
        priority: int = 0,
        triage: bool = False,
        idempotency_key: str | None = None,
        max_runtime_s: int | None = None,
        skills: Iterable[str] = (),
        repo: str | None = None,
        max_cost_micro_usd: int | None = None,
        max_tokens: int | None = None,
        host: str | None = None,
        label: str | None = None,
    ) -> CreateResult:
        """Create a task; with an idempotency key, a retry returns the live task that holds it.

        ``host`` or ``label`` places it: only that host, or hosts carrying that label, claim it.
        """
        new = tasks.NewTask(
            title=clean_title(title),
            created_by=actor.name,
            body=clean_optional(body, field="body", max_bytes=MAX_BODY_BYTES),
            assignee=clean_name(assignee, field="assignee"),
            parents=tuple(parents),
            workspace=workspace,
            tenant=clean_name(tenant, field="tenant"),
            priority=_check_priority(priority),
            triage=triage,
            idempotency_key=clean_idempotency_key(idempotency_key),
            max_runtime_s=_check_positive(max_runtime_s, "max runtime"),
            skills=clean_skills(list(skills)),
            repo=clean_repo(repo, workspace),
            max_cost_micro_usd=_check_positive(max_cost_micro_usd, "max cost"),
            max_tokens=_check_positive(max_tokens, "max tokens"),
        )
        for attempt in range(3):
            try:
                with self.db.transaction(write=True) as tx:
                    if actor.run is not None:
                        new = replace(new, created_by=runs.worker_name(tx, actor.run))
                    host_id, host_label = hosts.resolve_placement(tx, host, label)
                    result = tasks.create(tx, new)
                    if result.created and (host_id is not None or host_label is not None):
                        hosts.place(tx, result.task.id, host_id, host_label)
                    return result
            except Exception as exc:
                # Two creates with one key raced past the lookup; the loser finds the winner now.
                if attempt == 2 or not self.db.is_unique_violation(exc):
                    raise
        raise AssertionError("unreachable")

    def edit(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        title: str | None = None,
        body: str | None = None,
        priority: int | None = None,
        tenant: str | None = None,
    ) -> Task:
        """Change title, body, priority or tenant (an empty body or tenant clears it)."""
        _require_operator(actor, "edit")
        clean_body = (
            None if body is None else clean_optional(body, field="body", max_bytes=MAX_BODY_BYTES)
        )
        with self.db.transaction(write=True) as tx:
            return tasks.edit(
                tx,
                task_id,
                title=None if title is None else clean_title(title),
                body=clean_body,
                clear_body=body is not None and clean_body is None,
                priority=None if priority is None else _check_priority(priority),
                tenant=None if tenant is None else clean_name(tenant, field="tenant"),
                clear_tenant=tenant is not None and clean_name(tenant, field="tenant") is None,
            )

    def assign(self, actor: Actor, task_id: TaskId, assignee: str | None) -> Task:
        """Assign (or with None, unassign) a task that is not running."""
        _require_operator(actor, "assign")
        name = clean_name(assignee, field="assignee")
        with self.db.transaction(write=True) as tx:
            return tasks.assign(tx, task_id, name)

    def link(self, actor: Actor, parent_id: TaskId, child_id: TaskId) -> bool:
        """Make child depend on parent; False if the link existed."""
        with self.db.transaction(write=True) as tx:
            if actor.run is not None:
                runs.worker_name(tx, actor.run)  # workers may link, but only while their run lives
            return links.link(tx, parent_id, child_id)

    def unlink(self, actor: Actor, parent_id: TaskId, child_id: TaskId) -> bool:
        """Remove a dependency; False if there was none."""
        _require_operator(actor, "unlink")
        with self.db.transaction(write=True) as tx:
            return links.unlink(tx, parent_id, child_id)

    def comment(self, actor: Actor, task_id: TaskId, body: str) -> int:
        """Add a comment authored by the actor; returns its id."""
        text = clean_text(body, field="comment", max_bytes=MAX_COMMENT_BYTES)
        with self.db.transaction(write=True) as tx:
            return tasks.comment(tx, task_id, self._author(tx, actor), text)

    def accept(self, actor: Actor, task_id: TaskId, reason: str | None = None) -> Task:
        """Take a triaged task onto the board (ready, or todo while parents are unfinished)."""
        return self._move_with_reason(actor, "accept", task_id, reason, tasks.accept, "ACCEPTED")

    def archive(self, actor: Actor, task_id: TaskId) -> Task:
        """Archive a task (closing an open run as reclaimed)."""
        _require_operator(actor, "archive")
        with self.db.transaction(write=True) as tx:
            return tasks.archive(tx, task_id)

    # -- runs -------------------------------------------------------------------------------

    def claim(
        self,
        actor: Actor,
        task_id: TaskId | None = None,
        *,
        ttl_s: int | None = None,
        assignee: str | None = None,
        max_running: int | None = None,
        max_running_assignee: int | None = None,
    ) -> Claim | None:
        """Claim a ready task (or the next one); returns the run and its secret token.

        The caps (running tasks on the board, and of the task's assignee) are checked by the
        claim itself: a claim that would exceed one claims nothing, however many race.
        """
        ttl = self._claim_ttl(actor, ttl_s, max_running, max_running_assignee)
        # One statement on PostgreSQL (a server-side function): its own transaction.
        with self.db.transaction(write=True, single=True) as tx:
            return runs.claim(
                tx,
                claimer=actor.name,
                ttl_ms=ttl * 1000,
                task_id=task_id,
                assignee=clean_name(assignee, field="assignee"),
                max_running=max_running,
                max_running_assignee=max_running_assignee,
                host=self.host,
            )

    def claim_next(
        self,
        actor: Actor,
        limit: int,
        *,
        ttl_s: int | None = None,
        assignee: str | None = None,
        max_running: int | None = None,
        max_running_assignee: int | None = None,
    ) -> builtins.list[Claim]:
        """Claim up to ``limit`` of the next ready tasks at once, each its own run and token
        (one round trip on PostgreSQL); the caps hold as for ``claim``."""
        ttl = self._claim_ttl(actor, ttl_s, max_running, max_running_assignee)
        if not 0 < limit <= _MAX_BATCH:
            raise ValidationError(f"a batch claims between 1 and {_MAX_BATCH} tasks (got {limit})")
        with self.db.transaction(write=True, single=True) as tx:
            return batch_claims.claim_next(
                tx,
                limit,
                claimer=actor.name,
                ttl_ms=ttl * 1000,
                assignee=clean_name(assignee, field="assignee"),
                caps=batch_claims.Caps(max_running, max_running_assignee),
                host=self.host,
            )

    def claim_candidates(
        self,
        actor: Actor,
        candidates: Sequence[batch_claims.Candidate],
        *,
        ttl_s: int | None = None,
        max_running: int | None = None,
    ) -> builtins.list[Claim]:
        """Claim what can be claimed of ``candidates`` (a dispatcher's pass), in their order,
        each within the board's cap and its assignee's (one round trip on PostgreSQL)."""
        ttl = self._claim_ttl(actor, ttl_s, max_running, *(c.cap for c in candidates))
        if len(candidates) > _MAX_BATCH:
            raise ValidationError(f"a batch claims at most {_MAX_BATCH} tasks")
        with self.db.transaction(write=True, single=True) as tx:
            return batch_claims.claim_candidates(
                tx,
                candidates,
                claimer=actor.name,
                ttl_ms=ttl * 1000,
                max_running=max_running,
                host=self.host,
            )

    def _claim_ttl(self, actor: Actor, ttl_s: int | None, *caps: int | None) -> int:
        """The lease a claim takes, once the claimer and its caps are checked."""
        _require_operator(actor, "claim")
        ttl = ttl_s if ttl_s is not None else self.settings.claim_ttl_s
        if not 0 < ttl <= _MAX_TTL_S:
            raise ValidationError(f"--ttl must be between 1 and {_MAX_TTL_S} seconds")
        for cap in caps:
            if cap is not None and cap < 0:
                raise ValidationError(f"a cap on running tasks cannot be negative (got {cap})")
        return ttl

    def complete(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        result: str | None = None,
        summary: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Task:
        """Complete a task; a worker must prove its run (stale attempts are refused)."""
        runs.check_scope(actor.run, task_id)
        clean_result = clean_optional(result, field="result", max_bytes=MAX_SUMMARY_BYTES)
        clean_summary = clean_optional(summary, field="summary", max_bytes=MAX_SUMMARY_BYTES)
        # A worker's completion is one statement on PostgreSQL; an operator's reads first.
        with self.db.transaction(write=True, single=actor.run is not None) as tx:
            return runs.complete(
                tx,
                task_id,
                proof=actor.run,
                result=clean_result,
                summary=clean_summary,
                metadata=check_metadata(metadata),
            )

    def block(self, actor: Actor, task_id: TaskId, reason: str | None) -> Task:
        """Block a task for a human; the reason is kept as a comment and on the run."""
        runs.check_scope(actor.run, task_id)
        given = clean_optional(reason, field="reason", max_bytes=MAX_COMMENT_BYTES)
        if given is None and actor.run is not None:
            raise ValidationError("a worker must say why it is blocked")
        text = given or f"blocked by {actor.name}"
        with self.db.transaction(write=True) as tx:
            if given is not None:
                tasks.comment(tx, task_id, self._author(tx, actor), f"BLOCKED: {given}")
            by = None if actor.run is not None else actor.name
            return runs.block(
                tx, task_id, proof=actor.run, reason=text, by=by, reason_given=given is not None
            )

    def unblock(self, actor: Actor, task_id: TaskId, reason: str | None = None) -> Task:
        """Lift a block: ready, or todo while parents are unfinished."""
        return self._move_with_reason(
            actor, "unblock", task_id, reason, placement.unblock, "UNBLOCK"
        )

    def _move_with_reason(
        self,
        actor: Actor,
        verb: str,
        task_id: TaskId,
        reason: str | None,
        move: Callable[[Transaction, TaskId], Task],
        label: str,
    ) -> Task:
        """An operator's move onto the board, its reason kept as a comment in the same commit."""
        _require_operator(actor, verb)
        text = clean_optional(reason, field="reason", max_bytes=MAX_COMMENT_BYTES)
        with self.db.transaction(write=True) as tx:
            task = move(tx, task_id)
            if text:
                tasks.comment(tx, task_id, actor.name, f"{label}: {text}")
            return task

    def heartbeat(self, actor: Actor, task_id: TaskId, note: str | None = None) -> int:
        """Renew a worker's lease; returns the new expiry in epoch milliseconds."""
        if actor.run is None:
            raise PermissionDenied(
                "heartbeat needs a worker's run credentials "
                "(KANBAN_RUN_ID and KANBAN_RUN_TOKEN, as printed by claim)"
            )
        text = clean_optional(note, field="note", max_bytes=MAX_COMMENT_BYTES)
        with self.db.transaction(write=True) as tx:
            return runs.heartbeat(tx, task_id, proof=actor.run, note=text)

    def progress(self, actor: Actor, task_id: TaskId, snapshot: dict[str, Any]) -> int:
        """Append the worker's live progress (bounded, control characters stripped); event id."""
        if actor.run is None:
            raise PermissionDenied("progress needs a worker's run credentials")
        bounded = bounded_snapshot(snapshot)
        with self.db.transaction(write=True) as tx:
            return runs.progress(tx, task_id, proof=actor.run, snapshot=bounded)

    def reclaim(self, actor: Actor, task_id: TaskId, reason: str | None = None) -> Task:
        """Operator requeue of a running task."""
        _require_operator(actor, "reclaim")
        text = clean_optional(reason, field="reason", max_bytes=MAX_COMMENT_BYTES)
        with self.db.transaction(write=True) as tx:
            return runs.reclaim(tx, task_id, reason=text, actor=actor.name)

    def set_workspace(
        self, actor: Actor, task_id: TaskId, *, path: str, branch: str | None = None
    ) -> None:
        """A worker records its workspace (fenced on its run)."""
        if actor.run is None:
            raise PermissionDenied("only the run's worker records its workspace")
        with self.db.transaction(write=True) as tx:
            runs.set_workspace(tx, task_id, proof=actor.run, path=path, branch=branch)

    def record_failure(
        self,
        actor: Actor,
        task_id: TaskId,
        run_id: RunId,
        outcome: RunOutcome,
        error: str,
        policy: FailurePolicy,
        *,
        evidence: str | None = None,
    ) -> FailureVerdict:
        """End a run that produced no verdict; requeue with backoff or give up at the limit."""
        with self.db.transaction(write=True) as tx:
            if actor.run is not None:
                runs.check_scope(actor.run, task_id)
                if actor.run.run_id != run_id:
                    raise PermissionDenied("a worker may only report on its own run")
                runs.worker_name(tx, actor.run)  # proves the token
            revoked = hosts.revoked_host_of_run(tx, run_id)
            if revoked is not None:
                # Not a failure of the task: the leader reclaims such a run (see the dispatcher).
                raise StaleRun(
                    f"refused to record the end of run {format_run_id(run_id)}: it belongs to "
                    f"host {revoked!r}, which was revoked; nothing was changed"
                )
            return recovery.record_failure(
                tx, task_id, run_id, outcome, error, policy, evidence=evidence
            )

    def record_quota(
        self,
        actor: Actor,
        task_id: TaskId,
        run_id: RunId,
        *,
        resume_at_ms: int | None,
        message: str,
        backoff_s: int,
    ) -> recovery.QuotaPause:
        """End a run at the agent's usage limit: paused until the reset, not a failure."""
        with self.db.transaction(write=True) as tx:
            self._prove_run(tx, actor, task_id, run_id)
            return recovery.record_quota(
                tx, task_id, run_id, resume_at_ms=resume_at_ms, message=message, backoff_s=backoff_s
            )

    def record_usage(
        self,
        actor: Actor,
        task_id: TaskId,
        run_id: RunId,
        input_tokens: int | None,
        output_tokens: int | None,
        cost_micro_usd: int | None,
    ) -> recovery.UsageTotals:
        """Store what the agent reports a run used so far; returns the task's totals and budget.

        The run's own worker may report shortly after the run ended (its agent's last figures
        follow the verdict); the update itself checks its token.
        """
        if actor.run is not None:
            runs.check_scope(actor.run, task_id)
            if actor.run.run_id != run_id:
                raise PermissionDenied("a worker may only report on its own run")
        with self.db.transaction(write=True) as tx:
            return recovery.record_usage(
                tx,
                task_id,
                run_id,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_micro_usd=cost_micro_usd,
                proof=actor.run,
            )

    def block_for_budget(self, actor: Actor, task_id: TaskId, reason: str) -> Task:
        """A worker blocks its task at its budget (kind budget; only an unblock lifts it)."""
        if actor.run is None:
            raise PermissionDenied("only the run's worker blocks its task at the budget")
        with self.db.transaction(write=True) as tx:
            return runs.block(tx, task_id, proof=actor.run, reason=reason, kind=BlockKind.BUDGET)

    @staticmethod
    def _prove_run(tx: Transaction, actor: Actor, task_id: TaskId, run_id: RunId) -> None:
        # A worker reports only on its own run, proven by its token; operators may report any.
        if actor.run is not None:
            runs.check_scope(actor.run, task_id)
            if actor.run.run_id != run_id:
                raise PermissionDenied("a worker may only report on its own run")
            runs.worker_name(tx, actor.run)

    def set_worker(self, task_id: TaskId, run_id: RunId, *, pid: int, host: str) -> None:
        """Record the supervising process of a run."""
        with self.db.transaction(write=True) as tx:
            recovery.set_worker(tx, task_id, run_id, pid=pid, host=host)

    def revoked_hosts_runs(self, limit: int = 100) -> builtins.list[tuple[TaskId, RunId, str]]:
        """Running tasks whose run belongs to a revoked host (fenced: reclaim at once)."""
        with self.db.transaction(write=False) as tx:
            return recovery.revoked_hosts_runs(tx, limit=limit)

    def expired_leases(self, limit: int = 100) -> builtins.list[tuple[TaskId, RunId, str | None]]:
        """Running tasks whose lease has run out."""
        with self.db.transaction(write=False) as tx:
            return recovery.expired_leases(tx, limit=limit)

    def overdue_runs(self, *, grace_ms: int, limit: int = 100) -> builtins.list[OverdueRun]:
        """Running tasks past their max runtime plus grace."""
        with self.db.transaction(write=False) as tx:
            return recovery.overdue_runs(tx, grace_ms=grace_ms, limit=limit)

    # -- permission requests --------------------------------------------------------------

    def request_permission(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        tool_kind: str,
        tool_name: str,
        summary: str,
        detail: str | None = None,
        paths: Sequence[str] = (),
        ttl_s: int,
    ) -> PermissionRequest:
        """A worker's run asks a person before using a tool; its chats get a card to answer."""
        if actor.run is None:
            raise PermissionDenied("only a task's running agent asks for permission")
        runs.check_scope(actor.run, task_id)
        if not 0 < ttl_s <= _MAX_ASK_TTL_S:
            raise ValidationError(f"a request's ttl must be between 1 and {_MAX_ASK_TTL_S} seconds")
        kind = permissions.bounded(tool_kind, 32)
        name = permissions.bounded(tool_name, permissions.MAX_TOOL_CHARS)
        text = permissions.bounded(summary, permissions.MAX_SUMMARY_CHARS)
        if kind is None or name is None or text is None:
            raise ValidationError(
                "a permission request needs a tool kind, a tool name and a summary"
            )
        new = permissions.NewRequest(
            tool_kind=kind,
            tool_name=name,
            summary=text,
            detail=permissions.bounded(detail, permissions.MAX_DETAIL_CHARS),
            paths=tuple(
                p
                for p in (
                    permissions.bounded(path, 1000) for path in paths[: permissions.MAX_PATHS]
                )
                if p
            ),
            ttl_ms=ttl_s * 1000,
        )
        with self.db.transaction(write=True) as tx:
            return permissions.request(tx, actor.run, task_id, new)

    def answer_permission(
        self, actor: Actor, ref: str, decision: PermissionDecision, reason: str | None = None
    ) -> PermissionRequest:
        """A person answers; the first answer wins and any later one is refused, saying why."""
        if actor.run is not None:
            raise PermissionDenied("a worker may not answer a permission request; a person does")
        request_id = parse_permission_ref(ref)
        text = clean_optional(reason, field="reason", max_bytes=MAX_COMMENT_BYTES)
        with self.db.transaction(write=True) as tx:
            outcome = permissions.answer(tx, request_id, decision, by=actor.name, reason=text)
        # Raised after the commit: what the refusal found out (an expiry) is kept.
        if outcome.refusal is not None:
            raise InvalidTransition(outcome.refusal)
        return outcome.request

    def permission(self, ref: str) -> PermissionRequest:
        """One permission request, by ref (``p12``, ``P12`` or ``12``)."""
        request_id = parse_permission_ref(ref)
        with self.db.transaction(write=False) as tx:
            return permissions.get(tx, request_id)

    def open_permissions(self, task_id: TaskId | None = None) -> builtins.list[PermissionRequest]:
        """Requests still waiting for an answer, oldest first."""
        with self.db.transaction(write=False) as tx:
            return permissions.open_requests(tx, task_id)

    def waiting_permissions(self) -> dict[TaskId, builtins.list[str]]:
        """Refs of the answerable requests, by task (what list and show mark)."""
        # One autocommit statement: list's hot path pays a single indexed read for it.
        return permissions.waiting_by_task(self.db.read(permissions.WAITING))

    def run_grants(self, run_id: RunId) -> builtins.list[tuple[str, str]]:
        """The (tool kind, tool name) pairs a person allowed for the rest of a run."""
        with self.db.transaction(write=False) as tx:
            return permissions.run_grants(tx, run_id)

    def expire_permissions(self, *, limit: int = 100) -> builtins.list[int]:
        """Record the expiry of requests nobody answered in time; a read when there are none."""
        if not self.db.read(permissions.ANY_OVERDUE):
            return []
        with self.db.transaction(write=True) as tx:
            return permissions.expire(tx, limit=limit)

    def wait_permission(
        self,
        ref: str,
        *,
        timeout_s: float | None = None,
        stop: Callable[[], bool] = lambda: False,
        probe_s: float = PERMISSION_PROBE_S,
    ) -> PermissionRequest:
        """Wait for a request's answer; returns it once it is no longer pending.

        Wakes as soon as the board changes (an answer is an event), re-reads every ``probe_s``
        regardless, and records the expiry itself when it passes. Returns the still-pending
        request when ``stop()`` is true or ``timeout_s`` passes first.
        """
        request_id = parse_permission_ref(ref)
        end = None if timeout_s is None else time.monotonic() + timeout_s
        watch = self.watch_changes()
        try:
            while True:
                watch.changed()  # listen (or note the newest event) before reading
                with self.db.transaction(write=False) as tx:
                    current, now_ms = permissions.look(tx, request_id)
                if current.status is not PermissionStatus.PENDING:
                    return current
                if now_ms >= current.expires_ms:
                    with self.db.transaction(write=True) as tx:
                        return permissions.expire_one(tx, request_id)
                if stop():
                    return current
                wait = min(probe_s, (current.expires_ms - now_ms) / 1000)
                if end is not None:
                    wait = min(wait, end - time.monotonic())
                    if wait <= 0:
                        return current
                wait_for_change(watch, wait)
        finally:
            watch.close()

    # -- notifications ----------------------------------------------------------------------

    def subscribe(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        platform: str,
        chat_id: str,
        thread_id: str | None = None,
        user_id: str | None = None,
    ) -> bool:
        """Subscribe a chat to a task's terminal events; False if it already was."""
        _require_operator(actor, "notify-subscribe")
        values = _subscription_values(platform, chat_id, thread_id)
        uid = None if user_id is None else clean_text(user_id, field="user id", max_bytes=200)
        with self.db.transaction(write=True) as tx:
            status = links.status_of(tx, task_id)
            if status in (TaskStatus.DONE, TaskStatus.ARCHIVED):
                raise ValidationError(
                    f"{format_task_id(task_id)} is {status.value}; it has no more events to notify"
                )
            return notify.subscribe(tx, task_id, user_id=uid, **values)

    def unsubscribe(
        self, actor: Actor, task_id: TaskId, *, platform: str, chat_id: str, thread_id: str | None
    ) -> bool:
        """Remove a subscription; False if there was none."""
        _require_operator(actor, "notify-unsubscribe")
        values = _subscription_values(platform, chat_id, thread_id)
        with self.db.transaction(write=True) as tx:
            links.status_of(tx, task_id)
            return notify.unsubscribe(tx, task_id, **values)

    def set_progress(
        self,
        actor: Actor,
        task_id: TaskId,
        *,
        platform: str,
        chat_id: str,
        thread_id: str | None,
        on: bool,
    ) -> bool:
        """Turn a subscribed chat's live progress on or off; False if the chat is not subscribed."""
        _require_operator(actor, "notify-progress")
        values = _subscription_values(platform, chat_id, thread_id)
        with self.db.transaction(write=True) as tx:
            links.status_of(tx, task_id)
            return notify.set_progress(tx, task_id, on=on, **values)

    def subscriptions(self, task_id: TaskId | None = None) -> list[Subscription]:
        """All subscriptions, or one task's."""
        with self.db.transaction(write=False) as tx:
            if task_id is not None:
                links.status_of(tx, task_id)
            return notify.subscriptions(tx, task_id)

    def claim_deliveries(
        self, *, platform: str, claimer: str, lease_ms: int, limit: int = 20
    ) -> builtins.list[deliveries.Delivery]:
        """Claim due notifications for one platform (the notifier's side of the outbox)."""
        with self.db.transaction(write=True) as tx:
            return deliveries.claim(
                tx, platform=platform, claimer=claimer, lease_ms=lease_ms, limit=limit
            )

    def delivery_sent(self, delivery_id: int, *, claimer: str) -> bool:
        """Mark a notification sent."""
        with self.db.transaction(write=True) as tx:
            return deliveries.mark_sent(tx, delivery_id, claimer=claimer)

    def delivery_failed(
        self, delivery_id: int, *, claimer: str, error: str, delay_ms: int, dead: bool
    ) -> None:
        """Put a notification back for a retry, or mark it dead."""
        with self.db.transaction(write=True) as tx:
            deliveries.mark_failed(
                tx, delivery_id, claimer=claimer, error=error, delay_ms=delay_ms, dead=dead
            )

    def delivery_deferred(self, delivery_id: int, *, claimer: str, delay_ms: int) -> None:
        """Put a notification back untried (a chat's rate limit), due in ``delay_ms``."""
        with self.db.transaction(write=True) as tx:
            deliveries.defer(tx, delivery_id, claimer=claimer, delay_ms=delay_ms)

    def supersede_progress(self, delivery: deliveries.Delivery) -> bool:
        """Older pending progress of this run and chat is marked sent unshown; is this newest?"""
        with self.db.transaction(write=True) as tx:
            return deliveries.supersede_progress(tx, delivery)

    def progress_message(self, delivery: deliveries.Delivery) -> str | None:
        """The message showing this delivery's run progress in its chat, if any."""
        if delivery.run_id is None:
            return None
        with self.db.transaction(write=False) as tx:
            return progress.progress_message(
                tx,
                run_id=delivery.run_id,
                platform=delivery.platform,
                chat_id=delivery.chat_id,
                thread_id=delivery.thread_id,
            )

    def permission_card(self, delivery: deliveries.Delivery) -> str | None:
        """The message showing the card of this delivery's permission request in its chat."""
        with self.db.transaction(write=False) as tx:
            return cards.card_message(tx, **_card_key(delivery))

    def remember_permission_card(self, delivery: deliveries.Delivery, message_id: str) -> None:
        """Record the message a permission card was sent as, to edit it once settled."""
        with self.db.transaction(write=True) as tx:
            cards.remember_card(tx, **_card_key(delivery), message_id=message_id)

    def forget_permission_card(self, delivery: deliveries.Delivery) -> None:
        """The card was edited to say how its request was settled."""
        with self.db.transaction(write=True) as tx:
            cards.forget_card(tx, **_card_key(delivery))

    def remember_progress_message(self, delivery: deliveries.Delivery, message_id: str) -> None:
        """Record the message that now shows this delivery's run progress in its chat."""
        if delivery.run_id is None:
            return
        with self.db.transaction(write=True) as tx:
            progress.remember_progress_message(
                tx,
                run_id=delivery.run_id,
                platform=delivery.platform,
                chat_id=delivery.chat_id,
                thread_id=delivery.thread_id,
                task_id=delivery.task_id,
                message_id=message_id,
                event_id=delivery.event_id,
            )

    def expire_unserved_deliveries(
        self, *, served: builtins.list[str], after_ms: int
    ) -> builtins.list[tuple[int, str]]:
        """Dead-letter notifications no sender has taken for ``after_ms`` (see deliveries)."""
        with self.db.transaction(write=True) as tx:
            return deliveries.expire_unserved(tx, served=served, after_ms=after_ms)

    def dead_letters(self, *, limit: int = 20) -> builtins.list[dict[str, Any]]:
        """Undeliverable notifications, newest first."""
        with self.db.transaction(write=False) as tx:
            return deliveries.dead_letters(tx, limit=limit)

    def record_audit(self, entry: audit.AuditEntry) -> None:
        """Append a chat command to the audit log."""
        with self.db.transaction(write=True) as tx:
            audit.record(tx, entry)

    def audit_log(self, *, limit: int = 50) -> builtins.list[audit.AuditEntry]:
        """The newest audit entries."""
        with self.db.transaction(write=False) as tx:
            return audit.recent(tx, limit=limit)

    # -- maintenance ------------------------------------------------------------------------

    def gc(self, actor: Actor, *, event_retention_days: int, log_retention_days: int) -> GcReport:
        """The board's part of gc: old events/deliveries of finished tasks, finished execution
        requests and spent nonces, and old worker logs."""
        _require_operator(actor, "gc")
        for days in (event_retention_days, log_retention_days):
            if not 0 <= days <= _MAX_RETENTION_DAYS:
                raise ValidationError(f"retention days must be between 0 and {_MAX_RETENTION_DAYS}")
        with self.db.transaction(write=True) as tx:
            report = maintenance.collect(tx, event_retention_days=event_retention_days)
        logs = maintenance.collect_logs(self.settings.logs_dir, retention_days=log_retention_days)
        return replace(report, log_files=logs)

    def scheduled_gc(
        self, *, owner: str, interval_ms: int, event_retention_days: int
    ) -> GcReport | None:
        """The board's rows part of gc, if no gateway ran it within ``interval_ms`` (database
        clock); None when it was not due. The claim and the deletions commit together."""
        with self.db.transaction(write=True) as tx:
            if not maintenance.claim_run(tx, GC_JOB, owner=owner, interval_ms=interval_ms):
                return None
            report = maintenance.collect(tx, event_retention_days=event_retention_days)
            maintenance.note_run(tx, GC_JOB, report.rows_line())
        return report

    def maintenance_runs(self) -> builtins.list[maintenance.MaintenanceRun]:
        """When each scheduled maintenance job last ran, and by whom."""
        with self.db.transaction(write=False) as tx:
            return maintenance.last_runs(tx)

    def promote_all(self) -> list[TaskId]:
        """The safety-net promotion sweep (the dispatcher runs it periodically)."""
        with self.db.transaction(write=True) as tx:
            return links.promote_all(tx)

    # -- reads ------------------------------------------------------------------------------

    @staticmethod
    def _author(tx: Transaction, actor: Actor) -> str:
        # A worker's comments carry its proven run's identity, never a name it chose.
        return actor.name if actor.run is None else runs.worker_name(tx, actor.run)

    def get(self, task_id: TaskId) -> Task:
        """One task."""
        with self.db.transaction(write=False) as tx:
            return reads.get(tx, task_id)

    def list(self, flt: reads.TaskFilter | None = None) -> builtins.list[Task]:
        """Tasks matching a filter."""
        with self.db.transaction(write=False) as tx:
            return reads.list_tasks(tx, flt or reads.TaskFilter())

    def list_summaries(
        self, flt: reads.TaskFilter | None = None
    ) -> builtins.list[reads.TaskSummary]:
        """The rows of the ``list`` table (cheaper than whole tasks)."""
        with self.db.transaction(write=False) as tx:
            return reads.list_summaries(tx, flt or reads.TaskFilter())

    def detail(self, task_id: TaskId, *, event_limit: int | None = None) -> TaskDetail:
        """Everything about one task (only its newest ``event_limit`` events, if given)."""
        with self.db.transaction(write=False) as tx:
            return reads.detail(tx, task_id, event_limit=event_limit)

    def runs(self, task_id: TaskId) -> builtins.list[Run]:
        """A task's attempts."""
        with self.db.transaction(write=False) as tx:
            return reads.runs_of(tx, task_id)

    def stats(self) -> BoardStats:
        """Board counts."""
        with self.db.transaction(write=False) as tx:
            return reads.stats(tx)

    def watch_changes(self) -> ChangeWatch:
        """A hint source for wake-ups: has anyone changed the board since the last look?"""
        return ChangeWatch(self.db)

    def max_event_id(self) -> int:
        """The newest event id."""
        return reads.max_event_id_of(self.db.read(reads.MAX_EVENT))

    def events_after(
        self, after: int, *, task_id: TaskId | None = None, limit: int = 200
    ) -> builtins.list[Event]:
        """Events newer than a cursor."""
        if task_id is None:  # a poller's call, often empty: one statement
            rows = self.db.read(reads.EVENTS_AFTER, {"after": after, "limit": limit})
            return [event_from_row(row) for row in rows]
        with self.db.transaction(write=False) as tx:
            links.status_of(tx, task_id)
            return reads.events_after(tx, after, task_id=task_id, limit=limit)

    def recent_events(
        self, *, task_id: TaskId | None = None, limit: int = 20
    ) -> builtins.list[Event]:
        """The newest events."""
        with self.db.transaction(write=False) as tx:
            if task_id is not None:
                links.status_of(tx, task_id)
            return reads.recent_events(tx, task_id=task_id, limit=limit)

    def task_tags(self, task_ids: Iterable[TaskId]) -> dict[TaskId, tuple[str | None, str | None]]:
        """(tenant, assignee) for each task that still exists."""
        out: dict[TaskId, tuple[str | None, str | None]] = {}
        with self.db.transaction(write=False) as tx:
            for task_id in task_ids:
                tags = reads.task_tags(tx, task_id)
                if tags is not None:
                    out[task_id] = tags
        return out


def _require_operator(actor: Actor, verb: str) -> None:
    if actor.run is not None:
        raise PermissionDenied(f"a worker may not {verb}; ask a human (block with a reason)")


def _check_priority(priority: int) -> int:
    if priority not in _PRIORITY_RANGE:
        raise ValidationError("priority must be between -1000000 and 1000000")
    return priority


def _check_positive(value: int | None, field: str) -> int | None:
    if value is not None and value <= 0:
        raise ValidationError(f"{field} must be positive")
    return value


def _subscription_values(platform: str, chat_id: str, thread_id: str | None) -> dict[str, Any]:
    name = clean_name(platform, field="platform")
    if name is None:
        raise ValidationError("--platform is required")
    if len(name) > _MAX_PLATFORM_CHARS:
        raise ValidationError(f"platform names are at most {_MAX_PLATFORM_CHARS} characters")
    return {
        "platform": name.lower(),
        "chat_id": clean_text(chat_id, field="chat id", max_bytes=200),
        "thread_id": None
        if thread_id is None
        else clean_text(thread_id, field="thread id", max_bytes=200),
    }


def _card_key(delivery: deliveries.Delivery) -> dict[str, Any]:
    return {
        "request_id": parse_permission_ref(str(delivery.payload.get("ref") or "")),
        "platform": delivery.platform,
        "chat_id": delivery.chat_id,
        "thread_id": delivery.thread_id,
    }
