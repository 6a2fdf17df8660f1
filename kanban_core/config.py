"""The ``board`` section of config.yaml, read into a frozen value with every problem listed.

The file is optional (``$KANBAN_HOME/config.yaml``, or the path in ``KANBAN_CONFIG``). Secrets
never live in it: a database password goes in the environment variable that ``db_url_env``
names. Environment variables and command-line flags override the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_core.errors import ValidationError

_BOARD_KEYS = {"db_url", "db_url_env", "sqlite_synchronous", "claim_ttl_seconds"}


@dataclass(frozen=True, slots=True)
class BoardConfig:
    """How the board is stored; None means "use the default"."""

    db_url: str | None = None
    sqlite_synchronous: str | None = None
    claim_ttl_seconds: int | None = None


def config_path(environ: Mapping[str, str], home: Path) -> Path:
    """Where config.yaml is looked for."""
    explicit = environ.get("KANBAN_CONFIG")
    return Path(explicit).expanduser() if explicit else home / "config.yaml"


def load_board_config(path: Path, environ: Mapping[str, str]) -> BoardConfig:
    """Read the ``board`` section; no file is an empty config, a bad one lists every error."""
    if not path.is_file():
        if "KANBAN_CONFIG" in environ:
            raise ValidationError(f"config file {path} does not exist")
        return BoardConfig()
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError(f"{path}: the top level must be a mapping")
    section = document.get("board") or {}
    problems: list[str] = []
    if not isinstance(section, dict):
        raise ValidationError(f"{path}: board: must be a mapping")
    problems += [f"board.{key}: unknown key" for key in sorted(set(section) - _BOARD_KEYS)]
    db_url = _db_url(section, environ, problems)
    sync = section.get("sqlite_synchronous")
    if sync is not None and str(sync).upper() not in ("NORMAL", "FULL"):
        problems.append("board.sqlite_synchronous: must be NORMAL or FULL")
    ttl = section.get("claim_ttl_seconds")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl <= 0):
        problems.append("board.claim_ttl_seconds: must be a positive whole number")
    if problems:
        raise ValidationError(f"{path}: " + "; ".join(problems))
    return BoardConfig(
        db_url=db_url,
        sqlite_synchronous=str(sync).upper() if sync is not None else None,
        claim_ttl_seconds=ttl,
    )


def _db_url(section: dict[str, Any], environ: Mapping[str, str], problems: list[str]) -> str | None:
    url = section.get("db_url")
    env_name = section.get("db_url_env")
    if url is not None and env_name is not None:
        problems.append("board: give db_url or db_url_env, not both")
        return None
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            problems.append("board.db_url_env: must name an environment variable")
            return None
        value = environ.get(env_name)
        if not value:
            problems.append(f"board.db_url_env: environment variable {env_name} is not set")
        return value or None
    if url is None:
        return None
    if not isinstance(url, str) or not url:
        problems.append("board.db_url: must be a URL string")
        return None
    credentials = url.partition("://")[2].partition("@")
    if credentials[1] and ":" in credentials[0]:
        problems.append(
            "board.db_url: contains a password; put the URL in an environment variable "
            "and name it with db_url_env"
        )
        return None
    return url
