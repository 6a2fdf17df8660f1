"""The ``workspaces`` section of config.yaml: repositories, scripts, branch naming, safety knobs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_KEYS = {
    "managed_root", "agent", "branch_template", "protected_branches", "approvals", "queue",
    "commit", "github", "archive", "repos", "auto_commit", "auto_push", "auto_pr",
    "script_timeout_seconds", "dirs",
}  # fmt: skip
_REPO_KEYS = {"path", "base", "scripts", "github_repo"}
_GH_REPO = re.compile(r"^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
Section = Mapping[str, Any]
_SCRIPT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_TRAILERS = ("task", "workspace", "session", "requested-by", "agent")
DEFAULT_PROTECTED = ("main", "master", "develop", "release/*")


@dataclass(frozen=True, slots=True)
class RepoConfig:
    """A repository chat users may put in a workspace, with its named scripts."""

    slug: str
    path: Path
    base: str | None = None
    scripts: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``owner/name`` on GitHub when the remote URL does not say it (a mirror or proxy).
    github_repo: str | None = None


@dataclass(frozen=True, slots=True)
class GitHubConfig:
    """How pull requests are opened: the REST API (token from an env var) or the gh CLI."""

    use: str = "auto"  # auto | rest | gh
    api_base: str = "https://api.github.com"
    token_env: str = "GITHUB_TOKEN"  # noqa: S105 - the variable's name, not a secret


_DEFAULT_GITHUB = GitHubConfig()


@dataclass(frozen=True, slots=True)
class WorkspacesConfig:
    """Workspace settings; none of them can make git act without a person asking."""

    managed_root: Path | None = None
    agent: str = "demo"
    branch_template: str = "kanban/{ws_short}-{slug}"
    protected_branches: tuple[str, ...] = DEFAULT_PROTECTED
    approval_ttl_seconds: int = 900
    four_eyes: bool = False
    queue_max_per_session: int = 5
    trailers: tuple[str, ...] = ("task", "workspace", "requested-by")
    github: GitHubConfig = field(default_factory=GitHubConfig)
    remove_clean_worktree_after_seconds: int | None = None
    script_timeout_seconds: int = 600
    repos: Mapping[str, RepoConfig] = field(default_factory=dict)
    #: Directories chat may name with ``--workspace dir:<name>`` (chat never names a path).
    dirs: Mapping[str, Path] = field(default_factory=dict)


def parse_workspaces(section: Section, problems: list[str]) -> WorkspacesConfig:
    """Parse the section, appending every problem (by key path) to ``problems``."""
    where = "workspaces"
    problems += [f"{where}.{key}: unknown key" for key in sorted(set(section) - _KEYS)]
    for key in ("auto_commit", "auto_push", "auto_pr"):
        if section.get(key):
            problems.append(
                f"{where}.{key}: cannot be enabled — commits, pushes and PRs only happen when "
                "a person asks for them"
            )
    defaults = WorkspacesConfig()
    root = section.get("managed_root")
    if root is not None and (not isinstance(root, str) or not Path(root).is_absolute()):
        problems.append(f"{where}.managed_root: must be an absolute path")
        root = None
    agent = _text(section, "agent", defaults.agent, where, problems)
    template = _text(section, "branch_template", defaults.branch_template, where, problems)
    protected = _strings(
        section, "protected_branches", defaults.protected_branches, where, problems
    )
    approvals = _mapping(section, "approvals", where, problems)
    queue = _mapping(section, "queue", where, problems)
    commit = _mapping(section, "commit", where, problems)
    archive = _mapping(section, "archive", where, problems)
    trailers = _strings(commit, "trailers", defaults.trailers, f"{where}.commit", problems)
    problems += [
        f"{where}.commit.trailers: unknown trailer {name!r} (known: {', '.join(_TRAILERS)})"
        for name in trailers
        if name not in _TRAILERS
    ]
    return WorkspacesConfig(
        managed_root=Path(root) if root else None,
        agent=agent,
        branch_template=template,
        protected_branches=protected,
        approval_ttl_seconds=_int(approvals, "ttl_seconds", 900, f"{where}.approvals", problems),
        four_eyes=bool(approvals.get("four_eyes", False)),
        queue_max_per_session=_int(queue, "max_per_session", 5, f"{where}.queue", problems),
        trailers=trailers,
        github=_github(_mapping(section, "github", where, problems), problems),
        remove_clean_worktree_after_seconds=_optional_int(
            archive, "remove_clean_worktree_after_seconds", f"{where}.archive", problems
        ),
        script_timeout_seconds=_int(section, "script_timeout_seconds", 600, where, problems),
        repos=_repos(_mapping(section, "repos", where, problems), problems),
        dirs=_dirs(_mapping(section, "dirs", where, problems), problems),
    )


def _dirs(section: Section, problems: list[str]) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for name, path in section.items():
        where = f"workspaces.dirs.{name}"
        if not _SLUG.match(str(name)):
            problems.append(f"{where}: a directory name must match [a-z0-9][a-z0-9._-]{{0,63}}")
        elif not isinstance(path, str) or not Path(path).is_absolute() or ".." in Path(path).parts:
            problems.append(f"{where}: must be an absolute path without '..'")
        else:
            dirs[str(name)] = Path(path)
    return dirs


def _github(section: Section, problems: list[str]) -> GitHubConfig:
    where = "workspaces.github"
    use = str(section.get("use", "auto"))
    if use not in ("auto", "rest", "gh"):
        problems.append(f"{where}.use: must be auto, rest or gh")
        use = "auto"
    api_base = _text(section, "api_base", _DEFAULT_GITHUB.api_base, where, problems)
    if not api_base.startswith(("https://", "http://")):
        problems.append(f"{where}.api_base: must be an http(s) URL")
    if "token" in section:
        problems.append(f"{where}.token: put the token in an environment variable and name it "
                        "with token_env")  # fmt: skip
    token_env = _text(section, "token_env", _DEFAULT_GITHUB.token_env, where, problems)
    return GitHubConfig(use=use, api_base=api_base.rstrip("/"), token_env=token_env)


def _repos(section: Section, problems: list[str]) -> dict[str, RepoConfig]:
    repos: dict[str, RepoConfig] = {}
    for slug, raw in section.items():
        where = f"workspaces.repos.{slug}"
        if not _SLUG.match(str(slug)):
            problems.append(f"{where}: a repo name must match [a-z0-9][a-z0-9._-]{{0,63}}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{where}: must be a mapping with a path")
            continue
        problems += [f"{where}.{key}: unknown key" for key in sorted(set(raw) - _REPO_KEYS)]
        path = raw.get("path")
        if not isinstance(path, str) or not Path(path).is_absolute():
            problems.append(f"{where}.path: must be an absolute path")
            continue
        base = raw.get("base")
        scripts: dict[str, tuple[str, ...]] = {}
        for name, argv in _mapping(raw, "scripts", where, problems).items():
            if not _SCRIPT.match(str(name)):
                problems.append(f"{where}.scripts.{name}: a script name must match [a-z0-9_-]")
            elif (
                not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv)
            ):
                problems.append(f"{where}.scripts.{name}: must be a list of arguments (no shell)")
            else:
                scripts[name] = tuple(argv)
        github_repo = raw.get("github_repo")
        if github_repo is not None and not _GH_REPO.match(str(github_repo)):
            problems.append(f"{where}.github_repo: must look like owner/name")
            github_repo = None
        repos[slug] = RepoConfig(
            slug, Path(path), str(base) if base else None, scripts, github_repo
        )
    return repos


def _mapping(section: Section, key: str, where: str, problems: list[str]) -> dict[str, Any]:
    value = section.get(key) or {}
    if not isinstance(value, dict):
        problems.append(f"{where}.{key}: must be a mapping")
        return {}
    return value


def _text(section: Section, key: str, default: str, where: str, problems: list[str]) -> str:
    value = section.get(key, default)
    if not isinstance(value, str) or not value:
        problems.append(f"{where}.{key}: must be a non-empty string")
        return default
    return value


def _strings(
    section: Section, key: str, default: tuple[str, ...], where: str, problems: list[str]
) -> tuple[str, ...]:
    value = section.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}.{key}: must be a list of strings")
        return default
    return tuple(value)


def _int(section: Section, key: str, default: int, where: str, problems: list[str]) -> int:
    value = _optional_int(section, key, where, problems)
    return default if value is None else value


def _optional_int(section: Section, key: str, where: str, problems: list[str]) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        problems.append(f"{where}.{key}: must be a whole number ≥ 0")
        return None
    return value
