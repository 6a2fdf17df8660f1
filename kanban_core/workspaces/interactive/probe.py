"""Phase 0 checks of one source checkout (D-06, F-01..F-07, F-27): read-only, problems collected."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.gitops.runner import GitOpError, run_git
from kanban_core.workspaces.interactive.checkouts import plural, status_counts
from kanban_core.workspaces.interactive.layout import SLUG_RE, check_repo_outside

_SUGGESTED = 5


@dataclass(frozen=True, slots=True)
class SourceProbe:
    """What Phase 0 learnt about one source checkout (base fields are '' when unresolved)."""

    slug: str
    top: Path
    common: Path
    base_ref: str
    base_oid: str


def probe_source(
    slug: str, source: Path, base: str | None, root: Path
) -> tuple[SourceProbe | None, list[str], list[str]]:
    """(probe or None when the repo cannot even be located, problems, warnings)."""
    if not SLUG_RE.fullmatch(slug) or slug in (".", ".."):
        return None, [f"invalid repo slug {slug[:80]!r}"], []
    try:
        top, common, git_dir = _locate(source)
    except GitOpError as exc:
        return None, [f"{source}: {exc}"], []
    except WorkspaceError as exc:
        return None, [str(exc)], []
    problems: list[str] = []
    main = common.parent if common.name == ".git" else common
    for tree in dict.fromkeys((top, main)):
        try:
            check_repo_outside(root, tree)
        except WorkspaceError as exc:
            problems.append(str(exc))
    if not _commit_of(top, "HEAD"):
        # Never make the commit for the user (F-06).
        return None, [*problems, f"{top} has no commits; create an initial commit first"], []
    if (git_dir / "index.lock").exists():
        # Never delete it: a live git (or an IDE) may hold it (F-27).
        problems.append(f"another git process is running in {top} (index.lock)")
    base_ref = base_oid = ""
    try:
        base_ref, base_oid = _resolve_base(top, base)
    except WorkspaceError as exc:
        problems.append(str(exc))
    tracked, untracked = status_counts(top, untracked="normal")
    warnings = []
    if tracked + untracked:
        # Never stash, reset or commit in the user's checkout (F-01): only say so.
        warnings.append(
            f"your checkout of {slug} has {plural(tracked + untracked, 'uncommitted change')}; "
            "they are NOT in the workspace"
        )
    return SourceProbe(slug, top, common, base_ref, base_oid), problems, warnings


def _locate(source: Path) -> tuple[Path, Path, Path]:
    """(top of the checkout, common git dir, this checkout's git dir), all resolved."""
    if not source.is_absolute():
        raise WorkspaceError(f"repository path must be absolute, got {str(source)!r}")
    if not source.exists():
        raise WorkspaceError(f"{source} does not exist")
    if not source.is_dir():
        raise WorkspaceError(f"{source} is not a directory")
    kind = run_git(
        source, "rev-parse", "--is-bare-repository", "--is-inside-work-tree", check=False
    )
    if kind.returncode != 0:
        # Never `git init` it: a non-repo is the user's mistake to fix (F-04).
        raise WorkspaceError(f"{source} is not a git repository")
    bare, in_tree = [*kind.text.splitlines(), "", ""][:2]
    if bare == "true":
        raise WorkspaceError(f"{source} is a bare repository; name a checkout of it")
    if in_tree != "true":
        raise WorkspaceError(f"{source} is inside a git directory, not a checkout")
    out = run_git(
        source,
        *("rev-parse", "--path-format=absolute", "--show-toplevel", "--git-common-dir"),
        "--absolute-git-dir",
    ).text.splitlines()
    top, common, git_dir = (Path(os.path.realpath(p)) for p in out[:3])
    if top != Path(os.path.realpath(source)):
        raise WorkspaceError(f"{source} is not the top of its checkout (that is {top})")
    return top, common, git_dir


def _resolve_base(top: Path, base: str | None) -> tuple[str, str]:
    """(ref, oid) to branch from: the named base, else origin/HEAD's branch, else main/master."""
    if base is not None:
        if not base.strip() or base.startswith("-") or any(ord(c) < 32 for c in base):
            raise WorkspaceError(f"invalid base {base[:80]!r}")
        oid = _commit_of(top, base)
        if not oid:
            raise WorkspaceError(f"base {base!r} does not resolve to a commit{_suggest(top)}")
        # base cannot start with '-' (checked above), so it is never read as an option.
        full = run_git(top, "rev-parse", "--symbolic-full-name", base, check=False)
        return full.text.strip() or base, oid
    origin = run_git(top, "symbolic-ref", "--quiet", "refs/remotes/origin/HEAD", check=False)
    for ref in (origin.text.strip(), "refs/heads/main", "refs/heads/master"):
        if ref and (oid := _commit_of(top, ref)):
            return ref, oid
    # Never fall back silently to HEAD (F-02, F-03).
    raise WorkspaceError(
        f"no origin/HEAD, main or master to start from; name a base{_suggest(top)}"
    )


def _commit_of(cwd: Path, rev: str) -> str:
    result = run_git(
        cwd,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{rev}^{{commit}}",
        check=False,
    )
    return result.text.strip() if result.returncode == 0 else ""


def _suggest(top: Path) -> str:
    """'; try a, b' with the default branch and the most recently used ones."""
    out = run_git(
        top, "for-each-ref", "--sort=-committerdate", "--format=%(refname)", "refs/heads",
        "refs/remotes",
    ).text.splitlines()  # fmt: skip
    names: list[str] = []
    for ref in out:
        short = ref.removeprefix("refs/heads/").removeprefix("refs/remotes/")
        if not short.endswith("/HEAD") and short not in names:
            names.append(short)
    shown = names[:_SUGGESTED]
    return f"; try {', '.join(shown)}" if shown else ""
