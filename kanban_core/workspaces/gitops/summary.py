"""Neutral plain-text summaries of a worktree's changes and patches, bounded for chat."""

from __future__ import annotations

import re

from kanban_core.workspaces.gitops.secrets import clean_display, redact
from kanban_core.workspaces.gitops.status import FileChange, RepoStatus

MINUS = "\u2212"  # a typographic minus lines up with "+" in chat fonts
_PATH_CHARS = 80  # one very long path must not blow a message's budget
_PATH_COLUMN = 40
_CONFLICTS_SHOWN = 5
_BIDI_VISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def status_lines(repo_slug: str, status: RepoStatus, *, top: int = 15) -> list[str]:
    """A header, warnings, the ``top`` files by churn and a fold line (format of D-11)."""
    branch = clean_display(status.branch) if status.branch else "(detached)"
    base = _short_ref(status.base_ref)
    if status.clean:
        state = "clean"
    else:
        state = f"{status.unstaged} modified, {status.untracked} untracked, {status.staged} staged"
    slug = clean_display(repo_slug)
    lines = [f"repo {slug}  {branch} → {base}  ↑{status.ahead} ↓{status.behind}  {state}"]
    lines += _warnings(slug, status)
    shown = status.files[: max(top, 0)]
    width = min(max((len(_path_of(f)) for f in shown), default=0), _PATH_COLUMN)
    lines += [f"  {f.change}  {_path_of(f).ljust(width)}  {_stat_of(f)}".rstrip() for f in shown]
    rest = status.files[len(shown) :]
    if rest:
        added = sum(f.added or 0 for f in rest)
        deleted = sum(f.deleted or 0 for f in rest)
        noun = "file" if len(rest) == 1 else "files"
        lines.append(f"  … {len(rest)} more {noun} (+{added} {MINUS}{deleted})")
    return lines


def diff_budgeted(patch: bytes, *, budget_chars: int) -> tuple[str | None, bool]:
    """The patch as display text when it fits ``budget_chars`` (None when not), and whether
    any secret was redacted. Redaction happens before measuring, so the answer is stable."""
    text = patch.decode("utf-8", errors="replace").replace("\r\n", "\n")
    text, redacted = redact(text)
    # Show bidi controls instead of obeying them, so a reviewer sees what the bytes say.
    text = _BIDI_VISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    text = _CONTROLS.sub("", text)
    return (text if len(text) <= budget_chars else None), redacted > 0


def _warnings(slug: str, status: RepoStatus) -> list[str]:
    out: list[str] = []
    expected = clean_display(status.expected_branch)
    if status.branch is None:
        out.append(f"  ⚠ HEAD is detached (expected {expected})")
    elif status.branch_mismatch:
        out.append(f"  ⚠ on branch {clean_display(status.branch)}, expected {expected}")
    if status.in_progress:
        out.append(f"  ⚠ {status.in_progress} in progress — /abort or resolve")
    if status.conflicted:
        shown = status.conflicted[:_CONFLICTS_SHOWN]
        names = ", ".join(_short_path(clean_display(p)) for p in shown)
        more = len(status.conflicted) - _CONFLICTS_SHOWN
        suffix = f" and {more} more" if more > 0 else ""
        out.append(f"  ⚠ {len(status.conflicted)} conflicted: {names}{suffix}")
    if status.behind:
        out.append(f"  ⚠ behind base by {status.behind} — /rebase {slug}")
    return out


def _path_of(f: FileChange) -> str:
    path = _short_path(clean_display(f.path))
    if f.old_path is not None:
        return f"{_short_path(clean_display(f.old_path))} → {path}"
    return path


def _stat_of(f: FileChange) -> str:
    if f.binary:
        return "(binary)"
    parts = [f"+{f.added}" if f.added else "", f"{MINUS}{f.deleted}" if f.deleted else ""]
    if f.mode_change:
        parts.append("(mode change)")
    return " ".join(p for p in parts if p)


def _short_path(path: str) -> str:
    if len(path) <= _PATH_CHARS:
        return path
    keep = _PATH_CHARS - 1
    return f"{path[: keep // 2]}…{path[-(keep - keep // 2) :]}"


def _short_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/"):
        if ref.startswith(prefix):
            return clean_display(ref[len(prefix) :])
    return clean_display(ref)
