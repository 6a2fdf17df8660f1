"""The workspace domain: statuses, and frozen records of workspaces, repos, sessions and turns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kanban_core.board.domain import TaskId


class WorkspaceStatus(enum.StrEnum):
    """The workspace state machine (reference/workspaces.md D-07); archived is a separate flag."""

    INITIALIZING = "initializing"
    READY = "ready"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"


class TurnStatus(enum.StrEnum):
    """One agent turn (an execution process): pending until a worker starts it."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_TURN = (TurnStatus.PENDING, TurnStatus.RUNNING)


class SessionState(enum.StrEnum):
    """A session's state, derived from its turns and queue."""

    RUNNING = "running"
    IDLE = "idle"
    NEEDS_ATTENTION = "needs_attention"
    ERROR = "error"


class ApprovalKind(enum.StrEnum):
    """Who may say yes: the requester (a confirmation) or an approver (a high-risk approval)."""

    CONFIRM = "confirm"
    APPROVAL = "approval"


class ApprovalStatus(enum.StrEnum):
    """A request's life: pending until decided (once), expired past its TTL."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class WorkspaceRepo:
    """One repository of a workspace: its worktree, branch and base."""

    slug: str
    position: int
    source: Path
    common_dir: Path
    worktree: Path
    branch: str
    base_ref: str
    base_oid: str
    branch_created: bool
    enabled: bool
    pr_number: int | None = None
    pr_url: str | None = None
    pr_state: str | None = None


@dataclass(frozen=True, slots=True)
class Workspace:
    """A task's isolated worktrees, sessions and state."""

    id: str
    task_id: TaskId
    name: str
    status: WorkspaceStatus
    archived: bool
    pinned: bool
    container: Path
    branch: str
    executor: str
    active_repo: str | None
    active_session_id: str | None
    created_by: str
    error: str | None
    created_ms: int
    updated_ms: int
    repos: tuple[WorkspaceRepo, ...] = ()

    @property
    def shown_status(self) -> str:
        """The status as lists show it: ``archived`` while the flag is set."""
        return "archived" if self.archived else self.status.value

    def repo(self, slug: str) -> WorkspaceRepo | None:
        """The repository with this slug, if any."""
        return next((r for r in self.repos if r.slug == slug), None)


@dataclass(frozen=True, slots=True)
class Session:
    """One conversation thread with the agent inside a workspace."""

    id: str
    workspace_id: str
    position: int
    name: str
    executor: str
    agent_session_id: str
    turns: int
    queue_paused: bool
    pause_reason: str | None
    created_ms: int
    acp_session_id: str | None = None  # the ACP agent's own id of it, once a turn opened one


@dataclass(frozen=True, slots=True)
class SessionMessage:
    """A line of a session's history."""

    id: int
    session_id: str
    role: str  # user | assistant | system
    author: str
    text: str
    turn_id: str | None
    created_ms: int


@dataclass(frozen=True, slots=True)
class Turn:
    """One agent turn: a run of the workspace's task."""

    id: str
    workspace_id: str
    session_id: str
    task_id: TaskId
    run_id: int | None
    prompt: str
    status: TurnStatus
    error: str | None
    requested_by: str
    created_ms: int
    started_ms: int | None
    ended_ms: int | None
    before_heads: dict[str, str] = field(default_factory=dict)
    after_heads: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A follow-up waiting for the running turn to finish."""

    id: int
    session_id: str
    text: str
    principal: str
    state: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Approval:
    """A durable, single-use, expiring request to confirm or approve one operation."""

    id: str
    kind: ApprovalKind
    op: str
    args: dict[str, Any]
    args_hash: str
    nonce: str
    workspace_id: str
    summary: str
    requested_by: str
    requester_name: str
    platform: str
    chat_id: str
    thread_id: str
    status: ApprovalStatus
    created_ms: int
    expires_ms: int
    decided_by: str | None
    decided_ms: int | None
    result: str | None


@dataclass(frozen=True, slots=True)
class ChatPlace:
    """Where a request came from (for bindings, approvals and subscriptions)."""

    platform: str
    chat_id: str
    thread_id: str = ""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking and from where: identity from context, never from an argument."""

    principal: str  # a stable key: telegram:123, cli:alice
    name: str  # for people to read
    place: ChatPlace
    may_approve: bool = False
    source_key: str | None = None  # the chat delivery, for idempotency
