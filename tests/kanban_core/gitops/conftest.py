"""Real git repositories for the gitops tests: repo → bare remote → linked worktree."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

BRANCH = "kanban/42-fix-login"


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """The test's own plain git call (not the code under test)."""
    out = subprocess.run(
        ["git", "-C", str(cwd), *args], check=check, capture_output=True, text=True
    )
    return out.stdout.strip()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def commit(cwd: Path, name: str, text: str = "x\n", message: str | None = None) -> str:
    write(cwd / name, text)
    git(cwd, "add", "--", name)
    git(cwd, "commit", "-q", "-m", message or f"add {name}")
    return git(cwd, "rev-parse", "HEAD")


def head(cwd: Path) -> str:
    return git(cwd, "rev-parse", "HEAD")


@dataclass(frozen=True)
class Workspace:
    repo: Path
    remote: Path
    path: Path
    branch: str


@pytest.fixture(autouse=True)
def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Neither the user's git config nor a surrounding hook's environment may leak in,
    # and nothing may reach a proxy: every server in these tests is on 127.0.0.1.
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for who in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{who}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{who}_EMAIL", "test@example.invalid")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def locks_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "locks"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on ``main`` with one commit."""
    path = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(path))
    commit(path, "README.md", "hello\n", "initial commit")
    return path


@pytest.fixture
def remote(tmp_path: Path, repo: Path) -> Path:
    """A bare ``origin`` holding ``main``, with ``origin/HEAD`` set in ``repo``."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main")
    git(repo, "fetch", "-q", "origin")
    git(repo, "remote", "set-head", "origin", "main")
    return bare


@pytest.fixture
def workspace(tmp_path: Path, repo: Path, remote: Path) -> Workspace:
    """A linked worktree of ``repo`` on a new ``kanban/…`` branch forked from ``main``."""
    path = tmp_path / "worktrees" / "ws-42"
    git(repo, "worktree", "add", "-q", "-b", BRANCH, str(path), "main")
    return Workspace(repo=repo, remote=remote, path=path, branch=BRANCH)


@pytest.fixture
def wt(workspace: Workspace) -> Path:
    """Just the worktree's path."""
    return workspace.path


@pytest.fixture
def other_clone(tmp_path: Path, remote: Path) -> Path:
    """Someone else's clone of the remote, to push ahead of us."""
    path = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(remote), str(path))
    return path


class _Unauthorized(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="fake"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unauthorized_url() -> Iterator[str]:
    """An HTTP git remote on 127.0.0.1 that answers every request with 401."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unauthorized)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/o/r.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
