"""Commit a worktree's changes with a ``spirit(scope): description`` header; hooks always run."""

from __future__ import annotations

import os
import re
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.gitops.runner import (
    GitOpError,
    common_dir,
    first_error,
    repo_lock,
    run_git,
)
from kanban_core.workspaces.gitops.secrets import clean_display
from kanban_core.workspaces.gitops.status import FileChange, current_branch, in_progress

HEADER_MAX = 72
SCOPE_MAX = 24
SPIRIT_HEADER_RE: re.Pattern[str] = re.compile(
    rf"^(?=.{{1,{HEADER_MAX}}}$)spirit\([a-z0-9._/-]{{1,{SCOPE_MAX}}}\): \S.*$"
)
# Pre-commit hooks run linters and test suites; give them longer than a plain local command.
HOOK_TIMEOUT_S = 600.0
_HOOKS = ("pre-commit", "prepare-commit-msg", "commit-msg")
_HOOK_OUTPUT_CHARS = 3000
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_SCOPE_DROP = re.compile(r"[^a-z0-9._/-]+")
_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,40}$")
# Chat mentions: Slack/Discord <@U123>, <!here>, <#C1>, and a bare @name at a word start.
_WRAPPED_MENTION = re.compile(r"<[@!#][&!]?([^<>\s]*)>")
_BARE_MENTION = re.compile(r"(?<![\w.@])@+(?=[\w.-])")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class NothingToCommit(GitOpError):
    """The worktree has no changes; no commit was made."""


