"""Commit headers and messages, and commit_all on real worktrees with real hooks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from kanban_core.workspaces.gitops.commits import (
    SPIRIT_HEADER_RE,
    CommitRefused,
    HookFailed,
    NothingToCommit,
    commit_all,
    commit_header,
    commit_message,
    default_scope,
)
from kanban_core.workspaces.gitops.runner import GitOpError
from kanban_core.workspaces.gitops.status import FileChange
from tests.gitrepos import commit, git, head, write
from tests.kanban_core.workspaces.gitops.conftest import BRANCH, Workspace

MESSAGE = "spirit(auth): add login\n\nBody line\n# not a comment\n\nTask: t42\n"


def hook(repo: Path, name: str, script: str) -> Path:
    path = write(repo / ".git" / "hooks" / name, f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


@pytest.mark.parametrize(
    "header",
    [
        "spirit(auth): add login",
        "spirit(a/b.c_d-e): x",
        "spirit(" + "a" * 24 + "): y",
        "spirit(auth): " + "x" * 58,  # exactly 72
    ],
)
def test_valid_headers(header: str) -> None:
    assert SPIRIT_HEADER_RE.match(header)


@pytest.mark.parametrize(
    "header",
    [
        "spirit(Auth): add",
        "spirit(): add",
        "spirit(auth):  add",
        "spirit(auth): ",
        "feat(auth): add",
        "spirit(" + "a" * 25 + "): y",
        "spirit(auth): " + "x" * 59,  # 73
        "spirit(auth): add\nmore",
    ],
)
def test_invalid_headers(header: str) -> None:
    assert not SPIRIT_HEADER_RE.match(header)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("Auth Module!", "auth-module"),
        ("", "repo"),
        ("!!!", "repo"),
        ("web/API", "web/api"),
        ("x" * 40, "x" * 24),
        ("ümlaut", "mlaut"),
    ],
)
def test_scope_is_sanitized(scope: str, expected: str) -> None:
    assert commit_header(scope, "do it") == f"spirit({expected}): do it"


def test_description_is_one_clean_line_without_trailing_period() -> None:
    header = commit_header("auth", "Add login\nand\tlogout\x07 flows\u202e...")
    assert header == "spirit(auth): Add login and logout flows"


def test_chat_mentions_are_neutralised_but_emails_kept() -> None:
    header = commit_header("x", "ping @alice <@123> <!here> <@&99> @everyone via a@b.io")
    assert header == "spirit(x): ping alice 123 here 99 everyone via a@b.io"


def test_a_long_description_is_cut_at_a_word_boundary() -> None:
    header = commit_header("auth", "implement the login flow with tokens " * 4)
    assert len(header) <= 72
    assert SPIRIT_HEADER_RE.match(header)
    assert header == "spirit(auth): implement the login flow with tokens implement the login"


def test_one_huge_word_is_cut_hard() -> None:
    header = commit_header("a", "x" * 200)
    assert header == "spirit(a): " + "x" * 61


def test_an_empty_description_is_an_error() -> None:
    with pytest.raises(GitOpError, match="empty"):
        commit_header("a", " . \n ")


@given(scope=st.text(max_size=40), description=st.text(min_size=1, max_size=200))
def test_every_header_made_is_valid(scope: str, description: str) -> None:
    try:
        header = commit_header(scope, description)
    except GitOpError:
        return  # nothing printable was left
    assert SPIRIT_HEADER_RE.match(header), header


def test_default_scope_is_the_busiest_top_level_dir() -> None:
    files = [
        FileChange("src/a.py", None, "M", 50, 50),
        FileChange("tests/t.py", None, "M", 10, 0),
        FileChange("tests/u.py", None, "M", 10, 0),
        FileChange("README.md", None, "M", 500, 0),
    ]
    assert default_scope("api", files) == "src"


def test_default_scope_falls_back_to_the_repo_slug() -> None:
    assert default_scope("My Repo", [FileChange("README.md", None, "M", 1, 0)]) == "my-repo"
    assert default_scope("api", []) == "api"


def test_commit_message_layout() -> None:
    msg = commit_message(
        "spirit(auth): add login",
        "Body line\r\n# not a comment\n",
        [("Task", "t42"), ("Requested-by", "telegram:1\nInjected: yes")],
    )
    assert msg == (
        "spirit(auth): add login\n\nBody line\n# not a comment\n\n"
        "Task: t42\nRequested-by: telegram:1 Injected: yes\n"
    )
    assert commit_message("spirit(a): b", None, []) == "spirit(a): b\n"


@pytest.mark.parametrize(
    ("header", "trailers"),
    [
        ("not a spirit header", []),
        ("spirit(a): b", [("Bad Key", "v")]),
        ("spirit(a): b", [("Task", "  ")]),
    ],
)
def test_commit_message_refuses_bad_parts(header: str, trailers: list[tuple[str, str]]) -> None:
    with pytest.raises(GitOpError):
        commit_message(header, None, trailers)


def test_commit_all_commits_every_change_in_the_worktree_only(
    workspace: Workspace, locks_dir: Path
) -> None:
    wt = workspace.path
    commit(wt, "gone.txt", "bye\n")
    (wt / "gone.txt").unlink()
    write(wt / "README.md", "changed\n")
    write(wt / "ümlaut file.txt", "new\n")
    write(workspace.repo / "main-only.txt", "not ours\n")
    result = commit_all(wt, MESSAGE, locks_dir=locks_dir)
    assert result.oid == head(wt)
    assert (result.files, result.identity_fallback) == (3, False)
    assert git(wt, "log", "-1", "--format=%B") == MESSAGE.strip()
    assert git(wt, "status", "--porcelain") == ""
    assert git(workspace.repo, "status", "--porcelain") == "?? main-only.txt"
    names = git(wt, "-c", "core.quotepath=false", "show", "--name-only", "--format=", "HEAD")
    assert sorted(names.splitlines()) == ["README.md", "gone.txt", "ümlaut file.txt"]


def test_commit_all_can_leave_paths_out(wt: Path, locks_dir: Path) -> None:
    write(wt / "keep.txt", "k\n")
    write(wt / "node_modules", "provisioned link stand-in\n")
    commit_all(wt, MESSAGE, locks_dir=locks_dir, exclude=["node_modules"])
    assert git(wt, "show", "--name-only", "--format=", "HEAD") == "keep.txt"
    assert git(wt, "status", "--porcelain") == "?? node_modules"


def test_nothing_to_commit_makes_no_commit(wt: Path, locks_dir: Path) -> None:
    before = head(wt)
    with pytest.raises(NothingToCommit, match="nothing to commit"):
        commit_all(wt, MESSAGE, locks_dir=locks_dir)
    assert head(wt) == before


def test_a_failing_pre_commit_hook_is_reported_and_not_bypassed(
    workspace: Workspace, locks_dir: Path
) -> None:
    runs = workspace.repo.parent / "hook-runs"
    hook(
        workspace.repo,
        "pre-commit",
        f'echo run >> "{runs}"\necho "\\033[31mlint: src/x.py:1 bad\\033[0m"\n'
        'echo "second line" >&2\nexit 1',
    )
    write(workspace.path / "x.txt", "x\n")
    before = head(workspace.path)
    with pytest.raises(HookFailed) as err:
        commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)
    assert str(err.value) == "pre-commit hook failed: lint: src/x.py:1 bad | second line"
    assert err.value.output == "lint: src/x.py:1 bad\nsecond line"
    assert head(workspace.path) == before
    assert runs.read_text() == "run\n"  # once: no --no-verify retry


def test_a_failing_commit_msg_hook_is_reported(workspace: Workspace, locks_dir: Path) -> None:
    hook(workspace.repo, "commit-msg", 'echo "message rejected: $(head -1 "$1")"; exit 1')
    write(workspace.path / "x.txt", "x\n")
    with pytest.raises(HookFailed, match=r"^commit-msg hook failed: message rejected: spirit"):
        commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)


def test_a_passing_hook_runs_and_the_commit_is_made(workspace: Workspace, locks_dir: Path) -> None:
    runs = workspace.repo.parent / "hook-runs"
    hook(workspace.repo, "pre-commit", f'echo ok >> "{runs}"')
    write(workspace.path / "x.txt", "x\n")
    commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)
    assert runs.read_text() == "ok\n"


def test_commit_all_holds_the_repository_lock(workspace: Workspace, locks_dir: Path) -> None:
    common = (workspace.repo / ".git").resolve()
    key = hashlib.sha1(str(common).encode(), usedforsecurity=False).hexdigest()
    lock = locks_dir / f"{key}.lock"
    seen = workspace.repo.parent / "flock-rc"
    hook(workspace.repo, "pre-commit", f'flock -n "{lock}" true; echo $? > "{seen}"')
    write(workspace.path / "x.txt", "x\n")
    commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)
    assert seen.read_text().strip() == "1"  # the lock was held while the hook ran


def test_identity_is_supplied_per_command_only_when_missing(
    wt: Path, locks_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(var)
    write(wt / "x.txt", "x\n")
    with pytest.raises(GitOpError):
        commit_all(wt, MESSAGE, locks_dir=locks_dir)
    result = commit_all(
        wt, MESSAGE, locks_dir=locks_dir, author=("Kanban Bot", "bot@kanban.invalid")
    )
    assert result.identity_fallback
    assert (
        git(wt, "log", "-1", "--format=%an <%ae>|%cn")
        == "Kanban Bot <bot@kanban.invalid>|Kanban Bot"
    )
    assert git(wt, "config", "--get", "user.name", check=False) == ""
    git(wt, "config", "user.name", "Real User")
    git(wt, "config", "user.email", "real@example.invalid")
    write(wt / "y.txt", "y\n")
    again = commit_all(wt, MESSAGE, locks_dir=locks_dir, author=("Kanban Bot", "bot@x"))
    assert not again.identity_fallback
    assert git(wt, "log", "-1", "--format=%an") == "Real User"


def test_commit_refuses_during_a_rebase(workspace: Workspace, locks_dir: Path) -> None:
    commit(workspace.path, "c.txt", "ours\n")
    commit(workspace.repo, "c.txt", "theirs\n")
    git(workspace.path, "rebase", "main", check=False)
    with pytest.raises(CommitRefused, match="rebase in progress") as err:
        commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)
    assert err.value.kind == "in_progress"
    assert "<<<<<<<" in (workspace.path / "c.txt").read_text()
    assert git(workspace.path, "ls-files", "--unmerged")  # still unmerged: nothing was added


def test_commit_refuses_off_the_expected_branch(wt: Path, locks_dir: Path) -> None:
    write(wt / "x.txt", "x\n")
    git(wt, "switch", "-q", "-c", "side")
    with pytest.raises(CommitRefused, match="on side, not on kanban/42") as err:
        commit_all(wt, MESSAGE, locks_dir=locks_dir, branch=BRANCH)
    assert err.value.kind == "wrong_branch"
    git(wt, "switch", "-q", "--detach")
    with pytest.raises(CommitRefused, match="detached"):
        commit_all(wt, MESSAGE, locks_dir=locks_dir, branch=BRANCH)
    assert git(wt, "status", "--porcelain") == "?? x.txt"  # nothing was staged


def test_a_merge_conflict_is_not_committed_with_its_markers(
    workspace: Workspace, locks_dir: Path
) -> None:
    commit(workspace.path, "c.txt", "ours\n")
    commit(workspace.repo, "c.txt", "theirs\n")
    git(workspace.path, "merge", "main", check=False)
    (Path(git(workspace.path, "rev-parse", "--absolute-git-dir")) / "MERGE_HEAD").unlink()
    before = head(workspace.path)
    with pytest.raises(CommitRefused) as err:
        commit_all(workspace.path, MESSAGE, locks_dir=locks_dir)
    assert err.value.kind == "conflicts"
    assert head(workspace.path) == before
