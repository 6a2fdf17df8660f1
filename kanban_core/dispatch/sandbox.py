"""Process isolation for agents with bubblewrap: the policy a profile sets, and the jail's argv.

Inside, the agent sees the system read-only (``/usr``, ``/etc``, the Python it runs with), its
workspace read-write, the paths its profile lists, an empty ``$HOME`` and ``/tmp``, its run's
capability at ``/run/kanban-run``, and a ``/proc`` of its own processes. ``$KANBAN_HOME``, other
workspaces, other users' files and the gateway's processes do not exist there.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kanban_core.dispatch.door import SANDBOX_RUN_DIR
from kanban_core.profiles import SandboxMode, SandboxPolicy

#: System directories every agent may read (those that exist; symlinks stay symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
_PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Containment:
    """What containment a profile's next run gets on this machine."""

    contained: bool
    summary: str  # one line for status and logs

    def to_json(self) -> dict[str, Any]:
        """The ``status --json`` entry."""
        return {"contained": self.contained, "summary": self.summary}


def containment(
    policy: SandboxPolicy, probed: Callable[[], str | None] | None = None
) -> Containment:
    """Decide how ``policy`` applies here; ``probed`` is a probe already made (by the
    dispatcher, once per process), else bubblewrap is probed now (once per process)."""
    if policy.mode is SandboxMode.OFF:
        return Containment(False, "NOT CONTAINED: sandbox off for this profile")
    problem = (probed or probe)()
    if problem is not None:
        if policy.mode is SandboxMode.REQUIRED:
            return Containment(False, f"REFUSED TO RUN: sandbox required but {problem}")
        return Containment(False, f"NOT CONTAINED: {problem}")
    network = "network on" if policy.network else "network off"
    extra = ""
    if policy.read or policy.write:
        extra = f", +{len(policy.read)} read, +{len(policy.write)} write"
    return Containment(True, f"bubblewrap ({network}{extra})")


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """None when bubblewrap can build our jail here; else why not, in one line."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bubblewrap is not installed (apt-get install bubblewrap)"
    argv = [bwrap, *_isolation(network=True), *_system(), "--", "true"]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not run: {exc}"
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bubblewrap cannot create namespaces here: {detail[-1] if detail else 'failed'}"
    return None


def wrap(
    argv: Sequence[str],
    *,
    policy: SandboxPolicy,
    workspace: Path,
    run_dir: Path,
    kanban_home: Path,
    environ: Mapping[str, str],
) -> list[str]:
    """``argv`` run inside the jail (bubblewrap must be available: see ``probe``)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, *_isolation(network=policy.network), *_system()]
    home = environ.get("HOME")
    system = any(_under(Path(home or "/"), Path(d)) for d in SYSTEM_DIRS)
    if home and PurePosixPath(home).is_absolute() and home != "/" and not system:
        args += ["--tmpfs", home]  # the user's dotfiles and keys stay outside
    readable = [*_python_roots(), *policy.read]
    args += _binds("--ro-bind", readable)
    args += _binds("--bind", policy.write)
    args += _git_binds(workspace)
    args += _binds("--bind", [str(workspace)])
    # A listed path or a `dir:` workspace that contains the board's home must not reveal it.
    if any(_under(kanban_home, Path(p)) for p in (*readable, *policy.write, str(workspace))):
        args += ["--tmpfs", str(kanban_home)]
        if _under(workspace, kanban_home):
            args += _binds("--bind", [str(workspace)])
    args += ["--ro-bind", str(run_dir), SANDBOX_RUN_DIR, "--chdir", str(workspace)]
    return [*args, "--", *argv]


def _isolation(*, network: bool) -> list[str]:
    # Every namespace of its own (pid: its /proc shows only its processes), no capabilities
    # even when the gateway runs as root, and gone when its supervisor goes.
    args = ["--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if network:
        args.append("--share-net")
    return args


def _system() -> list[str]:
    args = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", str(path.readlink()), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    # A fresh /tmp inside the jail, not the host's.
    private = ["--tmpfs", "/tmp", "--tmpfs", "/run"]  # noqa: S108
    return [*args, "--proc", "/proc", "--dev", "/dev", *private]


def _python_roots() -> list[str]:
    """The interpreter, its standard library and the installed kanban package, for ``kanban``."""
    import kanban_core

    package_root = Path(kanban_core.__file__).resolve().parent.parent
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, str(package_root)}
    return sorted(r for r in roots if not any(_under(Path(r), Path(s)) for s in SYSTEM_DIRS))


def _binds(option: str, paths: Sequence[str]) -> list[str]:
    args = []
    for path in paths:
        if Path(path).exists():
            args += [option, path, path]
    return args


def _git_binds(workspace: Path) -> list[str]:
    """What git needs of the repositories the workspace's worktrees belong to.

    Objects, refs and the worktree's own directory are writable (an agent may commit); the
    rest — config, hooks — is read-only, so nothing the agent writes runs later outside.
    """
    args: list[str] = []
    for dot_git in (workspace / ".git", *workspace.glob("*/.git")):
        if not dot_git.is_file():
            continue
        text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
        if not text.startswith("gitdir:"):
            continue
        own = (dot_git.parent / text.removeprefix("gitdir:").strip()).resolve()
        marker = own / "commondir"
        common = (
            (own / marker.read_text(encoding="utf-8").strip()).resolve()
            if marker.is_file()
            else own
        )
        args += _binds("--ro-bind", [str(common)])
        args += _binds("--bind", [str(common / name) for name in ("objects", "refs", "logs")])
        args += _binds("--bind", [str(own)])
    return args


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
