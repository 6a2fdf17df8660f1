"""Worker logs: where they live, rotation before each attempt, and reading their tail."""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path


def log_path(home: Path, task_id: int) -> Path:
    """The task's worker log."""
    return home / "logs" / f"t{task_id}.log"


def rotate(path: Path, max_bytes: int, backups: int) -> None:
    """Shift ``t5.log`` to ``t5.log.1`` (and older ones along) once it is over ``max_bytes``."""
    try:
        if path.stat().st_size <= max_bytes:
            return
    except FileNotFoundError:
        return
    for index in range(backups, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        newer = path if index == 1 else path.with_name(f"{path.name}.{index - 1}")
        if index == backups:
            with suppress(FileNotFoundError):
                older.unlink()
        with suppress(FileNotFoundError):
            newer.rename(older)


def tail(path: Path, size: int) -> str:
    """The last ``size`` bytes of a file as text, starting at a line boundary when possible."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            end = handle.tell()
            handle.seek(max(0, end - size))
            data = handle.read()
    except FileNotFoundError:
        return ""
    if end > size and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]
    return data.decode("utf-8", errors="replace")
