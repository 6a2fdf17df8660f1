"""config.yaml, the kernel's part: ``board``, ``dispatcher`` and ``assignees``, as frozen values.

The file is optional (``$KANBAN_HOME/config.yaml``, or the path in ``KANBAN_CONFIG``). Every
problem is reported at once, by its key path. Secrets never live in the file: a database
password goes in the environment variable ``board.db_url_env`` names, an agent's API key is passed
through from the environment with ``pass_env``. Other top-level sections belong to the gateway
and are read by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kanban_core.errors import ValidationError
from kanban_core.profiles import (
    DEMO_PROFILE,
    PRESET_COMMANDS,
    SESSION_ARGS,
    AssigneeProfile,
    Preset,
)
from kanban_core.sandbox import parse_sandbox
from kanban_core.validation import WorkspaceSpec, clean_name, parse_duration, parse_workspace
from kanban_core.workspace.config import WorkspacesConfig, parse_workspaces

_BOARD_KEYS = {"db_url", "db_url_env", "sqlite_synchronous", "claim_ttl_seconds"}
_PROFILE_KEYS = {
    "preset",
    "command",
    "workspace",
    "repo",
    "max_in_progress",
    "env",
    "pass_env",
    "skills",
    "max_runtime",
    "allow_dirty_base",
    "first_turn_args",
    "resume_args",
    "sandbox",
}


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """How the board is stored; None means "use the default"."""

    db_url: str | None = None
    sqlite_synchronous: str | None = None
    claim_ttl_seconds: int | None = None


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


@dataclass(frozen=True, slots=True)
class KanbanConfig:
    """The kernel's configuration."""

    board: BoardConfig = field(default_factory=BoardConfig)
    dispatcher: DispatcherConfig = field(default_factory=DispatcherConfig)
    assignees: Mapping[str, AssigneeProfile] = field(
        default_factory=lambda: {DEMO_PROFILE.name: DEMO_PROFILE}
    )
    workspaces: WorkspacesConfig = field(default_factory=WorkspacesConfig)


