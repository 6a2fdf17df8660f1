"""Git worktrees for tasks (GitPython): create on a new branch, with rollback; remove safely."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import NamedTuple

import git

from kanban_core.domain import Task, TaskId, format_task_id
from kanban_core.workspaces import Removal, WorkspaceError

#: The provenance marker, kept in the worktree's private git dir so `git status` stays clean.
MARKER = "kanban-workspace.json"
PREFIX = "kanban"
SLUG_MAX = 40
# D-05: at most 100 ASCII characters; every '/'-segment non-empty, not starting with '.' or '-'.
_BRANCH_RE = re.compile(r"(?=.{1,100}$)[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")
_MAX_SUFFIX = 100
# A hook's environment would point git at some other repository than the one we name.
_FOREIGN_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_NAMESPACE")
# Never prompt; and never let a read (`status`) rewrite the user's index as an optional lock.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


class _Owned(NamedTuple):  # what a task's worktree and its marker say about it
    common: Path
    branch: str
    branch_created: bool
    base: str | None


def slugify(text: str, *, limit: int = SLUG_MAX, fallback: str = "task") -> str:
    """D-05 slug: ASCII, lowercase, '-' between words, cut at a word boundary; never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        cut = slug[: limit + 1]
        slug = (cut[: cut.rfind("-")] if "-" in cut else slug[:limit]).strip("-")
    return slug or fallback


def repo_dir_name(common: Path) -> str:
    """``<repo-slug>-<sha1(common dir)[:8]>``: readable, and distinct for two repos of one name."""
    name = common.parent.name if common.name == ".git" else common.name.removesuffix(".git")
    digest = hashlib.sha1(os.fsencode(common), usedforsecurity=False).hexdigest()[:8]
    return f"{slugify(name, fallback='repo')}-{digest}"


def check_branch_name(repo: git.Repo, name: str) -> None:
    """Refuse a name git or our stricter rules (D-05) reject; option-like names never reach git."""
    if not _BRANCH_RE.fullmatch(name):
        raise WorkspaceError(f"invalid branch name {name!r}")
    try:
        repo.git.check_ref_format("--branch", name)
    except git.GitCommandError:
        raise WorkspaceError(f"invalid branch name {name!r} (git check-ref-format)") from None


def ensure_worktree(
    repo: Path, *, task: Task, root: Path, allow_dirty_base: bool
) -> tuple[Path, str, bool]:
    """Return (path, branch, created) of the task's worktree, creating it if needed."""
    _refuse_foreign_env()
    task_ref = _task_ref(task.id)
    try:
        with _source(repo) as src:
            return _ensure(src, repo, task, task_ref, root, allow_dirty_base)
    except git.GitCommandError as exc:
        raise WorkspaceError(f"git failed in {repo}: {_git_error(exc)}") from None


def remove_worktree(path: Path, *, root: Path, task_id: TaskId) -> Removal:
    """Remove the task's worktree only with proof it is ours and that no work would be lost."""
    if not path.exists() and not path.is_symlink():
        return Removal(task_id, None, removed=False, reason="no workspace")
    try:
        _refuse_foreign_env()
        return _remove(path, root, task_id)
    except WorkspaceError as exc:
        return Removal(task_id, path, removed=False, reason=str(exc))
    except git.GitCommandError as exc:
        return Removal(task_id, path, removed=False, reason=f"git refused: {_git_error(exc)}")


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
    changes = _count_changes(src.git.status("--porcelain", "-z", "--untracked-files=normal"))
    if changes and not allow_dirty_base:
        raise WorkspaceError(
            f"{repo} has {_plural(changes, 'uncommitted change')} (tracked or untracked); "
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
        repo.git.update_environment(**_GIT_ENV)
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
        owned = _owned(path, task_ref)
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
        ref = next((r for r in ("refs/heads/main", "refs/heads/master") if _resolve(repo, r)), "")
    if not ref:
        raise WorkspaceError(
            f"cannot tell the default branch of {where}: HEAD is detached and there is no "
            "origin/HEAD, main or master; check out a branch first"
        )
    oid = _resolve(repo, ref)
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
        branch = _create_branch(src, stem, oid, str(marker["task"]))
        src.git.worktree("add", str(path), branch)
        added = True
        git_dir = _verify_new(path, common, branch, oid)
        _write_marker(git_dir, {**marker, "branch": branch, "created": int(time.time())})
    except BaseException as exc:
        left = _rollback(src, path, added, branch, oid, made)
        if not isinstance(exc, Exception):
            raise
        message = _git_error(exc) if isinstance(exc, git.GitCommandError) else str(exc)
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


def _create_branch(repo: git.Repo, stem: str, oid: str, task_ref: str) -> str:
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


def _verify_new(path: Path, common: Path, branch: str, oid: str) -> Path:
    """Check git's success for ourselves; return the worktree's private git dir."""
    if not (path / ".git").is_file():
        raise WorkspaceError(f"git reported success but {path} is not a linked worktree")
    with _open(path) as wt:
        git_dir = Path(str(wt.git.rev_parse("--absolute-git-dir"))).resolve()
        head = str(wt.git.symbolic_ref("--quiet", "HEAD"))
        head_oid = str(wt.git.rev_parse("--verify", "HEAD"))
    if git_dir.parent != common / "worktrees" or head != f"refs/heads/{branch}" or head_oid != oid:
        raise WorkspaceError(f"the new worktree is not on {branch} at {oid[:12]}")
    return git_dir


def _write_marker(git_dir: Path, marker: dict[str, object]) -> None:
    tmp = git_dir / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(marker, sort_keys=True), encoding="utf-8")
    tmp.replace(git_dir / MARKER)  # a reader never sees half a marker


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


