"""The kernel's sections of config.yaml, declared: board, dispatcher, assignees, permissions …"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from kanban_core.board.exec_records import MAX_REQUEST_EXPIRY_S
from kanban_core.board.validation import clean_name, parse_duration, parse_workspace
from kanban_core.config.model import Section
from kanban_core.errors import KanbanError

Positive = Annotated[int, Field(gt=0)]
NonNegative = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]


def _check(parse: Callable[[str], object]) -> Callable[[str], str]:
    """Run a kernel parser as a schema check: its one-line error becomes the key's error."""

    def check(value: str) -> str:
        try:
            parse(value)
        except KanbanError as exc:
            raise ValueError(str(exc)) from None
        return value

    return check


def _absolute(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError("must be an absolute path without '..'")
    return value


def _matching(pattern: str, requirement: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(requirement)
        return value

    return check


def _assignee(name: str) -> str:
    try:
        cleaned = clean_name(name, field="assignee")
    except KanbanError as exc:
        raise ValueError(str(exc)) from None
    if cleaned is None:
        raise ValueError("not a valid assignee name")
    return cleaned


def _no_password(url: str) -> str:
    credentials = url.partition("://")[2].partition("@")
    if credentials[1] and ":" in credentials[0]:
        raise ValueError(
            "contains a password; put the URL in an environment variable and name it with "
            "db_url_env"
        )
    return url


AbsolutePath = Annotated[str, AfterValidator(_absolute)]
Url = Annotated[str, AfterValidator(_matching(r"^https?://\S+$", "must be an http(s):// URL"))]


class BoardSection(Section):
    """How the board is stored."""

    db_url: Annotated[str, Field(min_length=1), AfterValidator(_no_password)] | None = None
    db_url_env: Text | None = None
    # NORMAL survives process crashes, FULL also power loss; either case is accepted.
    sqlite_synchronous: Annotated[
        Literal["NORMAL", "FULL"], BeforeValidator(lambda v: v.upper() if isinstance(v, str) else v)
    ] = "NORMAL"
    claim_ttl_seconds: Positive = 900
    # Database connections each process keeps open between transactions (more may be open at
    # once while busy). Size a managed PostgreSQL's max_connections for every process on every host.
    pool_size: Positive = 4

    @model_validator(mode="after")
    def _one_source(self) -> BoardSection:
        if self.db_url is not None and self.db_url_env is not None:
            raise ValueError("give db_url or db_url_env, not both")
        return self


class DispatcherSection(Section):
    """Caps, failure policy and worker timing."""

    max_in_progress: Positive = 4
    failure_limit: Positive = 3
    backoff_base_seconds: Positive = 30
    backoff_cap_seconds: Positive = 1800
    lease_ttl_seconds: Positive = 60
    terminate_grace_seconds: Positive = 10
    log_rotate_bytes: Positive = 2 * 1024 * 1024
    log_backups: Positive = 3
    dispatch_interval_seconds: Positive = 60
    # How long a usage limit pauses a task when the agent names no reset time.
    quota_backoff_seconds: Positive = 900

    @model_validator(mode="after")
    def _cap_above_base(self) -> DispatcherSection:
        if self.backoff_cap_seconds < self.backoff_base_seconds:
            raise ValueError("backoff_cap_seconds: must not be below backoff_base_seconds")
        return self


Preset = Literal[
    "claude-code",
    "codex",
    "gemini",
    "command",
    "demo",
    "claude-code-acp",
    "codex-acp",
    "gemini-acp",
    "acp",
]


def _sandbox_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or path == PurePosixPath("/"):
        raise ValueError("must be an absolute path below / without '..'")
    return value


def _sandbox_mode(value: Any) -> Any:
    # A bare mode (or true/false) stands for the mapping with only that mode.
    if isinstance(value, bool):
        return {"mode": "auto" if value else "off"}
    if isinstance(value, str):
        return {"mode": value}
    return value


class SandboxSection(Section):
    """How a profile's agents are contained (README, "Containment")."""

    mode: Literal["auto", "required", "off"] = "auto"
    network: bool = True
    read: list[Annotated[str, AfterValidator(_sandbox_path)]] = Field(default_factory=list)
    write: list[Annotated[str, AfterValidator(_sandbox_path)]] = Field(default_factory=list)


ToolKindName = Literal[
    "read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"
]


def _one_or_many(value: Any) -> Any:
    # ``kind: execute`` stands for ``kind: [execute]``.
    return [value] if isinstance(value, str) else value


class PermissionRuleSection(Section):
    """One rule of a profile's permission policy (README, "Permission policy")."""

    action: Literal["allow", "ask", "deny"]
    kind: Annotated[
        Annotated[list[ToolKindName], Field(min_length=1)] | None, BeforeValidator(_one_or_many)
    ] = None
    tool: Annotated[
        Annotated[list[Text], Field(min_length=1)] | None, BeforeValidator(_one_or_many)
    ] = None
    paths: Literal["workspace", "outside"] | None = None


class ProgressSection(Section):
    """Live progress of a profile's agents (ACP, claude-code) in subscribed chats (README)."""

    enabled: bool = True
    # The fewest seconds between two progress snapshots of one run: the latest state wins.
    interval_seconds: Annotated[float, Field(ge=0.5, le=3600)] = 3


#: An enrolled host's name or a host label.
HostName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+@-]*$", max_length=64)]


class ProfileSection(Section):
    """One assignee: the agent to run, where, how many at once, with what environment."""

    preset: Preset = "command"
    # argv, never a shell string.
    command: Annotated[list[str], Field(min_length=1)] | None = None
    workspace: Annotated[str, AfterValidator(_check(parse_workspace))] | None = None
    repo: AbsolutePath | None = None
    allow_dirty_base: bool = False
    max_in_progress: Positive | None = None
    max_runtime: Annotated[str | int, AfterValidator(lambda v: _duration(v))] | None = None
    env: dict[str, str | int] = Field(default_factory=dict)
    pass_env: list[Text] = Field(default_factory=list)
    skills: list[Text] = Field(default_factory=list)
    first_turn_args: list[str] | None = None
    resume_args: list[str] | None = None
    sandbox: Annotated[SandboxSection, BeforeValidator(_sandbox_mode)] = Field(
        default_factory=SandboxSection
    )
    # Tried in order before the defaults; permissions_defaults: false drops the defaults.
    permissions: list[PermissionRuleSection] = Field(default_factory=list)
    permissions_defaults: bool = True
    # Budgets for the profile's tasks that set none (create --max-cost / --max-tokens).
    max_cost_usd: Annotated[float, Field(gt=0, le=1_000_000)] | None = None
    max_tokens: Positive | None = None
    progress: ProgressSection = Field(default_factory=ProgressSection)
    # Placement of the profile's tasks created without --host / --label (enrolled hosts).
    host: HostName | None = None
    label: HostName | None = None

    @model_validator(mode="after")
    def _command_or_preset(self) -> ProfileSection:
        if self.command is None and self.preset in ("command", "acp"):
            raise ValueError(f"command: required with preset {self.preset!r}")
        if self.host is not None and self.label is not None:
            raise ValueError("host and label: a profile names one, not both")
        return self


def _duration(value: str | int) -> str | int:
    _check(parse_duration)(str(value))
    return value


AssigneeName = Annotated[str, AfterValidator(_assignee)]


class ApprovalsSection(Section):
    """Confirmations and approvals of risky git operations."""

    ttl_seconds: NonNegative = 900
    four_eyes: bool = False


class QueueSection(Section):
    """Follow-ups queued while an agent runs."""

    max_per_session: NonNegative = 5


Trailer = Literal["task", "workspace", "session", "requested-by", "agent"]


def _default_trailers() -> list[Trailer]:
    return ["task", "workspace", "requested-by"]


class CommitSection(Section):
    """What /commit writes."""

    trailers: list[Trailer] = Field(default_factory=_default_trailers)


class GitHubSection(Section):
    """How pull requests are opened."""

    use: Literal["auto", "rest", "gh"] = "auto"
    api_base: Url = "https://api.github.com"
    token_env: Text = "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret


class ArchiveSection(Section):
    """What happens to archived workspaces."""

    remove_clean_worktree_after_seconds: NonNegative | None = None


ScriptName = Annotated[
    str, AfterValidator(_matching(r"^[a-z0-9][a-z0-9_-]{0,31}$", "a script name is [a-z0-9_-]"))
]
GitHubRepo = Annotated[
    str,
    AfterValidator(_matching(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$", "must look like owner/name")),
]


class RepoSection(Section):
    """A repository chat users may put in a workspace."""

    path: AbsolutePath
    base: Text | None = None
    scripts: dict[
        ScriptName,
        Annotated[list[str], Field(min_length=1)],
    ] = Field(default_factory=dict)
    github_repo: GitHubRepo | None = None


def _never(value: bool) -> bool:
    if value:
        raise ValueError(
            "cannot be enabled — commits, pushes and PRs only happen when a person asks for them"
        )
    return value


Never = Annotated[bool, AfterValidator(_never)]
RepoSlug = Annotated[
    str,
    AfterValidator(_matching(r"^[a-z0-9][a-z0-9._-]{0,63}$", "a repo name is [a-z0-9._-], 1-64")),
]


DirName = Annotated[
    str,
    AfterValidator(_matching(r"^[a-z0-9][a-z0-9._-]{0,63}$", "a dir name is [a-z0-9._-], 1-64")),
]


class WorkspacesSection(Section):
    """Workspaces driven from chat: repositories, scripts, branch naming, safety knobs."""

    managed_root: AbsolutePath | None = None
    agent: Text = "demo"
    branch_template: Text = "kanban/{ws_short}-{slug}"
    protected_branches: list[Text] = Field(
        default_factory=lambda: ["main", "master", "develop", "release/*"]
    )
    approvals: ApprovalsSection = Field(default_factory=ApprovalsSection)
    queue: QueueSection = Field(default_factory=QueueSection)
    commit: CommitSection = Field(default_factory=CommitSection)
    github: GitHubSection = Field(default_factory=GitHubSection)
    archive: ArchiveSection = Field(default_factory=ArchiveSection)
    script_timeout_seconds: NonNegative = 600
    #: How long a command sent to the host holding a workspace waits to be run there (at most a
    #: day: gc forgets spent nonces on that bound).
    request_expiry_seconds: Annotated[int, Field(gt=0, le=MAX_REQUEST_EXPIRY_S)] = 120
    repos: dict[RepoSlug, RepoSection] = Field(default_factory=dict)
    #: Directories chat may name with ``--workspace dir:<name>`` (chat never names a path).
    dirs: dict[DirName, AbsolutePath] = Field(default_factory=dict)
    # Refused when true: nothing reaches git unless a person asks.
    auto_commit: Never = False
    auto_push: Never = False
    auto_pr: Never = False


class PermissionsSection(Section):
    """Permission requests agents make that the policy leaves to a person."""

    # Shorter than 10 s, nobody could answer in time.
    ttl_seconds: Annotated[int, Field(ge=10)] = 900
    # The gateway's roles (gateway.access.Role), named here since the kernel cannot import it.
    answer_role: Literal["viewer", "operator", "approver", "admin"] = "operator"


class MaintenanceSection(Section):
    """The board's maintenance that one gateway (the leader) runs on a schedule."""

    # How often the leader runs gc (fractions allowed: 0.5 is every half hour).
    gc_interval_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    # What gc keeps: events and deliveries of finished tasks, finished execution requests, and
    # worker logs, this recent.
    event_retention_days: Positive = 30
    log_retention_days: Positive = 30


#: The kernel's top-level sections (their declared types), in the order the file documents them.
KERNEL_SECTIONS: dict[str, Any] = {
    "board": BoardSection,
    "dispatcher": DispatcherSection,
    "assignees": dict[AssigneeName, ProfileSection],
    "permissions": PermissionsSection,
    "maintenance": MaintenanceSection,
    "workspaces": WorkspacesSection,
}