def config_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where config.yaml is looked for."""
    explicit = environ.get("KANBAN_CONFIG")
    return Path(explicit).expanduser() if explicit else home / "config.yaml"


def load_board_config(path: Path, environ: Mapping[str, str]) -> BoardConfig:
    """Only the ``board`` section (what every CLI call needs)."""
    return load_config(path, environ).board


def load_config(path: Path, environ: Mapping[str, str]) -> KanbanConfig:
    """Read the file; no file is the default config, a bad one lists every error."""
    if not path.is_file():
        if "KANBAN_CONFIG" in environ:
            raise ValidationError(f"config file {path} does not exist")
        return KanbanConfig()
    import yaml  # only paid for when a config file exists

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError(f"{path}: the top level must be a mapping")
    problems: list[str] = []
    board = _board(_section(document, "board", problems), environ, problems)
    dispatcher = _dispatcher(_section(document, "dispatcher", problems), problems)
    assignees = _assignees(_section(document, "assignees", problems), problems)
    workspaces = parse_workspaces(_section(document, "workspaces", problems), problems)
    if problems:
        raise ValidationError(f"{path}: " + "; ".join(problems))
    return KanbanConfig(
        board=board, dispatcher=dispatcher, assignees=assignees, workspaces=workspaces
    )


def _section(document: dict[str, Any], name: str, problems: list[str]) -> dict[str, Any]:
    section = document.get(name) or {}
    if not isinstance(section, dict):
        problems.append(f"{name}: must be a mapping")
        return {}
    return section


def _board(section: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> BoardConfig:
    problems += [f"board.{key}: unknown key" for key in sorted(set(section) - _BOARD_KEYS)]
    db_url = _db_url(section, environ, problems)
    sync = section.get("sqlite_synchronous")
    if sync is not None and str(sync).upper() not in ("NORMAL", "FULL"):
        problems.append("board.sqlite_synchronous: must be NORMAL or FULL")
        sync = None
    ttl = _positive(section, "claim_ttl_seconds", "board", problems)
    return BoardConfig(
        db_url=db_url,
        sqlite_synchronous=str(sync).upper() if sync is not None else None,
        claim_ttl_seconds=ttl,
    )


def _dispatcher(section: dict[str, Any], problems: list[str]) -> DispatcherConfig:
    defaults = DispatcherConfig()
    known = set(DispatcherConfig.__dataclass_fields__)
    problems += [f"dispatcher.{key}: unknown key" for key in sorted(set(section) - known)]
    values = {}
    for key in known & set(section):
        value = _positive(section, key, "dispatcher", problems)
        if value is not None:
            values[key] = value
    config = DispatcherConfig(**{k: values.get(k, getattr(defaults, k)) for k in known})
    if config.backoff_cap_seconds < config.backoff_base_seconds:
        problems.append("dispatcher.backoff_cap_seconds: must not be below backoff_base_seconds")
    return config


def _assignees(section: dict[str, Any], problems: list[str]) -> dict[str, AssigneeProfile]:
    profiles = {DEMO_PROFILE.name: DEMO_PROFILE}
    for raw_name, raw in section.items():
        where = f"assignees.{raw_name}"
        try:
            name = clean_name(str(raw_name), field="assignee")
        except ValidationError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if name is None:
            problems.append(f"{where}: not a valid assignee name")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        profile = _profile(name, raw, where, problems)
        if profile is not None:
            profiles[name] = profile
    return profiles


def _profile(
    name: str, raw: dict[str, Any], where: str, problems: list[str]
) -> AssigneeProfile | None:
    before = len(problems)
    problems += [f"{where}.{key}: unknown key" for key in sorted(set(raw) - _PROFILE_KEYS)]
    try:
        preset = Preset(raw.get("preset", "command"))
    except ValueError:
        problems.append(f"{where}.preset: one of {', '.join(p.value for p in Preset)}")
        preset = Preset.COMMAND
    argv = _command(raw.get("command"), preset, where, problems)
    workspace = _workspace(raw.get("workspace"), where, problems)
    repo = raw.get("repo")
    if repo is not None and (not isinstance(repo, str) or not PurePosixPath(repo).is_absolute()):
        problems.append(f"{where}.repo: must be an absolute path")
    env = raw.get("env") or {}
    if not isinstance(env, dict) or not all(isinstance(v, str | int) for v in env.values()):
        problems.append(f"{where}.env: must map names to strings")
        env = {}
    pass_env = raw.get("pass_env") or []
    if not isinstance(pass_env, list) or not all(isinstance(v, str) for v in pass_env):
        problems.append(f"{where}.pass_env: must be a list of environment variable names")
        pass_env = []
    skills = raw.get("skills") or []
    if not isinstance(skills, list):
        problems.append(f"{where}.skills: must be a list")
        skills = []
    max_runtime = None
    if raw.get("max_runtime") is not None:
        try:
            max_runtime = parse_duration(str(raw["max_runtime"]))
        except ValidationError as exc:
            problems.append(f"{where}.max_runtime: {exc}")
    dirty = raw.get("allow_dirty_base", False)
    if not isinstance(dirty, bool):
        problems.append(f"{where}.allow_dirty_base: must be true or false")
    first, resume = SESSION_ARGS.get(preset, ((), ()))
    first = _argv(raw, "first_turn_args", first, where, problems)
    resume = _argv(raw, "resume_args", resume, where, problems)
    sandbox = parse_sandbox(raw.get("sandbox"), f"{where}.sandbox", problems)
    if len(problems) > before:
        return None
    return AssigneeProfile(
        name=name,
        command=argv,
        preset=preset,
        workspace=workspace,
        repo=repo,
        max_in_progress=_positive(raw, "max_in_progress", where, problems),
        env={str(k): str(v) for k, v in env.items()},
        pass_env=tuple(pass_env),
        skills=tuple(str(s) for s in skills),
        max_runtime_s=max_runtime,
        allow_dirty_base=bool(dirty),
        first_turn_args=first,
        resume_args=resume,
        sandbox=sandbox,
    )


def _argv(
    raw: dict[str, Any], key: str, default: tuple[str, ...], where: str, problems: list[str]
) -> tuple[str, ...]:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}.{key}: must be a list of arguments")
        return default
    return tuple(value)


def _command(command: Any, preset: Preset, where: str, problems: list[str]) -> tuple[str, ...]:
    if command is None:
        if preset is Preset.COMMAND:
            problems.append(f"{where}.command: required unless a preset is given")
            return ()
        return PRESET_COMMANDS[preset]
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        problems.append(f"{where}.command: must be a non-empty list of strings (argv, no shell)")
        return ()
    return tuple(command)


def _workspace(value: Any, where: str, problems: list[str]) -> WorkspaceSpec | None:
    if value is None:
        return None
    try:
        return parse_workspace(str(value))
    except ValidationError as exc:
        problems.append(f"{where}.workspace: {exc}")
        return None


def _positive(section: dict[str, Any], key: str, where: str, problems: list[str]) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        problems.append(f"{where}.{key}: must be a positive whole number")
        return None
    return value


def _db_url(section: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> str | None:
    url = section.get("db_url")
    env_name = section.get("db_url_env")
    if url is not None and env_name is not None:
        problems.append("board: give db_url or db_url_env, not both")
        return None
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            problems.append("board.db_url_env: must name an environment variable")
            return None
        value = environ.get(env_name)
        if not value:
            problems.append(f"board.db_url_env: environment variable {env_name} is not set")
        return value or None
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        problems.append("board.db_url: must be a URL string")
        return None
    credentials = url.partition("://")[2].partition("@")
    if credentials[1] and ":" in credentials[0]:
        problems.append(
            "board.db_url: contains a password; put the URL in an environment variable "
            "and name it with db_url_env"
        )
        return None
    return url
