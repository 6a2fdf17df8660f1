"""Creating a task's worktree on a new branch off the default branch, or finding it on a retry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git

from kanban_core.board.domain import Task
from kanban_core.workspaces.base import WorkspaceError, slugify
from kanban_core.workspaces.worktrees.marker import read_owned, write_marker
from kanban_core.workspaces.worktrees.names import PREFIX, create_branch, repo_dir_name
from kanban_core.workspaces.worktrees.repos import (
    GIT_ENV,
    count_changes,
    git_error,
    open_repo,
    plural,
    resolve_commit,
)


def create_or_reuse(
    repo: Path, task: Task, task_ref: str, root: Path, allow_dirty_base: bool
) -> tuple[Path, str, bool]:
    """Return (path, branch, created) of the task's worktree under ``root``; git errors escape."""
    with _source(repo) as src:
        return _ensure(src, repo, task, task_ref, root, allow_dirty_base)


def _ensure(
    src: git.Repo, repo: Path, task: Task, task_ref: str, root: Path, allow_dirty_base: bool
) -> tuple[Path, str, bool]:
    common = Path(src.common_dir).resolve()  # GitPython may hand back `…/worktrees/x/../..`
    top = Path(str(src.working_tree_dir)).resolve()
    real_root = _check_root(root, top, common)
    repo_dir = real_root / repo_dir_name(common)
    path = repo_dir / task_ref
    for candidate in (repo_dir, path):
        if candidate.is_symlink():
            raise WorkspaceError(f"{candidate} is a symlink; refusing to use it")
    if not path.resolve().is_relative_to(real_root):
        raise WorkspaceError(f"{path} resolves outside the managed root {real_root}")
    if path.exists():
        return path, _reuse(path, common, task_ref), False
    changes = count_changes(src.git.status("--porcelain", "-z", "--untracked-files=normal"))
    if changes and not allow_dirty_base:
        raise WorkspaceError(
            f"{repo} has {plural(changes, 'uncommitted change')} (tracked or untracked); "
            "commit or stash them first, or allow a dirty base (the worktree starts from the "
            "branch tip without them)"
        )
    base, oid = _default_base(src, repo)
    stem = f"{PREFIX}/{task.id}-{slugify(task.title)}"
    # branch_created: we only ever make new branches, never adopt someone's.
    marker: dict[str, object] = {"task": task_ref, "kind": "worktree", "repo": str(top)}
    marker |= {"common_dir": str(common), "base": base, "base_oid": oid, "branch_created": True}
    branch = _create(src, path=path, common=common, stem=stem, oid=oid, marker=marker)
    return path, branch, True


@contextmanager
def _source(path: Path) -> Iterator[git.Repo]:
    """Open the user's checkout, refusing anything we must not build a worktree from."""
    if not path.is_absolute():
        raise WorkspaceError(f"repository path must be absolute, got {str(path)!r}")
    if not path.exists():
        raise WorkspaceError(f"repository {path} does not exist")
    if not path.is_dir():
        raise WorkspaceError(f"repository {path} is not a directory")
    try:
        opened = git.Repo(path)  # never `git init`: a non-repo is the user's mistake to fix
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, OSError):
        raise WorkspaceError(f"{path} is not a git repository") from None
    with opened as repo:
        repo.git.update_environment(**GIT_ENV)
        if repo.bare:
            raise WorkspaceError(f"{path} is a bare repository; name a checkout of it")
        top = repo.working_tree_dir
        if top is None or Path(top).resolve() != path.resolve():
            raise WorkspaceError(f"{path} is not the top of a git checkout (that is {top})")
        if not repo.head.is_valid():
            raise WorkspaceError(f"{path} has no commits; create an initial commit first")
        yield repo


def _check_root(root: Path, top: Path, common: Path) -> Path:
    real = root.resolve()
    if real == Path(real.anchor):
        raise WorkspaceError(f"managed worktree root {root} is a filesystem root")
    # The named checkout may be a linked worktree: the main checkout counts as well.
    main = common.parent if common.name == ".git" else common
    for other, what in ((top, "checkout"), (main, "checkout"), (common, "git directory")):
        # Either way round, cleaning one could reach into the other.
        if real.is_relative_to(other) or other.is_relative_to(real):
            raise WorkspaceError(
                f"managed worktree root {real} overlaps the repository {what} {other}"
            )
    return real