class HookFailed(GitOpError):
    """A commit hook refused the commit; ``output`` holds what it printed (shortened)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


class CommitRefused(GitOpError):
    """Not committed: ``kind`` is 'in_progress', 'conflicts' or 'wrong_branch'."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The commit made: its oid, how many files it touched, and whether we supplied the
    identity because the repository had none (the reply should say so)."""

    oid: str
    files: int
    identity_fallback: bool = False


def sanitize_scope(scope: str) -> str:
    """Lowercase ``[a-z0-9._/-]``, at most 24 characters; ``repo`` when nothing is left."""
    cleaned = _SCOPE_DROP.sub("-", scope.strip().lower())
    cleaned = re.sub(r"-{2,}", "-", cleaned)[:SCOPE_MAX].strip("-./")
    return cleaned or "repo"


def commit_header(scope: str, description: str) -> str:
    """``spirit(<scope>): <description>``: one line, no mentions, no trailing period, ≤72."""
    prefix = f"spirit({sanitize_scope(scope)}): "
    text = _WRAPPED_MENTION.sub(r"\1", clean_display(" ".join(description.split())))
    text = " ".join(_BARE_MENTION.sub("", text).split()).rstrip(" .")
    if not text:
        raise GitOpError("commit description is empty")
    room = HEADER_MAX - len(prefix)
    if len(text) > room:
        cut = text[: room + 1].rsplit(" ", 1)[0] if " " in text[: room + 1] else text[:room]
        text = cut[:room].rstrip(" .,;:-")
    return prefix + text


def default_scope(repo_slug: str, files: Sequence[FileChange]) -> str:
    """The top-level directory with the most churn (then the most files), else the repo slug."""
    churn: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for f in files:
        if "/" in f.path:
            top = f.path.split("/", 1)[0]
            churn[top] += f.churn
            count[top] += 1
    if not count:
        return sanitize_scope(repo_slug)
    return sanitize_scope(min(count, key=lambda d: (-churn[d], -count[d], d)))


def commit_message(header: str, body: str | None, trailers: Sequence[tuple[str, str]]) -> str:
    """Header, optional body, trailers; validates the header and each trailer."""
    if not SPIRIT_HEADER_RE.match(header):
        raise GitOpError(f"not a spirit(scope): header of at most {HEADER_MAX} characters")
    parts = [header]
    if body and body.strip():
        lines = [_strip_controls(line).rstrip() for line in body.strip().splitlines()]
        parts.append("\n".join(lines))
    rendered = []
    for key, value in trailers:
        if not _TRAILER_KEY.match(key):
            raise GitOpError(f"invalid trailer key {key!r}")
        one_line = clean_display(" ".join(value.split()))
        if not one_line:
            raise GitOpError(f"trailer {key} has an empty value")
        rendered.append(f"{key}: {one_line}")
    if rendered:
        parts.append("\n".join(rendered))
    return "\n\n".join(parts) + "\n"


def commit_all(
    worktree: Path,
    message: str,
    *,
    locks_dir: Path,
    author: tuple[str, str] | None = None,
    exclude: Sequence[str] = (),
    branch: str | None = None,
) -> CommitResult:
    """Stage everything in the worktree (minus ``exclude`` paths) and commit, hooks included.

    ``author`` (name, email) is used only when the repository has no identity configured, and
    then only for this command (``-c user.*``), never written to config. With ``branch``, the
    worktree must be on it. On a hook failure the changes stay staged and no commit exists;
    nothing is retried with ``--no-verify``.
    """
    with repo_lock(common_dir(worktree), locks_dir):
        op = in_progress(worktree)
        if op:
            raise CommitRefused(f"{op} in progress — /abort or resolve first", "in_progress")
        current = current_branch(worktree)
        if branch is not None and current != branch:
            where = f"on {current}" if current else "detached"
            raise CommitRefused(f"the worktree is {where}, not on {branch}", "wrong_branch")
        unmerged = run_git(worktree, "ls-files", "--unmerged", "-z").stdout
        if unmerged:
            raise CommitRefused("conflicted files — resolve them before committing", "conflicts")
        pathspec = [".", *(f":(exclude,literal){p}" for p in exclude)]
        run_git(worktree, "add", "--all", "--", *pathspec)
        head = run_git(worktree, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
        against = head.text.strip() if head.returncode == 0 else _EMPTY_TREE
        staged = run_git(
            worktree, "diff", "--cached", "--name-only", "--no-renames", "-z", against
        ).stdout
        files = len([p for p in staged.split(b"\0") if p])
        if not files:
            raise NothingToCommit("nothing to commit")
        identity = _identity_args(worktree, author)
        with tempfile.TemporaryDirectory(prefix="kanban-msg-") as tmp:
            msg_file = Path(tmp) / "COMMIT_MSG"
            msg_file.write_text(message, encoding="utf-8")
            # whitespace, not the default strip: a body line starting with '#' is content.
            res = run_git(
                worktree,
                *identity,
                "commit",
                "--quiet",
                "--cleanup=whitespace",
                "-F",
                str(msg_file),
                check=False,
                timeout=HOOK_TIMEOUT_S,
            )
        if res.returncode != 0:
            raise _commit_failure(worktree, res.stderr + res.text)
        oid = run_git(worktree, "rev-parse", "HEAD").text.strip()
        return CommitResult(oid=oid, files=files, identity_fallback=bool(identity))


def _identity_args(worktree: Path, author: tuple[str, str] | None) -> list[str]:
    """``-c user.name=… -c user.email=…`` when the repo has no identity and one was given."""
    if author is None:
        return []
    have_name = _config(worktree, "user.name") or all(
        os.environ.get(f"GIT_{who}_NAME") for who in ("AUTHOR", "COMMITTER")
    )
    have_email = (
        _config(worktree, "user.email")
        or all(os.environ.get(f"GIT_{who}_EMAIL") for who in ("AUTHOR", "COMMITTER"))
        or os.environ.get("EMAIL")
    )
    if have_name and have_email:
        return []
    name, email = (
        " ".join(clean_display(v).replace("<", "").replace(">", "").split()) for v in author
    )
    if not name or not email:
        raise GitOpError("commit identity needs a name and an email")
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def _config(worktree: Path, key: str) -> str:
    return run_git(worktree, "config", "--get", key, check=False).text.strip()


def _commit_failure(worktree: Path, output: str) -> GitOpError:
    hooks_dir = Path(
        run_git(worktree, "rev-parse", "--path-format=absolute", "--git-path", "hooks").text.strip()
    )
    present = [h for h in _HOOKS if os.access(hooks_dir / h, os.X_OK)]
    if not present:
        return GitOpError(f"git commit failed in {worktree}: {first_error(output)}")
    text = _strip_controls(output).strip()
    shortened = text if len(text) <= _HOOK_OUTPUT_CHARS else "…" + text[-_HOOK_OUTPUT_CHARS:]
    one_line = " | ".join(line.strip() for line in text.splitlines() if line.strip())
    which = present[0] if len(present) == 1 else "commit"
    summary = one_line[:300] + ("…" if len(one_line) > 300 else "") or "no output"
    return HookFailed(f"{which} hook failed: {summary}", shortened)


def _strip_controls(text: str) -> str:
    text = _ANSI.sub("", text)  # hooks print coloured output
    return "".join(ch for ch in text if ch in "\t\n" or (ch >= " " and ch != "\x7f"))
