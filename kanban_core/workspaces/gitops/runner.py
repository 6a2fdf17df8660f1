"""The one way this project runs git: argv lists, a hardened environment, timeouts, repo locks.

Rules (reference/workspaces.md D-04): never a shell string; ``-C <dir>`` always; ``--`` before
pathspecs (callers' job); ``LC_ALL=C`` so stderr can be classified; no prompts; no ``GIT_DIR``
and friends inherited from whoever started us; reads never take optional locks; every mutation
of a repository happens under that repository's lock, keyed on its common git dir, so a repo
and all its linked worktrees share one lock across processes.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.base import WorkspaceError

LOCAL_TIMEOUT_S = 60.0
NETWORK_TIMEOUT_S = 180.0
_CONFIG = (
    "-c",
    "core.quotepath=false",
    "-c",
    "color.ui=never",
    "-c",
    "core.pager=cat",
    "-c",
    "advice.detachedHead=false",
)
# Variables that would point git at another repository than the one we name.
_DROPPED = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_NAMESPACE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXEC_PATH",
)
_STDERR_CHARS = 2000
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


class GitOpError(WorkspaceError):
    """A git command failed or was refused; the message says what and why in one line."""


class GitTimeout(GitOpError):
    """A git command ran past its timeout and was killed."""


@dataclass(frozen=True, slots=True)
class GitResult:
    """What one git command produced."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str

    @property
    def text(self) -> str:
        """stdout decoded for display (paths are bytes; undecodable ones are replaced)."""
        return self.stdout.decode("utf-8", errors="replace")


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git command runs with."""
    env = {
        k: v for k, v in os.environ.items() if k not in _DROPPED and not k.startswith("GIT_TRACE")
    }
    env |= {
        "LC_ALL": "C",
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GCM_INTERACTIVE": "never",
        "GIT_OPTIONAL_LOCKS": "0",
        "GH_PROMPT_DISABLED": "1",
    }
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    if extra:
        env |= dict(extra)
    return env


def run_git(
    cwd: Path,
    *args: str,
    timeout: float = LOCAL_TIMEOUT_S,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_bytes: bytes | None = None,
) -> GitResult:
    """Run ``git -C cwd <config> args…``; raise GitOpError on failure when ``check``."""
    argv = ("git", "-C", str(cwd), *_CONFIG, *args)
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd if cwd.is_dir() else None,
            env=git_env(env),
            input=input_bytes,
            stdin=None if input_bytes is not None else subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
            start_new_session=True,  # a timeout kill takes the whole group (hooks, ssh)
        )
    except subprocess.TimeoutExpired:
        raise GitTimeout(
            f"git {args[0] if args else ''} timed out after {timeout:.0f}s in {cwd}"
        ) from None
    except OSError as exc:
        raise GitOpError(f"cannot run git: {exc}") from None
    result = GitResult(argv, proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))
    if check and proc.returncode != 0:
        raise GitOpError(
            f"git {args[0] if args else ''} failed in {cwd}: {first_error(result.stderr)}"
        )
    return result


def first_error(stderr: str) -> str:
    """The most telling line of git's stderr (its ``fatal:``/``error:`` line), shortened.

    Credentials in URLs (``https://user:token@host``) are dropped: the line may reach a chat.
    """
    lines = [_USERINFO.sub(r"\1", line.strip()) for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:")):
            return line[:_STDERR_CHARS]
    return (lines[-1] if lines else "no error output")[:_STDERR_CHARS]


def common_dir(path: Path) -> Path:
    """The repository's common git dir, absolute and resolved (shared by its worktrees)."""
    out = run_git(path, "rev-parse", "--path-format=absolute", "--git-common-dir").text.strip()
    return Path(out).resolve()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextmanager
def repo_lock(common: Path, locks_dir: Path) -> Iterator[None]:
    """Hold the repository's lock (in this process and across processes) for a mutation.

    The lock file lives under ``locks_dir`` (in ``$KANBAN_HOME``), never inside the user's
    ``.git``. Take several with :func:`repo_locks`, which orders them to avoid deadlock.
    """
    key = hashlib.sha1(os.fsencode(common.resolve()), usedforsecurity=False).hexdigest()
    with _THREAD_LOCKS_GUARD:
        local = _THREAD_LOCKS.setdefault(key, threading.Lock())
    locks_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with local:
        fd = os.open(locks_dir / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock


@contextmanager
def repo_locks(commons: Sequence[Path], locks_dir: Path) -> Iterator[None]:
    """Hold several repositories' locks, taken in sorted order."""
    ordered = sorted({c.resolve() for c in commons})
    if not ordered:
        yield
        return
    with repo_lock(ordered[0], locks_dir), repo_locks(ordered[1:], locks_dir):
        yield
