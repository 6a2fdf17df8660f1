"""Read a worktree's state: branch, ahead/behind, in-progress operations, changed files, patches."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.gitops.runner import GitOpError, run_git

# The marker files git leaves while an operation waits for the user, checked in this order
# (a rebase that stops on a conflicting pick also leaves CHERRY_PICK_HEAD behind).
_IN_PROGRESS = (
    ("rebase-merge", "rebase"),
    ("rebase-apply/applying", "am"),
    ("rebase-apply", "rebase"),
    ("MERGE_HEAD", "merge"),
    ("CHERRY_PICK_HEAD", "cherry-pick"),
    ("REVERT_HEAD", "revert"),
)


@dataclass(frozen=True, slots=True)
class FileChange:
    """One changed path between the fork point and the working tree."""

    path: str
    old_path: str | None
    change: str
    added: int | None
    deleted: int | None
    binary: bool = False
    mode_change: bool = False

    @property
    def churn(self) -> int:
        """Lines added plus lines deleted (a binary file counts 0)."""
        return (self.added or 0) + (self.deleted or 0)


@dataclass(frozen=True, slots=True)
class RepoStatus:
    """A worktree's state relative to its base, as one consistent read."""

    head_oid: str | None
    branch: str | None
    expected_branch: str
    base_ref: str
    ahead: int
    behind: int
    staged: int
    unstaged: int
    untracked: int
    conflicted: tuple[str, ...]
    in_progress: str | None
    files: tuple[FileChange, ...]

    @property
    def branch_mismatch(self) -> bool:
        """The worktree is not on its workspace branch (a detached HEAD counts)."""
        return self.branch != self.expected_branch

    @property
    def clean(self) -> bool:
        """Nothing staged, unstaged, untracked or conflicted."""
        return not (self.staged or self.unstaged or self.untracked or self.conflicted)


@dataclass(frozen=True, slots=True)
class _Porcelain:
    head_oid: str | None
    branch: str | None
    staged: int
    unstaged: int
    untracked: tuple[str, ...]
    conflicted: tuple[str, ...]


def repo_status(worktree: Path, *, base_ref: str, expected_branch: str) -> RepoStatus:
    """Branch, counts, ahead/behind vs ``base_ref``, in-progress operation and changed files."""
    porcelain = _porcelain(worktree)
    base_oid = _resolve(worktree, base_ref)
    ahead = behind = 0
    if porcelain.head_oid is not None:
        out = run_git(worktree, "rev-list", "--left-right", "--count", f"{base_oid}...HEAD").text
        left, right = out.split()
        behind, ahead = int(left), int(right)
    files = _changed_files(worktree, _fork_point(worktree, base_oid), set(porcelain.untracked))
    return RepoStatus(
        head_oid=porcelain.head_oid,
        branch=porcelain.branch,
        expected_branch=expected_branch,
        base_ref=base_ref,
        ahead=ahead,
        behind=behind,
        staged=porcelain.staged,
        unstaged=porcelain.unstaged,
        untracked=len(porcelain.untracked),
        conflicted=porcelain.conflicted,
        in_progress=in_progress(worktree),
        files=files,
    )


def unified_diff(worktree: Path, *, base_ref: str, paths: Sequence[str] = ()) -> bytes:
    """The patch from merge-base(base_ref, HEAD) to the working tree, untracked files included.

    The real index is never touched: untracked files are marked intent-to-add in a copy of it.
    Binary files appear as "Binary files … differ", never as content.
    """
    fork = _fork_point(worktree, _resolve(worktree, base_ref))
    with _scratch_index(worktree) as env:
        return run_git(
            worktree,
            "diff",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            fork,
            "--",
            *paths,
            env=env,
        ).stdout


def in_progress(worktree: Path) -> str | None:
    """The operation waiting for the user in this worktree, if any."""
    git_dir = Path(run_git(worktree, "rev-parse", "--absolute-git-dir").text.strip())
    for marker, name in _IN_PROGRESS:
        if (git_dir / marker).exists():
            return name
    return None


def current_branch(worktree: Path) -> str | None:
    """The checked-out branch's short name, or None for a detached HEAD."""
    ref = run_git(worktree, "symbolic-ref", "-q", "HEAD", check=False).text.strip()
    return ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None