def _remove(path: Path, root: Path, task_id: TaskId) -> Removal:
    task_ref = _task_ref(task_id)
    if path.is_symlink() or not path.is_dir():
        raise WorkspaceError(f"{path} is not a real directory; left alone")
    real_root, real = root.resolve(), path.resolve()
    if real == real_root or not real.is_relative_to(real_root):
        raise WorkspaceError(f"{path} is outside the managed root {real_root}; left alone")
    try:
        owned = _owned(real, task_ref)
    except WorkspaceError as exc:
        raise WorkspaceError(f"{path} {exc}; left alone") from None
    if real.name != task_ref or real.parent != real_root / repo_dir_name(owned.common):
        raise WorkspaceError(f"{path} is not where {task_ref}'s worktree belongs; left alone")
    with _open(real) as wt:
        oid = _check_removable(wt, owned)
    with _open(owned.common) as main:
        # No --force: git re-checks for changes at removal time, closing the race with a worker.
        main.git.worktree("remove", str(real))
        note = _drop_branch(main, owned, oid)
    with suppress(OSError):
        real.parent.rmdir()  # the per-repo directory, only once it is empty
    return Removal(task_id, path, removed=True, reason=f"removed{note}")


def _owned(path: Path, task_ref: str) -> _Owned:
    """Proof that path is a linked worktree whose marker names this task (D-03 rule 2)."""
    dotgit = path / ".git"
    if dotgit.is_symlink() or not dotgit.is_file():
        raise WorkspaceError("is not a linked git worktree (its .git is not a file)")
    try:
        with _open(path) as wt:
            git_dir = Path(str(wt.git.rev_parse("--absolute-git-dir"))).resolve()
            common = Path(wt.common_dir).resolve()
            top = wt.working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError, OSError):
        raise WorkspaceError("has a .git file that points into no repository") from None
    if top is None or Path(top).resolve() != path.resolve():
        raise WorkspaceError("is not the top of a linked worktree")
    if git_dir.parent != common / "worktrees":
        raise WorkspaceError("is not a linked worktree of a repository")
    try:
        marker = json.loads((git_dir / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise WorkspaceError("carries no kanban marker") from None
    if not isinstance(marker, dict) or marker.get("kind") != "worktree":
        raise WorkspaceError("carries a marker that is not a kanban worktree's")
    if marker.get("task") != task_ref:
        raise WorkspaceError(f"belongs to {marker.get('task')}, not {task_ref}")
    branch, base = marker.get("branch"), marker.get("base")
    if not isinstance(branch, str) or not branch:
        raise WorkspaceError("carries a marker without a branch")
    created = marker.get("branch_created") is True
    return _Owned(common, branch, created, base if isinstance(base, str) else None)


def _check_removable(wt: git.Repo, owned: _Owned) -> str:
    """Return the branch tip if removing loses nothing; else raise why not."""
    try:
        head = str(wt.git.symbolic_ref("--quiet", "HEAD"))
    except git.GitCommandError:
        raise WorkspaceError("its HEAD is detached; commits may be unreachable") from None
    if head != f"refs/heads/{owned.branch}":
        raise WorkspaceError(f"it is on {head.removeprefix('refs/heads/')}, not {owned.branch}")
    changes = _count_changes(wt.git.status("--porcelain", "-z", "--untracked-files=all"))
    if changes:
        raise WorkspaceError(_plural(changes, "uncommitted change"))
    oid = _resolve(wt, head)
    if not oid:
        raise WorkspaceError(f"its branch {owned.branch} has no commit")
    safe = ["--remotes"]
    if owned.base and _resolve(wt, owned.base):
        safe.append(owned.base)
    unpushed = int(str(wt.git.rev_list("--count", oid, "--not", *safe)))
    if unpushed:
        merged_into = f" nor merged into {owned.base}" if owned.base else ""
        raise WorkspaceError(
            f"{_plural(unpushed, 'unpushed commit')} on {owned.branch} "
            f"(not on any remote{merged_into})"
        )
    return oid


def _drop_branch(main: git.Repo, owned: _Owned, oid: str) -> str:
    if not owned.branch_created:
        return f"; branch {owned.branch} kept (kanban did not create it)"
    try:
        main.git.update_ref("-d", f"refs/heads/{owned.branch}", oid)  # compare-and-delete
    except git.GitCommandError as exc:
        return f"; branch {owned.branch} kept ({_git_error(exc)})"
    return f"; branch {owned.branch} deleted (its commits are pushed or merged)"


@contextmanager
def _open(path: Path) -> Iterator[git.Repo]:
    with git.Repo(path) as repo:  # closed on exit: GitPython leaks child processes otherwise
        repo.git.update_environment(**_GIT_ENV)
        yield repo


def _refuse_foreign_env() -> None:
    for name in _FOREIGN_ENV:
        if os.environ.get(name):
            raise WorkspaceError(f"{name} is set in the environment; refusing to run git under it")


def _task_ref(task_id: int) -> str:
    if task_id <= 0:  # ids become path components: only generated, positive ints
        raise WorkspaceError(f"invalid task id {task_id!r}")
    return format_task_id(task_id)


def _resolve(repo: git.Repo, ref: str) -> str:
    try:
        return str(repo.git.rev_parse("--verify", "--quiet", f"{ref}^{{commit}}"))
    except git.GitCommandError:
        return ""


def _count_changes(porcelain_z: object) -> int:
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


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _git_error(exc: git.GitCommandError) -> str:
    """Git's stderr as one line, without GitPython's wrapping, progress or hints."""
    text = str(exc.stderr).strip().removeprefix("stderr: '").removesuffix("'")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]  # not progress chatter
    return "; ".join(errors or lines) or f"git exited with status {exc.status}"
