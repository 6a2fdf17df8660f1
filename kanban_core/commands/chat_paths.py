"""What chat names instead of a filesystem path: configured repositories and directories.

From chat, ``--workspace dir:<name>`` and ``--repo <name>`` name entries of
``workspaces.dirs`` and ``workspaces.repos``; a path is refused (a chat user never points the
server at an arbitrary directory). The local CLI may use the names too, and keeps paths.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kanban_core.board.domain import WorkspaceKind
from kanban_core.board.validation import WorkspaceSpec, parse_workspace
from kanban_core.errors import ValidationError
from kanban_core.workspaces.interactive.config import WorkspacesConfig

_DIR_NAME = re.compile(r"^dir:([a-z0-9][a-z0-9._-]{0,63})$")


@dataclass(frozen=True, slots=True)
class DirName:
    """``dir:<name>``: a directory configured under ``workspaces.dirs``."""

    name: str


def parse_workspace_arg(value: str) -> WorkspaceSpec | DirName:
    """``--workspace``: a kind, ``dir:<absolute path>``, or ``dir:<configured name>``."""
    named = _DIR_NAME.match(value.strip())
    return DirName(named.group(1)) if named else parse_workspace(value)


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names)) or "none configured"


def resolve(
    workspace: WorkspaceSpec | DirName | None,
    repo: str | None,
    *,
    from_chat: bool,
    config: Callable[[], WorkspacesConfig],
) -> tuple[WorkspaceSpec | None, str | None]:
    """The workspace and repository a create names, with names turned into configured paths."""
    if isinstance(workspace, DirName):
        path = config().dirs.get(workspace.name)
        if path is None:
            raise ValidationError(
                f"no directory {workspace.name!r} in workspaces.dirs "
                f"(configured: {_known(config().dirs)})"
            )
        workspace = WorkspaceSpec(WorkspaceKind.DIR, str(path))
    elif from_chat and workspace is not None and workspace.kind is WorkspaceKind.DIR:
        raise ValidationError(
            "chat never names a filesystem path: use --workspace dir:<name> with a directory "
            f"configured in workspaces.dirs ({_known(config().dirs)})"
        )
    if repo is not None and repo.strip() and (from_chat or not repo.startswith("/")):
        configured = config().repos.get(repo.strip())
        if configured is not None:
            repo = str(configured.path)
        elif from_chat:
            raise ValidationError(
                f"chat never names a filesystem path: --repo takes a repository configured in "
                f"workspaces.repos, not {repo.strip()!r} ({_known(config().repos)})"
            )
    return workspace, repo
