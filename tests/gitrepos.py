"""Shared test doubles: real git repositories, a fake GitHub REST API and a gh shim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

#: The token the fake GitHub accepts (shaped like a real one, so redaction can be checked).
TOKEN = "ghp_" + "S3cr3t" * 6

# --- plain git ------------------------------------------------------------------------------

#: No global or system git config and a fixed identity (also handed to gateway subprocesses).
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}
_LEAKS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "EMAIL")
_PROXIES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apply :data:`GIT_ENV`; drop a surrounding hook's ``GIT_*`` and any proxy (all is local).

    Autouse wherever it is imported (``from tests.gitrepos import isolated_git as isolated_git``
    in a conftest or test module); a fixture may also name it as a parameter.
    """
    for name, value in GIT_ENV.items():
        monkeypatch.setenv(name, value)
    for name in (*_LEAKS, *_PROXIES):
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """The test's own plain git call (not the code under test); stdout, stripped."""
    out = subprocess.run(
        ["git", "-C", str(cwd), *args], check=check, capture_output=True, text=True
    )
    return out.stdout.strip()


def write(path: Path, text: str | bytes) -> Path:
    """Write a file, making its directories."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def commit(cwd: Path, name: str, text: str = "x\n", message: str | None = None) -> str:
    """Write ``name`` and commit just it (``add <name>`` unless told); the new HEAD."""
    write(cwd / name, text)
    git(cwd, "add", "--", name)
    git(cwd, "commit", "-q", "-m", message or f"add {name}")
    return head(cwd)


def head(cwd: Path) -> str:
    return git(cwd, "rev-parse", "HEAD")


def make_repo(
    parent: Path,
    name: str,
    text: str | None = None,
    message: str | None = None,
    *,
    initial: bool = True,
    branch: str = "main",
) -> Path:
    """``git init -b branch parent/name``, then (if ``initial``) commit README.md.

    The README holds ``text``, by default the repository's name and a newline.
    """
    path = parent / name
    git(parent, "init", "-q", "-b", branch, str(path))
    if initial:
        commit(path, "README.md", f"{name}\n" if text is None else text, message)
    return path


def bare_origin(repo: Path, bare: Path, *, upstream: bool = False) -> Path:
    """A bare ``origin`` of ``repo`` holding its ``main``, with ``origin/HEAD`` set.

    ``upstream`` also makes ``main`` track ``origin/main`` (``push -u``).
    """
    git(repo, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", *(["-u"] if upstream else []), "origin", "main")
    git(repo, "fetch", "-q", "origin")
    git(repo, "remote", "set-head", "origin", "main")
    return bare


def branches(repo: Path) -> list[str]:
    """Every local branch, as a full refname."""
    return git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").splitlines()


def worktree_list(repo: Path) -> str:
    return git(repo, "worktree", "list", "--porcelain")


def remote_heads(bare: Path) -> str:
    """Every ref of a (bare) repository with its object id."""
    return git(bare, "for-each-ref", "--format=%(refname) %(objectname)")


# --- the fake GitHub REST API ---------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    url: str
    routes: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGitHub  # set on a per-server subclass

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        self.fake.seen.append(
            Seen(
                self.command,
                parts.path,
                parse_qs(parts.query),
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
            )
        )
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, payload = 401, {"message": "Bad credentials"}
        else:
            status, payload = self.fake.routes.get((self.command, parts.path), (404, {}))
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    """A fake GitHub REST API on 127.0.0.1 (base URL ``…/api/v3``, as on Enterprise)."""

    class Handler(_Handler):
        pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake = FakeGitHub(url=f"http://127.0.0.1:{server.server_address[1]}/api/v3")
    Handler.fake = fake
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# --- the gh shim ----------------------------------------------------------------------------

SHIM = """\
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
args = sys.argv[1:]
names = ("GH_PROMPT_DISABLED", "GH_NO_UPDATE_NOTIFIER", "NO_COLOR")
entry = {"argv": args, "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in names}}
if "--body-file" in args:
    entry["body"] = open(args[args.index("--body-file") + 1], encoding="utf-8").read()
with open(os.path.join(here, "argv.jsonl"), "a", encoding="utf-8") as fh:
    fh.write(json.dumps(entry) + "\\n")
answers = json.load(open(os.path.join(here, "answers.json"), encoding="utf-8"))
answer = answers.get(" ".join(args[:2]), {"rc": 1, "stderr": "unexpected call"})
sys.stdout.write(answer.get("stdout", ""))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("rc", 0))
"""


@dataclass
class Shim:
    """A ``gh`` stand-in that records its argv and answers from a table."""

    dir: Path

    @property
    def path(self) -> Path:
        return self.dir / "gh"

    def answer(self, command: str, *, stdout: Any = "", rc: int = 0, stderr: str = "") -> None:
        path = self.dir / "answers.json"
        answers = json.loads(path.read_text()) if path.exists() else {}
        text = stdout if isinstance(stdout, str) else json.dumps(stdout)
        answers[command] = {"stdout": text, "rc": rc, "stderr": stderr}
        path.write_text(json.dumps(answers))

    @property
    def calls(self) -> list[dict[str, Any]]:
        log = self.dir / "argv.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def install_gh_shim(bin_dir: Path) -> Shim:
    """Write the shim as ``bin_dir/gh``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "gh_shim.py").write_text(SHIM)
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{bin_dir / "gh_shim.py"}" "$@"\n')
    gh.chmod(0o755)
    return Shim(bin_dir)


def path_with(bin_dir: Path) -> str:
    """PATH with ``bin_dir`` first."""
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
