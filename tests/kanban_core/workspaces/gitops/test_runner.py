"""workspaces.gitops.runner: the hardened environment, error lines and repository locks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from kanban_core.workspaces.gitops.runner import (
    GitOpError,
    common_dir,
    first_error,
    git_env,
    repo_lock,
    repo_locks,
    run_git,
)


def test_credentials_in_urls_never_reach_the_error_line():
    stderr = "fatal: unable to access 'https://bob:ghp_abc123@github.com/o/r.git/': 403\n"
    line = first_error(stderr)
    assert "ghp_abc123" not in line
    assert "bob" not in line
    assert "https://github.com/o/r.git/" in line


def test_the_fatal_line_is_preferred_over_hints():
    assert first_error("hint: try this\nfatal: not a git repository\nhint: x") == (
        "fatal: not a git repository"
    )
    assert first_error("") == "no error output"


def test_the_environment_points_git_at_nothing_but_the_named_repo(monkeypatch):
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_WORK_TREE", "/elsewhere")
    monkeypatch.setenv("GIT_TRACE", "1")
    env = git_env()
    assert "GIT_DIR" not in env
    assert "GIT_WORK_TREE" not in env
    assert "GIT_TRACE" not in env
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["LC_ALL"] == "C"


def test_a_failing_command_raises_one_line_and_check_false_returns_the_code(tmp_path: Path):
    with pytest.raises(GitOpError, match="not a git repository"):
        run_git(tmp_path, "status")
    result = run_git(tmp_path, "status", check=False)
    assert result.returncode != 0


def test_a_repo_and_its_worktrees_share_one_common_dir(tmp_path: Path):
    repo = tmp_path / "repo"
    run_git(tmp_path, "init", "-q", "-b", "main", str(repo))
    run_git(repo, "-c", "user.name=t", "-c", "user.email=t@x", "commit", "-q",
            "--allow-empty", "-m", "init")  # fmt: skip
    run_git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    assert common_dir(repo) == common_dir(tmp_path / "wt") == (repo / ".git").resolve()


def test_the_repo_lock_excludes_a_second_holder_until_released(tmp_path: Path):
    common = tmp_path / "repo.git"
    locks = tmp_path / "locks"
    inside = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with repo_lock(common, locks):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    thread = threading.Thread(target=holder)
    thread.start()
    assert inside.wait(10)
    waiter = threading.Thread(target=lambda: _take(common, locks, order))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive()  # still waiting for the lock
    release.set()
    thread.join(10)
    waiter.join(10)
    assert order == ["first in", "first out", "second in"]


def _take(common: Path, locks: Path, order: list[str]) -> None:
    with repo_locks([common, common.parent / "other.git"], locks):
        order.append("second in")
