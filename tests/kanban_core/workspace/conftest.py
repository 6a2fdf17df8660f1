"""Real git repositories for the workspace tests: api (with a bare origin), web, a managed root."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from kanban_core.workspace.layout import managed_root

WS = "ws-1700000000-4f2a9c"
WS2 = "ws-1700000001-b00b1e"

Entries = list[tuple[str, dict[str, object]]]


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """The test's own plain git call (not the code under test)."""
    out = subprocess.run(
        ["git", "-C", str(cwd), *args], check=check, capture_output=True, text=True
    )
    return out.stdout.strip()


def commit(cwd: Path, name: str, text: str = "x\n") -> str:
    path = cwd / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    git(cwd, "add", "--", name)
    git(cwd, "commit", "-q", "-m", f"add {name}")
    return git(cwd, "rev-parse", "HEAD")


def branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").splitlines()


def worktree_list(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


def make_repo(parent: Path, name: str, *, initial: bool = True, branch: str = "main") -> Path:
    path = parent / name
    git(parent, "init", "-q", "-b", branch, str(path))
    if initial:
        commit(path, "README.md", f"{name}\n")
    return path


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither the user's git config nor a surrounding hook's environment may leak in.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.invalid")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("KANBAN_DISABLE_WORKTREE_CLEANUP", raising=False)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """The directory holding the user's checkouts (outside the managed root)."""
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def api(repos: Path) -> Path:
    """A checkout on ``main`` with one commit and no remote."""
    return make_repo(repos, "api")


@pytest.fixture
def origin(tmp_path: Path, api: Path) -> Path:
    """A bare ``origin`` of api holding ``main``, with ``origin/HEAD`` set in api."""
    bare = tmp_path / "remotes" / "api.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(api, "remote", "add", "origin", str(bare))
    git(api, "push", "-q", "origin", "main")
    git(api, "fetch", "-q", "origin")
    git(api, "remote", "set-head", "origin", "main")
    return bare


@pytest.fixture
def web(repos: Path) -> Path:
    """A second, unrelated checkout on ``main``."""
    return make_repo(repos, "web")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path, home: Path) -> Path:
    """The managed root, as the gateway resolves it from a configured data dir."""
    data = tmp_path / "data"
    data.mkdir()
    return managed_root(data, home)


@pytest.fixture
def locks(home: Path) -> Path:
    return home / "locks"


class Journal:
    """Records creation journal entries, as the store would persist them."""

    def __init__(self, hook: Callable[[str, Mapping[str, object]], None] | None = None) -> None:
        self.entries: Entries = []
        self.hook = hook

    def __call__(self, kind: str, payload: Mapping[str, object]) -> None:
        self.entries.append((kind, dict(payload)))
        if self.hook is not None:
            self.hook(kind, payload)

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]


@pytest.fixture
def journal() -> Journal:
    return Journal()
