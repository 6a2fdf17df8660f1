"""Process isolation for agents with bubblewrap: the policy a profile sets, and the jail's argv.

Inside, the agent sees the system read-only (``/usr``, ``/etc``, the Python it runs with), its
workspace read-write, the paths its profile lists, an empty ``$HOME`` and ``/tmp``, its run's
capability at ``/run/kanban-run``, and a ``/proc`` of its own processes. ``$KANBAN_HOME``, other
workspaces, other users' files and the gateway's processes do not exist there.
"""

from __future__ import annotations

import enum
import functools
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kanban_core.capability import SANDBOX_RUN_DIR

#: System directories every agent may read (those that exist; symlinks stay symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt")
_PROBE_TIMEOUT_S = 10.0


class SandboxMode(enum.StrEnum):
    """How a profile's agents are contained."""

    AUTO = "auto"  # bubblewrap where it works; elsewhere run uncontained, and say so loudly
    REQUIRED = "required"  # bubblewrap or the run does not start
    OFF = "off"  # never (the agent has the user's full authority)


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """A profile's ``sandbox`` section."""

    mode: SandboxMode = SandboxMode.AUTO
    network: bool = True
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON (it travels in the worker spec)."""
        return {
            "mode": self.mode.value,
            "network": self.network,
            "read": list(self.read),
            "write": list(self.write),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SandboxPolicy:
        """The policy from ``to_json``; an empty mapping is the default."""
        return cls(
            mode=SandboxMode(raw.get("mode", SandboxMode.AUTO.value)),
            network=bool(raw.get("network", True)),
            read=tuple(raw.get("read", ())),
            write=tuple(raw.get("write", ())),
        )


_KEYS = {"mode", "network", "read", "write"}


def parse_sandbox(raw: object, where: str, problems: list[str]) -> SandboxPolicy:
    """A profile's ``sandbox``: a mode (``auto``, ``required``, ``off``) or a mapping."""
    if raw is None:
        return SandboxPolicy()
    if isinstance(raw, str | bool):
        raw = {"mode": "off" if raw is False else "auto" if raw is True else raw}
    if not isinstance(raw, dict):
        problems.append(f"{where}: a mode (auto, required, off) or a mapping")
        return SandboxPolicy()
    before = len(problems)
    problems += [f"{where}.{key}: unknown key" for key in sorted(set(raw) - _KEYS)]
    try:
        mode = SandboxMode(raw.get("mode", "auto"))
    except ValueError:
        problems.append(f"{where}.mode: one of {', '.join(m.value for m in SandboxMode)}")
        mode = SandboxMode.AUTO
    network = raw.get("network", True)
    if not isinstance(network, bool):
        problems.append(f"{where}.network: must be true or false")
    paths = {key: _paths(raw.get(key), f"{where}.{key}", problems) for key in ("read", "write")}
    if len(problems) > before:
        return SandboxPolicy()
    return SandboxPolicy(mode, bool(network), paths["read"], paths["write"])


def _paths(raw: object, where: str, problems: list[str]) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        problems.append(f"{where}: must be a list of absolute paths")
        return ()
    for path in raw:
        pure = PurePosixPath(path)
        if not pure.is_absolute() or ".." in pure.parts or pure == PurePosixPath("/"):
            problems.append(f"{where}: {path!r} is not an absolute path below / without '..'")
    return tuple(raw)


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
