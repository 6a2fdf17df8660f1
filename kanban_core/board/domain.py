"""Domain values: statuses, outcomes, event kinds, ids and the frozen records the kernel returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NewType

from kanban_core.errors import ValidationError

TaskId = NewType("TaskId", int)
RunId = NewType("RunId", int)


class TaskStatus(enum.StrEnum):
    """Where a task is in its life."""

    TRIAGE = "triage"  # a rough idea; never promoted automatically
    TODO = "todo"  # waiting on parents
    READY = "ready"  # claimable
    RUNNING = "running"  # claimed; holds a lease and an open run
    BLOCKED = "blocked"  # waiting on a human (see BlockKind)
    DONE = "done"  # completed; satisfies children
    ARCHIVED = "archived"  # hidden; satisfies children


class BlockKind(enum.StrEnum):
    """Why a blocked task is blocked; only an explicit unblock lifts either kind."""

    HUMAN = "human"  # someone (a worker or a person) asked for a human
    GAVE_UP = "gave_up"  # the failure limit was reached
    BUDGET = "budget"  # the task's cost or token budget was reached
    PLACEMENT = "placement"  # bound to a revoked host: an admin re-places it, then unblocks


class RunOutcome(enum.StrEnum):
    """How an attempt ended."""

    COMPLETED = "completed"
    BLOCKED = "blocked"
    CRASHED = "crashed"
    TIMED_OUT = "timed_out"
    SPAWN_FAILED = "spawn_failed"
    GAVE_UP = "gave_up"
    RECLAIMED = "reclaimed"
    CANCELLED = "cancelled"  # stopped by a person (a workspace /stop)
    QUOTA = "quota"  # the agent hit its usage limit; not a failure


class EventKind(enum.StrEnum):
    """The append-only audit vocabulary (the reference's §2.5)."""

    CREATED = "created"
    PROMOTED = "promoted"
    CLAIMED = "claimed"
    COMPLETED = "completed"
    BLOCKED = "blocked"
    UNBLOCKED = "unblocked"
    ACCEPTED = "accepted"  # a person took a triaged idea onto the board (todo or ready)
    ARCHIVED = "archived"
    LINKED = "linked"
    UNLINKED = "unlinked"
    COMMENTED = "commented"
    ASSIGNED = "assigned"
    EDITED = "edited"
    REPRIORITIZED = "reprioritized"
    HEARTBEAT = "heartbeat"
    SPAWNED = "spawned"
    RECLAIMED = "reclaimed"
    CRASHED = "crashed"
    TIMED_OUT = "timed_out"
    SPAWN_FAILED = "spawn_failed"
    GAVE_UP = "gave_up"
    REOPENED = "reopened"  # a done task takes another agent turn (a workspace follow-up)
    WORKSPACE_NOTICE = "workspace_notice"  # something a workspace's chats must hear
    PERMISSION_REQUESTED = "permission_requested"  # an agent asks a person before acting
    PERMISSION_ANSWERED = "permission_answered"
    PERMISSION_EXPIRED = "permission_expired"
    QUOTA_PAUSED = "quota_paused"  # the agent hit its usage limit; the task waits for the reset
    QUOTA_RESUMED = "quota_resumed"  # a paused task was claimed again after the reset
    PROGRESS = "progress"  # what a running agent is doing now (edited in place in chats)
    EXEC_REQUESTED = "exec_requested"  # a command was sent to the host holding the workspace
    EXEC_REPLY = "exec_reply"  # another host's answer to a forwarded command (one chat only)


#: Events a subscribed chat is told about.
TERMINAL_EVENT_KINDS = frozenset(
    {
        EventKind.COMPLETED,
        EventKind.BLOCKED,
        EventKind.GAVE_UP,
        EventKind.CRASHED,
        EventKind.TIMED_OUT,
    }
)

#: Kinds that queue a notification for each subscribed chat.
NOTIFYING_EVENT_KINDS = TERMINAL_EVENT_KINDS | {
    EventKind.WORKSPACE_NOTICE,
    EventKind.PERMISSION_REQUESTED,
    EventKind.PERMISSION_EXPIRED,  # the card went unanswered: the chat hears the agent was told no
    EventKind.PERMISSION_ANSWERED,  # its card, wherever it was shown, says who answered
    EventKind.QUOTA_PAUSED,
    EventKind.QUOTA_RESUMED,
    EventKind.PROGRESS,  # only to subscriptions with progress on (events.py)
}

#: Statuses that satisfy a child's dependency on them.
SATISFYING_STATUSES = frozenset({TaskStatus.DONE, TaskStatus.ARCHIVED})


class WorkspaceKind(enum.StrEnum):
    """Where a worker runs."""

    SCRATCH = "scratch"  # a fresh managed directory
    DIR = "dir"  # an existing absolute directory, never deleted
    WORKTREE = "worktree"  # a git worktree on its own branch


def usd(micro_usd: int | None) -> float | None:
    """Millionths of a dollar as dollars (for JSON)."""
    return None if micro_usd is None else micro_usd / 1_000_000


def format_usd(micro_usd: int) -> str:
    """Millionths of a dollar as text: ``$1.2000``."""
    return f"${micro_usd / 1_000_000:.4f}"


def format_task_id(task_id: int) -> str:
    """Render a task id the way people type it: ``t42``."""
    return f"t{task_id}"


def parse_task_id(text: str) -> TaskId:
    """Accept ``t42``, ``T42``, ``#42`` or ``42``; anything else is a ValidationError."""
    raw = text.strip()
    digits = raw[1:] if raw[:1] in ("t", "T", "#") else raw
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise ValidationError(f"not a task id: {text!r} (expected something like t42)")
    value = int(digits)
    if value <= 0:
        raise ValidationError(f"not a task id: {text!r} (expected something like t42)")
    return TaskId(value)


def format_run_id(run_id: int) -> str:
    """Render a run id: ``r7``."""
    return f"r{run_id}"


def parse_run_id(text: str) -> RunId:
    """Accept ``r7`` or ``7``."""
    raw = text.strip()
    digits = raw[1:] if raw[:1] in ("r", "R") else raw
    if not digits.isascii() or not digits.isdigit() or not 0 < len(digits) <= 18 or not int(digits):
        raise ValidationError(f"not a run id: {text!r} (expected something like r7)")
    return RunId(int(digits))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, taken from the caller's context and never from an argument."""

    name: str
    #: Set when the caller is a worker proving its run; it may then change only that task.
    run: RunProof | None = None


@dataclass(frozen=True, slots=True)
class RunProof:
    """A worker's claim to its attempt: the run id and the secret token handed out at claim."""

    task_id: TaskId
    run_id: RunId
    token: str


@dataclass(frozen=True, slots=True)
class Task:
    """A card on the board."""

    id: TaskId
    title: str
    body: str | None
    assignee: str | None
    status: TaskStatus
    block_kind: BlockKind | None
    priority: int
    tenant: str | None
    workspace_kind: WorkspaceKind
    workspace_path: str | None
    created_by: str
    created_ms: int
    updated_ms: int
    started_ms: int | None
    completed_ms: int | None
    result: str | None
    skills: tuple[str, ...]
    max_runtime_s: int | None
    idempotency_key: str | None
    attempts: int
    current_run_id: RunId | None
    lease_expires_ms: int | None
    consecutive_failures: int
    last_failure_error: str | None
    repo: str | None = None
    branch_name: str | None = None
    not_before_ms: int | None = None
    pause_reason: str | None = None
    max_cost_micro_usd: int | None = None
    max_tokens: int | None = None
    #: Where it may run (``create --host/--label``, ``edit``): the host's name, or a label any
    #: host carrying it matches; neither: any host (on a board without enrolled hosts, this one).
    host: str | None = None
    host_label: str | None = None

    @property
    def ref(self) -> str:
        """The id as people type it."""
        return format_task_id(self.id)

    def to_json(self) -> dict[str, Any]:
        """The task dict of the reference's ``--json`` shapes (times in Unix seconds)."""
        return {
            "id": self.ref,
            "title": self.title,
            "body": self.body,
            "assignee": self.assignee,
            "status": self.status.value,
            "block_kind": self.block_kind.value if self.block_kind else None,
            "priority": self.priority,
            "tenant": self.tenant,
            "workspace_kind": self.workspace_kind.value,
            "workspace_path": self.workspace_path,
            "created_by": self.created_by,
            "created_at": _seconds(self.created_ms),
            "updated_at": _seconds(self.updated_ms),
            "started_at": _seconds(self.started_ms),
            "completed_at": _seconds(self.completed_ms),
            "result": self.result,
            "skills": list(self.skills),
            "max_runtime_seconds": self.max_runtime_s,
            "idempotency_key": self.idempotency_key,
            "attempts": self.attempts,
            "current_run_id": self.current_run_id,
            "consecutive_failures": self.consecutive_failures,
            "last_failure_error": self.last_failure_error,
            "repo": self.repo,
            "branch_name": self.branch_name,
            "pause_reason": self.pause_reason,
            "paused_until": _seconds(self.not_before_ms) if self.pause_reason else None,
            "max_cost_usd": usd(self.max_cost_micro_usd),
            "max_tokens": self.max_tokens,
            "host": self.host,
            "label": self.host_label,
        }


@dataclass(frozen=True, slots=True)
class Run:
    """One attempt at a task, with its structured handoff."""

    id: RunId
    task_id: TaskId
    attempt: int
    profile: str | None
    claimer: str
    status: str
    outcome: RunOutcome | None
    started_ms: int
    ended_ms: int | None
    lease_expires_ms: int | None
    worker_pid: int | None
    summary: str | None
    metadata: dict[str, Any] | None
    error: str | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_micro_usd: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The run dict of ``show --json`` and ``runs --json``."""
        return {
            "id": self.id,
            "task_id": format_task_id(self.task_id),
            "attempt": self.attempt,
            "profile": self.profile,
            "claimer": self.claimer,
            "status": self.status,
            "outcome": self.outcome.value if self.outcome else None,
            "summary": self.summary,
            "metadata": self.metadata,
            "error": self.error,
            "worker_pid": self.worker_pid,
            "started_at": _seconds(self.started_ms),
            "ended_at": _seconds(self.ended_ms),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": usd(self.cost_micro_usd),
        }


@dataclass(frozen=True, slots=True)
class Comment:
    """A note on a task; the author comes from the writer's identity."""

    id: int
    task_id: TaskId
    author: str
    body: str
    created_ms: int

    def to_json(self) -> dict[str, Any]:
        """The comment dict of ``show --json``."""
        return {
            "id": self.id,
            "author": self.author,
            "body": self.body,
            "created_at": _seconds(self.created_ms),
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One row of the append-only audit log."""

    id: int
    task_id: TaskId
    run_id: RunId | None
    kind: str
    payload: dict[str, Any] | None
    created_ms: int

    def to_json(self) -> dict[str, Any]:
        """The event dict of ``show --json``."""
        return {
            "id": self.id,
            "task_id": format_task_id(self.task_id),
            "kind": self.kind,
            "payload": self.payload,
            "created_at": _seconds(self.created_ms),
            "run_id": self.run_id,
        }


@dataclass(frozen=True, slots=True)
class Subscription:
    """A chat (and thread) that wants a task's terminal events."""

    task_id: TaskId
    platform: str
    chat_id: str
    thread_id: str
    user_id: str | None
    created_ms: int

    def to_json(self) -> dict[str, Any]:
        """The row of ``notify-list --json``."""
        return {
            "task_id": format_task_id(self.task_id),
            "platform": self.platform,
            "chat_id": self.chat_id,
            "thread_id": self.thread_id or None,
            "user_id": self.user_id,
            "created_at": _seconds(self.created_ms),
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """What a successful claim hands the worker: its run and the secret token that proves it."""

    task: Task
    run_id: RunId
    attempt: int
    token: str
    lease_expires_ms: int

    @property
    def proof(self) -> RunProof:
        """The credentials a worker presents on every write."""
        return RunProof(self.task.id, self.run_id, self.token)


@dataclass(frozen=True, slots=True)
class TaskDetail:
    """Everything ``show`` displays about one task."""

    task: Task
    parents: tuple[TaskId, ...]
    children: tuple[TaskId, ...]
    comments: tuple[Comment, ...]
    events: tuple[Event, ...]
    runs: tuple[Run, ...]
    #: How many events the task has (``events`` may hold only the newest of them).
    event_count: int = 0


@dataclass(frozen=True, slots=True)
class BoardStats:
    """Counts for ``stats``."""

    by_status: dict[str, int]
    by_assignee: dict[str, dict[str, int]]
    oldest_ready_age_seconds: float | None
    now_ms: int
    # What agents reported, over every run: (input, output) tokens and cost.
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro_usd: int = 0


@dataclass(frozen=True, slots=True)
class CreateResult:
    """A created task, or the existing one its idempotency key points at."""

    task: Task
    created: bool


@dataclass(frozen=True, slots=True)
class GcReport:
    """What ``gc`` removed."""

    events: int
    deliveries: int
    log_files: int
    workspaces: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)
    exec_requests: int = 0  # finished execution requests past the event retention
    exec_nonces: int = 0  # spent nonces no request can still carry

    def rows_line(self) -> str:
        """The board rows removed, in words (the scheduled run's summary and log line)."""
        return (
            f"{self.events} event(s), {self.deliveries} delivery row(s), "
            f"{self.exec_requests} exec request(s), {self.exec_nonces} spent nonce(s) removed"
        )


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


class PermissionStatus(enum.StrEnum):
    """Where an agent's permission request is: waiting, answered, or past answering."""

    PENDING = "pending"
    ALLOWED = "allowed"
    DENIED = "denied"
    EXPIRED = "expired"  # nobody answered in time: the agent treats it as a denial
    CANCELLED = "cancelled"  # the run that asked ended first


class PermissionDecision(enum.StrEnum):
    """A person's answer to a permission request."""

    ALLOW_ONCE = "allow_once"
    ALLOW_RUN = "allow_run"  # the same tool is allowed for the rest of this run
    DENY = "deny"


def format_permission_ref(request_id: int) -> str:
    """Render a permission request id the way people type it: ``p12``."""
    return f"p{request_id}"


def parse_permission_ref(text: str) -> int:
    """Accept ``p12``, ``P12`` or ``12``; anything else is a ValidationError."""
    raw = text.strip()
    digits = raw[1:] if raw[:1] in ("p", "P") else raw
    if not digits.isascii() or not digits.isdigit() or not 0 < len(digits) <= 18 or not int(digits):
        raise ValidationError(f"not a permission request: {text!r} (expected something like p12)")
    return int(digits)


@dataclass(frozen=True, slots=True)
class PermissionRequest:
    """An agent's request to use a tool, waiting for (or holding) a person's answer."""

    id: int
    task_id: TaskId
    run_id: RunId
    tool_kind: str
    tool_name: str
    summary: str
    detail: str | None
    paths: tuple[str, ...]
    status: PermissionStatus
    decision: PermissionDecision | None
    answered_by: str | None
    reason: str | None
    created_ms: int
    expires_ms: int
    answered_ms: int | None

    @property
    def ref(self) -> str:
        """How people name it: ``p12``."""
        return format_permission_ref(self.id)
