"""This machine's host enrollment: a small file under $KANBAN_HOME, readable by its owner only."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kanban_core.board.hosts import HostIdentity
from kanban_core.errors import ValidationError

FILE_NAME = "host.json"


def path(home: Path) -> Path:
    """Where the enrollment of the machine using this home is kept."""
    return home / FILE_NAME


def load(home: Path) -> HostIdentity | None:
    """The enrollment, or None when this machine is not enrolled (the implicit host)."""
    target = path(home)
    try:
        raw = json.loads(target.read_text(encoding="utf-8"))
        return HostIdentity(int(raw["host_id"]), str(raw["name"]), str(raw["secret"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(
            f"the host enrollment {target} is unreadable ({type(exc).__name__}); "
            "remove it and run `kanban host enroll` again"
        ) from None


def save(home: Path, identity: HostIdentity) -> Path:
    """Write the enrollment with mode 0600 (it holds the host's secret); returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    target = path(home)
    partial = target.with_suffix(".tmp")
    body = {"host_id": identity.host_id, "name": identity.name, "secret": identity.secret}
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # the mode above is masked by umask; this is not
        json.dump(body, out)
    partial.replace(target)
    return target
