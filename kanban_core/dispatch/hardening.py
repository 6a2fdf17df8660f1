"""Process hardening around agents: closed /proc entries, an allow-listed supervisor environment."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterable, Mapping
from contextlib import suppress

_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36

#: What a supervisor may inherit from the process that spawns it: enough to run Python, git and
#: the database driver. Chat and GitHub tokens live in the gateway's environment; none of them
#: is here, and a profile's ``pass_env`` names are the only additions.
SUPERVISOR_ENV = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "LC_MESSAGES",
        "TERM",
        "SHELL",
        "TMPDIR",
        "TZ",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_RUNTIME_DIR",
        # libpq's own settings, for a database URL that relies on them (the supervisor reaches
        # the board for its run; the agent never gets any of these).
        "PGPASSFILE",
        "PGPASSWORD",
        "PGSERVICE",
        "PGSERVICEFILE",
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "KANBAN_SQLITE_SYNCHRONOUS",
    }
)


def supervisor_environ(environ: Mapping[str, str], pass_env: Iterable[str]) -> dict[str, str]:
    """The allow-listed part of ``environ`` a supervisor starts with."""
    names = SUPERVISOR_ENV | set(pass_env)
    return {name: value for name, value in environ.items() if name in names}


def _prctl(option: int, value: int) -> int:
    if not sys.platform.startswith("linux"):
        return -1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(option, value, 0, 0, 0))
    except (OSError, AttributeError):
        return -1


def make_undumpable() -> bool:
    """Close this process to same-user readers of ``/proc/<pid>/environ``, ``mem`` and ptrace.

    The gateway and every supervisor hold secrets (chat tokens, the database URL, run tokens)
    while agents run as the same user; with dumpable 0 the kernel treats those files as root's.
    Returns False where the platform cannot do it (not Linux).
    """
    return _prctl(_PR_SET_DUMPABLE, 0) == 0


def is_dumpable() -> bool:
    """Whether this process is still readable by same-user processes."""
    return _prctl(_PR_GET_DUMPABLE, 0) != 0


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants, so an agent that daemonises stays under it."""
    with suppress(OSError):
        return _prctl(_PR_SET_CHILD_SUBREAPER, 1) == 0
    return False
