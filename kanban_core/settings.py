"""KernelSettings: where the board lives and how it is stored, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kanban_core.config import config_path, load_board_config
from kanban_core.errors import ValidationError

Synchronous = Literal["NORMAL", "FULL"]
DEFAULT_CLAIM_TTL_S = 900
DEFAULT_POOL_SIZE = 4


@dataclass(frozen=True, slots=True)
class KernelSettings:
    """Everything the kernel needs to know about its environment; built at the edge."""

    home: Path
    db_url: str
    synchronous: Synchronous = "NORMAL"
    claim_ttl_s: int = DEFAULT_CLAIM_TTL_S
    #: Idle database connections kept open per process (``board.pool_size``).
    pool_size: int = DEFAULT_POOL_SIZE

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        db_url: str | None = None,
        home: str | None = None,
    ) -> KernelSettings:
        """Read ``KANBAN_HOME`` (default ``~/.kanban``), ``KANBAN_DB_URL``,
        ``KANBAN_SQLITE_SYNCHRONOUS`` and the ``board`` section of config.yaml.

        Precedence: explicit arguments, then the environment, then the file, then defaults.
        """
        base = resolve_home(environ, home)
        # The config file is read only after the home is known (it lives there by default).
        file_config = load_board_config(config_path(environ, base.absolute()), environ)
        url = db_url or environ.get("KANBAN_DB_URL") or file_config.db_url or ""
        if not url:
            url = f"sqlite:///{base.absolute() / 'kanban.db'}"
        elif "://" not in url and not url.startswith("sqlite:"):
            # A bare path is a SQLite file.
            url = f"sqlite:///{Path(_expand_home(url, environ)).absolute()}"
        sync = (
            environ.get("KANBAN_SQLITE_SYNCHRONOUS") or file_config.sqlite_synchronous or "NORMAL"
        ).upper()
        if sync not in ("NORMAL", "FULL"):
            raise ValidationError(f"KANBAN_SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {sync!r}")
        return cls(
            home=base.absolute(),
            db_url=url,
            synchronous=sync,  # type: ignore[arg-type]
            claim_ttl_s=file_config.claim_ttl_seconds or DEFAULT_CLAIM_TTL_S,
            pool_size=file_config.pool_size or DEFAULT_POOL_SIZE,
        )

    @property
    def logs_dir(self) -> Path:
        """Where worker logs are written."""
        return self.home / "logs"

    @property
    def workspaces_dir(self) -> Path:
        """The managed root of scratch workspaces."""
        return self.home / "workspaces"


def _expand_home(path: str, environ: Mapping[str, str]) -> str:
    """Expand a leading ``~`` with the HOME of the environment we were given, not the process's."""
    if path == "~" or path.startswith("~/"):
        user_home = environ.get("HOME") or os.path.expanduser("~")  # noqa: PTH111
        return user_home + path[1:]
    return path


def resolve_home(environ: Mapping[str, str], home: str | None = None) -> Path:
    """The board's home: the argument, else ``KANBAN_HOME``, else ``~/.kanban``; absolute."""
    raw_home = _expand_home(home or environ.get("KANBAN_HOME") or "", environ)
    if raw_home:
        return Path(raw_home).expanduser().absolute()
    user_home = environ.get("HOME") or os.path.expanduser("~")  # noqa: PTH111 - HOME may be unset
    return (Path(user_home) / ".kanban").absolute()
