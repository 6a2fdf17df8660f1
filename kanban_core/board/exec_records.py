"""The values of execution requests: the commands another host may be asked, states, rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from kanban_core.board.domain import TaskId


class ExecCommand(enum.StrEnum):
    """What may be asked of another host: these ``ws`` subcommands, nothing else."""

    STATUS = "status"
    DIFF = "diff"
    COMMIT = "commit"
    PUSH = "push"
    PR = "pr"
    ATTACH = "attach"
    RUN = "run"
    DELETE = "delete"
    UNARCHIVE = "unarchive"
    FOLLOW_UP = "follow-up"
    NEW_SESSION = "new-session"
    APPROVE = "approve"
    DENY = "deny"


class ExecState(enum.StrEnum):
    """Where a request stands."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUSED = "refused"


FINAL_STATES = frozenset({ExecState.DONE, ExecState.FAILED, ExecState.EXPIRED, ExecState.REFUSED})
#: The platform a terminal's request is recorded under (nothing is sent back; the CLI waits).
CLI_PLATFORM = "cli"
#: The longest expiry a request may have (``workspaces.request_expiry_seconds`` is capped here):
#: gc forgets a spent nonce only once every request that could carry it has expired.
MAX_REQUEST_EXPIRY_S = 86_400


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, as authorised on the asking side (from the context, never an argument)."""

    platform: str  # where the answer goes (the asking chat's platform, or "cli")
    user_id: str  # the asker's principal, as access.users names it (telegram:42, cli:alice)
    user_name: str
    chat_id: str
    thread_id: str
    role: str
    host_id: int | None


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """One request as stored."""

    id: int
    command: ExecCommand
    args: dict[str, Any]
    workspace_id: str
    task_id: TaskId
    target_host_id: int
    target_host: str
    requester: Requester
    nonce: str
    state: ExecState
    result: str | None
    exit_code: int | None
    claimed_by: str | None
    created_ms: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class WorkspaceHost:
    """The enrolled host a workspace's files are on."""

    host_id: int
    name: str
    revoked: bool