def _reuse(path: Path, common: Path, task_ref: str) -> str:
    """The retry of a task finds its own worktree; anything else at that path is not ours."""
    try:
        owned = read_owned(path, task_ref)
    except WorkspaceError as exc:
        raise WorkspaceError(f"{path} already exists and {exc}; not touching it") from None
    if owned.common != common:
        raise WorkspaceError(f"{path} is a worktree of another repository ({owned.common})")
    return owned.branch


def _default_base(repo: git.Repo, where: Path) -> tuple[str, str]:
    """(ref, oid) of the default branch: origin/HEAD, else the current branch, else main/master."""
    try:
        ref = str(repo.git.symbolic_ref("--quiet", "refs/remotes/origin/HEAD"))
    except git.GitCommandError:
        ref = ""  # no remote HEAD
    if not ref and not repo.head.is_detached:
        ref = repo.head.reference.path
    if not ref:
        ref = next(
            (r for r in ("refs/heads/main", "refs/heads/master") if resolve_commit(repo, r)), ""
        )
    if not ref:
        raise WorkspaceError(
            f"cannot tell the default branch of {where}: HEAD is detached and there is no "
            "origin/HEAD, main or master; check out a branch first"
        )
    oid = resolve_commit(repo, ref)
    if not oid:
        # Never fall back silently to some other commit (F-02).
        raise WorkspaceError(f"the default branch {ref} of {where} does not resolve to a commit")
    return ref, oid


def _create(
    src: git.Repo, *, path: Path, common: Path, stem: str, oid: str, marker: dict[str, object]
) -> str:
    """Branch, worktree, marker; on any failure undo exactly what this call made."""
    made = _make_dirs(path.parent)
    branch = ""
    added = False
    try:
        branch = create_branch(src, stem, oid, str(marker["task"]))
        src.git.worktree("add", str(path), branch)
        added = True
        git_dir = _verify_new(path, common, branch, oid)
        write_marker(git_dir, {**marker, "branch": branch, "created": int(time.time())})
    except BaseException as exc:
        left = _rollback(src, path, added, branch, oid, made)
        if not isinstance(exc, Exception):
            raise
        message = git_error(exc) if isinstance(exc, git.GitCommandError) else str(exc)
        undo = f"; could not undo: {', '.join(left)}" if left else "; nothing was left behind"
        raise WorkspaceError(f"could not create the worktree {path}: {message}{undo}") from exc
    return branch


def _make_dirs(target: Path) -> list[Path]:
    """Create target and missing parents; return the ones this call made, outermost first."""
    made: list[Path] = []
    for directory in reversed([target, *target.parents]):
        if directory.exists():
            continue
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # someone else made it at the same moment: not ours to remove
        made.append(directory)
    return made


def _verify_new(path: Path, common: Path, branch: str, oid: str) -> Path:
    """Check git's success for ourselves; return the worktree's private git dir."""
    if not (path / ".git").is_file():
        raise WorkspaceError(f"git reported success but {path} is not a linked worktree")
    with open_repo(path) as wt:
        git_dir = Path(str(wt.git.rev_parse("--absolute-git-dir"))).resolve()
        head = str(wt.git.symbolic_ref("--quiet", "HEAD"))
        head_oid = str(wt.git.rev_parse("--verify", "HEAD"))
    if git_dir.parent != common / "worktrees" or head != f"refs/heads/{branch}" or head_oid != oid:
        raise WorkspaceError(f"the new worktree is not on {branch} at {oid[:12]}")
    return git_dir


def _rollback(
    repo: git.Repo, path: Path, worktree: bool, branch: str, oid: str, made: list[Path]
) -> list[str]:
    """Best-effort undo in reverse order; return what could not be undone."""
    left: list[str] = []
    if worktree:
        try:
            # --force is acceptable only here: the tree is seconds old and no agent has run in it.
            repo.git.worktree("remove", "--force", str(path))
        except git.GitCommandError:
            left.append(f"worktree {path}")
    if branch and not left:
        try:
            # Compare-and-delete: refuses if the branch moved, so no one's commits are dropped.
            repo.git.update_ref("-d", f"refs/heads/{branch}", oid)
        except git.GitCommandError:
            left.append(f"branch {branch}")
    for directory in reversed(made):
        try:
            directory.rmdir()  # only if empty; never recursive
        except OSError:
            left.append(f"directory {directory} (not empty)")
            break  # its parents hold it, so they cannot go either
    return left