def _porcelain(worktree: Path) -> _Porcelain:
    out = run_git(
        worktree, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"
    ).stdout
    head_oid: str | None = None
    branch: str | None = None
    staged = unstaged = 0
    untracked: list[str] = []
    conflicted: list[str] = []
    records = iter(out.split(b"\0"))
    for raw in records:
        if not raw:
            continue
        kind = raw[:1]
        if raw.startswith(b"# branch.oid "):
            value = raw[len(b"# branch.oid ") :].decode()
            head_oid = None if value == "(initial)" else value
        elif raw.startswith(b"# branch.head "):
            value = raw[len(b"# branch.head ") :].decode("utf-8", "replace")
            branch = None if value == "(detached)" else value
        elif kind in (b"1", b"2"):
            xy = raw[2:4]
            staged += xy[:1] != b"."
            unstaged += xy[1:2] != b"."
            if kind == b"2":
                next(records, None)  # a rename's original path follows in its own field
        elif kind == b"u":
            conflicted.append(os.fsdecode(raw.split(b" ", 10)[10]))
        elif kind == b"?":
            untracked.append(os.fsdecode(raw[2:]))
    return _Porcelain(head_oid, branch, staged, unstaged, tuple(untracked), tuple(conflicted))


def _resolve(worktree: Path, ref: str) -> str:
    res = run_git(
        worktree,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{ref}^{{commit}}",
        check=False,
    )
    if res.returncode != 0:
        raise GitOpError(f"base ref {ref!r} not found in {worktree}")
    return res.text.strip()


def _fork_point(worktree: Path, base_oid: str) -> str:
    """merge-base(base, HEAD); the base itself when HEAD is unborn or shares no history."""
    res = run_git(worktree, "merge-base", base_oid, "HEAD", check=False)
    return res.text.strip() if res.returncode == 0 and res.text.strip() else base_oid


@contextmanager
def _scratch_index(worktree: Path) -> Iterator[dict[str, str]]:
    """An environment whose GIT_INDEX_FILE is a private copy of the index, untracked files
    marked intent-to-add, so diffs see them without a byte of the user's index changing."""
    real = Path(
        run_git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "index").text.strip()
    )
    with tempfile.TemporaryDirectory(prefix="kanban-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if real.is_file():
            shutil.copyfile(real, env["GIT_INDEX_FILE"])
        else:
            run_git(worktree, "read-tree", "HEAD", env=env, check=False)
        run_git(worktree, "add", "--all", "--intent-to-add", "--", ".", env=env)
        yield env


def _changed_files(worktree: Path, fork: str, untracked: set[str]) -> tuple[FileChange, ...]:
    with _scratch_index(worktree) as env:
        out = run_git(
            worktree,
            "diff",
            "--raw",
            "--numstat",
            "-z",
            "-M",
            "--no-ext-diff",
            "--no-textconv",
            fork,
            env=env,
        ).stdout
    fields = [os.fsdecode(f) for f in out.split(b"\0")]
    raw: dict[str, tuple[str, str | None, bool]] = {}  # new path -> (change, old path, mode)
    i = 0
    while i < len(fields) and fields[i].startswith(":"):
        old_mode, new_mode, _, _, status = fields[i][1:].split(" ")
        change = "M" if status[:1] == "U" else status[:1]  # conflicts are listed separately
        if change in ("R", "C"):
            old, path, i = fields[i + 1], fields[i + 2], i + 3
        else:
            old, path, i = None, fields[i + 1], i + 2
        mode = old_mode != new_mode and "000000" not in (old_mode, new_mode)
        raw[path] = ("A" if change == "C" else change, old if change == "R" else None, mode)
    files: list[FileChange] = []
    while i < len(fields) and fields[i]:
        adds, dels, path = fields[i].split("\t", 2)
        i += 1
        if not path:  # -z rename form: "adds\tdels\t\0old\0new\0"
            path, i = fields[i + 1], i + 2
        change, old_path, mode = raw.get(path, ("M", None, False))
        binary = adds == "-"
        added, deleted = (None, None) if binary else (int(adds), int(dels))
        if change == "A" and path in untracked:
            change = "?"
        elif change == "M" and mode and not binary and added == deleted == 0:
            change = "T"  # only the mode changed
        files.append(FileChange(path, old_path, change, added, deleted, binary, mode))
    files.sort(key=lambda f: (-f.churn, f.path))
    return tuple(files)
