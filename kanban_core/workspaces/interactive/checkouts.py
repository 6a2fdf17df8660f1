"""One repository's worktree inside a workspace: the record, and the git reads and steps on it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.gitops.runner import GitOpError, run_git
from kanban_core.workspaces.interactive.layout import SLUG_RE, check_id

#: Every lock reason we write starts so; we never unlock a worktree someone else locked (F-23).
REASON_PREFIX = "kanban:"


@dataclass(frozen=True, slots=True)
class RepoCheckout:
    """One repository of a workspace: where its worktree is, on which branch, from what base."""

    slug: str
    source: Path
    common_dir: Path
    worktree: Path
    branch: str
    base_ref: str
    base_oid: str
    branch_created: bool
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class WorktreeEntry:
    """One registration from ``git worktree list --porcelain -z``."""

    path: Path
    head: str
    branch: str | None  # the short name, None when detached
    locked: str | None  # the lock reason ('' when locked without one), None when unlocked
    prunable: bool


def creating_reason(ws_id: str) -> str:
    """The lock reason while a worktree is being made (rollback may force-remove it)."""
    return f"{REASON_PREFIX}{ws_id} creating"


def managed_reason(ws_id: str) -> str:
    """The lock reason of a finished worktree (keeps other tools' prune away from it)."""
    return f"{REASON_PREFIX}{ws_id} managed"


def list_worktrees(common: Path) -> list[WorktreeEntry]:
    """Every worktree registered in the repository whose common git dir is given."""
    fields = run_git(common, "worktree", "list", "--porcelain", "-z").text.split("\0")
    entries: list[WorktreeEntry] = []
    current: dict[str, str] = {}
    for field in [*fields, ""]:
        if field:
            key, _, value = field.partition(" ")
            current[key] = value
            continue
        if "worktree" in current:
            branch = current.get("branch")
            entries.append(
                WorktreeEntry(
                    path=Path(current["worktree"]),
                    head=current.get("HEAD", ""),
                    branch=branch.removeprefix("refs/heads/") if branch else None,
                    locked=current.get("locked"),
                    prunable="prunable" in current,
                )
            )
        current = {}
    return entries


def find_entry(common: Path, path: Path) -> WorktreeEntry | None:
    """The registration of exactly this path, if any."""
    want = os.path.realpath(path)
    return next((e for e in list_worktrees(common) if os.path.realpath(e.path) == want), None)


def checkout_ws_id(checkout: RepoCheckout, root: Path) -> str:
    """The workspace id, once the worktree path is proven to be ``<root>/<ws-id>/<slug>``."""
    real_root = Path(os.path.realpath(root))
    path = checkout.worktree
    if not path.is_absolute():
        raise WorkspaceError(f"worktree path must be absolute, got {str(path)!r}")
    ws_id = path.parent.name
    check_id(ws_id, "ws")
    if not SLUG_RE.fullmatch(checkout.slug) or checkout.slug in (".", ".."):
        raise WorkspaceError(f"invalid repo slug {checkout.slug[:80]!r}")
    if path.name != checkout.slug or Path(os.path.realpath(path.parent)) != real_root / ws_id:
        raise WorkspaceError(f"{path} is not {real_root}/<ws-id>/{checkout.slug}; left alone")
    container = path.parent
    if container.is_symlink():
        raise WorkspaceError(f"{container} is a symlink; left alone")
    return ws_id


def is_symlink_or_file(path: Path) -> bool:
    """True when something that is not a real directory sits at path."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISLNK(mode) or not stat.S_ISDIR(mode)


def unlock_if_ours(common: Path, entry: WorktreeEntry) -> None:
    """Unlock a registration locked by us; refuse one locked by anyone else."""
    if entry.locked is None:
        return
    if not entry.locked.startswith(REASON_PREFIX):
        raise WorkspaceError(
            f"{entry.path} is locked by someone else ({entry.locked or 'no reason given'}); "
            "not unlocking it"
        )
    run_git(common, "worktree", "unlock", str(entry.path))


def relock(common: Path, path: Path, reason: str) -> None:
    """Replace our lock on a worktree with one carrying a new reason."""
    entry = find_entry(common, path)
    if entry is not None and entry.locked is not None:
        unlock_if_ours(common, entry)
    run_git(common, "worktree", "lock", "--reason", reason, str(path))


def check_linked(path: Path, common: Path) -> None:
    """Refuse unless path is the top of a linked worktree of this repository (D-03 rule 2)."""
    dotgit = path / ".git"
    if dotgit.is_symlink() or not dotgit.is_file():
        raise WorkspaceError(f"{path} is not a linked worktree (its .git is not a file)")
    out = run_git(path, "rev-parse", "--absolute-git-dir", "--show-toplevel", check=False)
    lines = [*out.text.splitlines(), "", ""]
    if out.returncode or Path(lines[0]).resolve().parent != common.resolve() / "worktrees":
        raise WorkspaceError(f"{path} is not a worktree of {common}")
    if Path(os.path.realpath(lines[1])) != Path(os.path.realpath(path)):
        raise WorkspaceError(f"{path} is not the top of a worktree")


def verify_worktree(path: Path, common: Path, branch: str, oid: str | None) -> None:
    """Check git's work for ourselves: a linked worktree of this repo, on branch (at oid)."""
    check_linked(path, common)
    head = run_git(path, "symbolic-ref", "--quiet", "HEAD", check=False).text.strip()
    head_oid = run_git(path, "rev-parse", "--verify", "--quiet", "HEAD", check=False).text.strip()
    if head != f"refs/heads/{branch}" or (oid is not None and head_oid != oid):
        at = f" at {oid[:12]}" if oid else ""
        raise WorkspaceError(f"the worktree {path} is not on {branch}{at}")


def branch_tip(common: Path, branch: str) -> str:
    """The commit a local branch points at, or '' when it does not exist."""
    ref = f"refs/heads/{branch}^{{commit}}"
    result = run_git(common, "rev-parse", "--verify", "--quiet", ref, check=False)
    return result.text.strip() if result.returncode == 0 else ""


def checked_out_elsewhere(common: Path, branch: str, besides: Path) -> Path | None:
    """A worktree other than ``besides`` that has the branch checked out, if any."""
    mine = os.path.realpath(besides)
    for entry in list_worktrees(common):
        if entry.branch == branch and os.path.realpath(entry.path) != mine:
            return entry.path
    return None


def delete_branch_cas(common: Path, branch: str, expected: str, besides: Path) -> str:
    """Compare-and-delete a branch we made; return a human line saying what happened."""
    tip = branch_tip(common, branch)
    if not tip:
        return f"branch {branch} was already gone"
    if tip != expected:
        return f"kept branch {branch}: it moved to {tip[:12]} (expected {expected[:12]})"
    other = checked_out_elsewhere(common, branch, besides)
    if other is not None:
        return f"kept branch {branch}: it is checked out at {other}"
    try:
        # update-ref -d with an old value refuses if the branch moved meanwhile (EXP 15).
        run_git(common, "update-ref", "-d", f"refs/heads/{branch}", expected)
    except GitOpError as exc:
        return f"kept branch {branch}: {exc}"
    return f"deleted branch {branch} (was {expected[:12]})"


def status_counts(worktree: Path, *, untracked: str = "all") -> tuple[int, int]:
    """(tracked changes, untracked files) of a checkout, without taking optional locks."""
    out = run_git(worktree, "status", "--porcelain", "-z", f"--untracked-files={untracked}").text
    fields = iter(out.split("\0"))
    tracked = new = 0
    for entry in fields:
        if not entry:
            continue
        if entry.startswith("??"):
            new += 1
            continue
        tracked += 1
        if "R" in entry[:2] or "C" in entry[:2]:
            next(fields, None)  # a rename's source path is its own field
    return tracked, new


def plural(n: int, noun: str) -> str:
    """``1 change`` / ``3 changes``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
