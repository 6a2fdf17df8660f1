"""Names for task worktrees (D-05): slugs, per-repository directories and free kanban/… branches."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import git

from kanban_core.board.domain import format_task_id
from kanban_core.workspaces.base import WorkspaceError, slugify

PREFIX = "kanban"
# D-05: at most 100 ASCII characters; every '/'-segment non-empty, not starting with '.' or '-'.
_BRANCH_RE = re.compile(r"(?=.{1,100}$)[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")
_MAX_SUFFIX = 100


def repo_dir_name(common: Path) -> str:
    """``<repo-slug>-<sha1(common dir)[:8]>``: readable, and distinct for two repos of one name."""
    name = common.parent.name if common.name == ".git" else common.name.removesuffix(".git")
    digest = hashlib.sha1(os.fsencode(common), usedforsecurity=False).hexdigest()[:8]
    return f"{slugify(name, fallback='repo')}-{digest}"


def task_ref(task_id: int) -> str:
    """``t42``: the task's worktree directory name, and what its marker names."""
    if task_id <= 0:  # ids become path components: only generated, positive ints
        raise WorkspaceError(f"invalid task id {task_id!r}")
    return format_task_id(task_id)


def check_branch_name(repo: git.Repo, name: str) -> None:
    """Refuse a name git or our stricter rules (D-05) reject; option-like names never reach git."""
    if not _BRANCH_RE.fullmatch(name):
        raise WorkspaceError(f"invalid branch name {name!r}")
    try:
        repo.git.check_ref_format("--branch", name)
    except git.GitCommandError:
        raise WorkspaceError(f"invalid branch name {name!r} (git check-ref-format)") from None


def create_branch(repo: git.Repo, stem: str, oid: str, task_ref: str) -> str:
    """Create a new branch at oid, suffixing -2, -3, … past every existing name."""
    taken = _taken_names(repo)
    if PREFIX in taken:
        raise WorkspaceError(f"a branch named {PREFIX!r} exists and blocks every {PREFIX}/… branch")
    zero = "0" * len(oid)
    for n in range(1, _MAX_SUFFIX + 1):
        name = stem if n == 1 else f"{stem}-{n}"
        if _conflicts(name, taken):
            continue
        check_branch_name(repo, name)
        try:
            # Compare-and-create (old value: none), so a branch made meanwhile is never taken over.
            repo.git.update_ref("-m", f"kanban: {task_ref}", f"refs/heads/{name}", oid, zero)
        except git.GitCommandError:
            taken = _taken_names(repo)
            if _conflicts(name, taken):
                continue  # lost a race for this name
            raise
        return name
    raise WorkspaceError(f"no free branch name for {stem} up to -{_MAX_SUFFIX}")


def _taken_names(repo: git.Repo) -> set[str]:
    """Lowercased names of every local and remote-tracking branch (F-08, F-09, F-12)."""
    remotes = sorted(
        (f"refs/remotes/{name}/" for name in str(repo.git.remote()).split()), key=len, reverse=True
    )
    names: set[str] = set()
    refs = str(repo.git.for_each_ref("--format=%(refname)", "refs/heads", "refs/remotes"))
    for ref in refs.splitlines():
        if ref.startswith("refs/heads/"):
            names.add(ref.removeprefix("refs/heads/").lower())
            continue
        prefix = next((p for p in remotes if ref.startswith(p)), None)
        rest = ref.removeprefix(prefix) if prefix else ref.split("/", 3)[-1]
        if rest != "HEAD":
            names.add(rest.lower())
    return names


def _conflicts(name: str, taken: set[str]) -> bool:
    """Exact, case-only or directory/file clash (`kanban` blocks `kanban/x` and back)."""
    parts = name.lower().split("/")
    prefixes = {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return bool(prefixes & taken) or any(t.startswith(name.lower() + "/") for t in taken)
