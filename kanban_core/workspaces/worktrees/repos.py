"""GitPython plumbing for task worktrees: a safe environment, short-lived repos, plain errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from kanban_core.workspaces.base import WorkspaceError

# A hook's environment would point git at some other repository than the one we name.
_FOREIGN_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_NAMESPACE")
#: Never prompt; and never let a read (`status`) rewrite the user's index as an optional lock.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


@contextmanager
def open_repo(path: Path) -> Iterator[git.Repo]:
    """The repository at ``path`` with :data:`GIT_ENV`, closed on exit."""
    with git.Repo(path) as repo:  # closed on exit: GitPython leaks child processes otherwise
        repo.git.update_environment(**GIT_ENV)
        yield repo


def refuse_foreign_env() -> None:
    """Raise if the environment would send git to another repository than the one named."""
    for name in _FOREIGN_ENV:
        if os.environ.get(name):
            raise WorkspaceError(f"{name} is set in the environment; refusing to run git under it")


def resolve_commit(repo: git.Repo, ref: str) -> str:
    """The commit ``ref`` names, or "" when it names none."""
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}"))
    except git.GitCommandError:
        return ""


def count_changes(porcelain_z: object) -> int:
    """Entries of `git status --porcelain -z`; a rename's source path is its own field."""
    fields = iter(str(porcelain_z).split("\0"))
    count = 0
    for entry in fields:
        if not entry:
            continue
        count += 1
        if "R" in entry[:2] or "C" in entry[:2]:
            next(fields, None)
    return count


def plural(n: int, noun: str) -> str:
    """``1 change``, ``2 changes``: for counts in messages."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def git_error(exc: git.GitCommandError) -> str:
    """Git's stderr as one line, without GitPython's wrapping, progress or hints."""
    text = str(exc.stderr).strip().removeprefix("stderr: '").removesuffix("'")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]  # not progress chatter
    return "; ".join(errors or lines) or f"git exited with status {exc.status}"
