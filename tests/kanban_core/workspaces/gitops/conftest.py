"""Real git repositories for the gitops tests: repo → bare remote → linked worktree."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.gitrepos import (
    bare_origin,
    git,
    isolated_git as isolated_git,  # autouse: every test here gets an isolated git
    make_repo,
)

BRANCH = "kanban/42-fix-login"


@dataclass(frozen=True)
class Workspace:
    repo: Path
    remote: Path
    path: Path
    branch: str


@pytest.fixture
def locks_dir(tmp_path: Path) -> Path:
    return tmp_path / "home" / "locks"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository on ``main`` with one commit."""
    return make_repo(tmp_path, "repo", "hello\n", "initial commit")


@pytest.fixture
def remote(tmp_path: Path, repo: Path) -> Path:
    """A bare ``origin`` holding ``main``, with ``origin/HEAD`` set in ``repo``."""
    return bare_origin(repo, tmp_path / "remote.git")


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
