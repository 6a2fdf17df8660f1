"""The ``workspaces`` settings as frozen values: repositories, scripts, branches, safety knobs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    #: How long a command sent to the host holding the workspace waits to be taken there.
    request_expiry_seconds: int = 120
    repos: Mapping[str, RepoConfig] = field(default_factory=dict)
    #: Directories chat may name with ``--workspace dir:<name>`` (chat never names a path).
    dirs: Mapping[str, Path] = field(default_factory=dict)


def workspaces_from(section: Mapping[str, Any]) -> WorkspacesConfig:
    """The ``workspaces`` section, validated by the schema (every key present), as frozen values."""
    github = section["github"]
    return WorkspacesConfig(
        managed_root=Path(section["managed_root"]) if section["managed_root"] else None,
        agent=section["agent"],
        branch_template=section["branch_template"],
        protected_branches=tuple(section["protected_branches"]),
        approval_ttl_seconds=section["approvals"]["ttl_seconds"],
        four_eyes=section["approvals"]["four_eyes"],
        queue_max_per_session=section["queue"]["max_per_session"],
        trailers=tuple(section["commit"]["trailers"]),
        github=GitHubConfig(
            use=github["use"],
            api_base=github["api_base"].rstrip("/"),
            token_env=github["token_env"],
        ),
        remove_clean_worktree_after_seconds=section["archive"][
            "remove_clean_worktree_after_seconds"
        ],
        script_timeout_seconds=section["script_timeout_seconds"],
        request_expiry_seconds=section["request_expiry_seconds"],
        repos={
            slug: RepoConfig(
                slug,
                Path(repo["path"]),
                repo["base"],
                {name: tuple(argv) for name, argv in repo["scripts"].items()},
                repo["github_repo"],
            )
            for slug, repo in section["repos"].items()
        },
        dirs={name: Path(path) for name, path in section["dirs"].items()},
    )
