"""config.yaml, the kernel's part: ``board``, ``dispatcher``, ``assignees``, ``permissions`` …

The file is optional (``$KANBAN_HOME/config.yaml``, or the path in ``KANBAN_CONFIG``). The whole
file is validated against one declarative schema (``kanban_core.config.schema`` and the sections
layers above contribute), every problem reported at once by its key path; this module turns the
kernel's sections into frozen values. Secrets never live in the file: a database password goes
in the environment variable ``board.db_url_env`` names, an agent's API key is passed through from
the environment with ``pass_env``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kanban_core.board.validation import parse_duration, parse_workspace
from kanban_core.config.cache import kernel_sections
from kanban_core.errors import ValidationError
from kanban_core.permission_policy import (
    DEFAULT_POLICY,
    PathScope,
    PermissionPolicy,
    PermissionRule,
    PolicyAction,
    ToolKind,
)
from kanban_core.profiles import (
    DEMO_PROFILE,
    PRESET_COMMANDS,
    SESSION_ARGS,
    AssigneeProfile,
    Preset,
    SandboxPolicy,
)
from kanban_core.workspaces.interactive.config import WorkspacesConfig, workspaces_from

#: A section of the file after validation: plain values, every key present.
Section = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """How the board is stored; None means "use the default"."""

    db_url: str | None = None
    sqlite_synchronous: str | None = None
    claim_ttl_seconds: int | None = None
    pool_size: int | None = None


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    """Caps, failure policy and worker timing; re-read by the dispatcher on every pass."""

    max_in_progress: int = 4
    failure_limit: int = 3
    backoff_base_seconds: int = 30
    backoff_cap_seconds: int = 1800
    lease_ttl_seconds: int = 60
    terminate_grace_seconds: int = 10
    log_rotate_bytes: int = 2 * 1024 * 1024
    log_backups: int = 3
    dispatch_interval_seconds: int = 60
    quota_backoff_seconds: int = 900


@dataclass(frozen=True, slots=True)
class MaintenanceConfig:
    """The leader's scheduled maintenance: how often gc runs and what it keeps."""

    gc_interval_hours: float = 24.0
    event_retention_days: int = 30
    log_retention_days: int = 30


@dataclass(frozen=True, slots=True)
class PermissionsConfig:
    """How the permission requests a policy leaves to a person are answered (the gateway's)."""

    ttl_seconds: int = 900
    answer_role: str = "operator"  # a gateway role's name: viewer, operator, approver, admin


@dataclass(frozen=True, slots=True)
class KanbanConfig:
    """The kernel's configuration."""

    board: BoardConfig = field(default_factory=BoardConfig)
    dispatcher: DispatcherConfig = field(default_factory=DispatcherConfig)
    assignees: Mapping[str, AssigneeProfile] = field(
        default_factory=lambda: {DEMO_PROFILE.name: DEMO_PROFILE}
    )
    workspaces: WorkspacesConfig = field(default_factory=WorkspacesConfig)
    permissions: PermissionsConfig = field(default_factory=PermissionsConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)


def config_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where config.yaml is looked for."""
    explicit = environ.get("KANBAN_CONFIG")
    return Path(explicit).expanduser() if explicit else home / "config.yaml"


def load_board_config(path: Path, environ: Mapping[str, str]) -> BoardConfig:
    """Only the ``board`` section (what every CLI call needs); the whole file is still checked."""
    return load_config(path, environ).board


def load_config(path: Path, environ: Mapping[str, str]) -> KanbanConfig:
    """Read the file; no file is the default config, a bad one lists every error."""
    if not path.is_file():
        if "KANBAN_CONFIG" in environ:
            raise ValidationError(f"config file {path} does not exist")
        return KanbanConfig()
    # The kernel's sections as the schema normalised them (every default filled in).
    sections = kernel_sections(path)
    problems: list[str] = []
    board = _board(sections["board"], environ, problems)
    if problems:
        raise ValidationError("\n".join(f"{path}: {problem}" for problem in problems))
    assignees = {DEMO_PROFILE.name: DEMO_PROFILE}
    for name, section in sections["assignees"].items():
        assignees[name] = _profile(name, section)
    return KanbanConfig(
        board=board,
        dispatcher=DispatcherConfig(**sections["dispatcher"]),
        assignees=assignees,
        workspaces=workspaces_from(sections["workspaces"]),
        permissions=PermissionsConfig(**sections["permissions"]),
        maintenance=MaintenanceConfig(**sections["maintenance"]),
    )


def _board(section: Section, environ: Mapping[str, str], problems: list[str]) -> BoardConfig:
    db_url = section["db_url"]
    env_name = section["db_url_env"]
    if env_name is not None:
        db_url = environ.get(env_name) or None
        if db_url is None:
            problems.append(f"board.db_url_env: environment variable {env_name} is not set")
    return BoardConfig(
        db_url=db_url,
        sqlite_synchronous=section["sqlite_synchronous"],
        claim_ttl_seconds=section["claim_ttl_seconds"],
        pool_size=section["pool_size"],
    )


def _profile(name: str, section: Section) -> AssigneeProfile:
    preset = Preset(section["preset"])
    first, resume = SESSION_ARGS.get(preset, ((), ()))
    max_runtime = section["max_runtime"]
    return AssigneeProfile(
        name=name,
        command=tuple(section["command"] or PRESET_COMMANDS[preset]),
        preset=preset,
        workspace=parse_workspace(section["workspace"]) if section["workspace"] else None,
        repo=section["repo"],
        max_in_progress=section["max_in_progress"],
        env={key: str(value) for key, value in section["env"].items()},
        pass_env=tuple(section["pass_env"]),
        skills=tuple(section["skills"]),
        max_runtime_s=parse_duration(str(max_runtime)) if max_runtime is not None else None,
        allow_dirty_base=section["allow_dirty_base"],
        first_turn_args=_args(section["first_turn_args"], first),
        resume_args=_args(section["resume_args"], resume),
        sandbox=SandboxPolicy.from_json(section["sandbox"]),
        permissions=_permissions(section["permissions"], section["permissions_defaults"]),
        max_cost_micro_usd=(
            round(section["max_cost_usd"] * 1_000_000) if section["max_cost_usd"] else None
        ),
        max_tokens=section["max_tokens"],
        progress_interval_s=(
            float(section["progress"]["interval_seconds"])
            if section["progress"]["enabled"]
            else None
        ),
        host=section["host"],
        label=section["label"],
    )


def _permissions(rules: list[Section], defaults: bool) -> PermissionPolicy:
    """A profile's rules (as the schema checked them), then the defaults unless dropped."""
    policy = PermissionPolicy(
        tuple(
            PermissionRule(
                action=PolicyAction(rule["action"]),
                kinds=frozenset(map(ToolKind, rule["kind"])) if rule["kind"] else None,
                tools=tuple(rule["tool"] or ()),
                paths=PathScope(rule["paths"]) if rule["paths"] else None,
            )
            for rule in rules
        )
    )
    return policy.then(DEFAULT_POLICY) if defaults else policy


def _args(value: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return default if value is None else tuple(value)
