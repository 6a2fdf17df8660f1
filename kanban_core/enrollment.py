"""This machine's host enrollment: a small file under $KANBAN_HOME, readable by its owner only.

The file names the board it was made on (the board's id, kept in the board itself), so a file
copied from, or left over from, another board is refused instead of acting on this one.
"""

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
        board = raw.get("board_id")
        return HostIdentity(
            int(raw["host_id"]),
            str(raw["name"]),
            str(raw["secret"]),
            None if board is None else str(board),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(
            f"the host enrollment {target} is unreadable ({type(exc).__name__}); "
            "remove it and run `kanban host enroll` again"
        ) from None


def board_mismatch(home: Path, identity: HostIdentity, board_id: str | None) -> str | None:
    """Why this enrollment may not act on the board whose id is ``board_id``; None if it may."""
    if identity.board_id is None or identity.board_id == board_id:
        return None
    return (
        f"{path(home)} belongs to board {identity.board_id}, not this one "
        f"({board_id or 'a board with no enrolled host'}): point KANBAN_DB_URL at that board, "
        "or remove the file and run `kanban host enroll` here"
    )


def check_board(home: Path, identity: HostIdentity, board_id: str | None) -> None:
    """Refuse, in one line, an enrollment made on another board."""
    problem = board_mismatch(home, identity, board_id)
    if problem is not None:
        raise ValidationError(problem)


def save(home: Path, identity: HostIdentity) -> Path:
    """Write the enrollment with mode 0600 (it holds the host's secret); returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    target = path(home)
    partial = target.with_suffix(".tmp")
    body = {
        "host_id": identity.host_id,
        "name": identity.name,
        "secret": identity.secret,
        "board_id": identity.board_id,
    }
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # the mode above is masked by umask; this is not
        json.dump(body, out)
    partial.replace(target)
    return target
