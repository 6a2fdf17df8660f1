"""What chat users do not see: the server's filesystem paths (the local CLI shows them)."""

from __future__ import annotations

from typing import Any

#: JSON keys whose values are server paths (a task's workspace and repository, a worktree).
PATH_KEYS = frozenset({"workspace_path", "repo", "worktree", "container", "source", "log_path"})
HIDDEN = "(hidden in chat)"


def hide_paths(data: Any) -> Any:
    """``data`` with every absolute path under a path key replaced by a placeholder."""
    if isinstance(data, dict):
        return {
            key: HIDDEN if key in PATH_KEYS and _is_path(value) else hide_paths(value)
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [hide_paths(item) for item in data]
    return data


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("/")
