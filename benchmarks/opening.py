"""What every short command pays: opening a board, and the very first call that creates it.

Each is measured beside the reference's way of doing the same on the same machine (a raw
``sqlite3`` connection with Hermes's pragmas), so the ratio survives a noisy machine.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

from benchmarks.backends import Backend
from benchmarks.cases import kanban_command, run_cli
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress, median, per_call

NOT_APPLICABLE = "n/a (SQLite only)"


def open_close(backend: Backend, sizes: Sizes, log: Progress) -> tuple[float, float | str]:
    """Seconds to open and close a board as a command does; and the reference's raw way."""
    with backend.board() as url:
        settings = backend.settings(url)
        log(f"{backend.name}: open and close a board x{sizes.open_calls}")

        def ours() -> None:
            backend.open_settings(settings).close()

        mine = per_call(ours, calls=sizes.open_calls, repeats=sizes.poll_repeats, warmup=20)
        if backend.name != "SQLite":
            return mine, NOT_APPLICABLE
        path = url.removeprefix("sqlite:///")

        def reference() -> None:
            # Hermes v1 connect(): autocommit, row factory, WAL, NORMAL, foreign keys; close.
            connection = sqlite3.connect(path, timeout=30, isolation_level=None)
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.close()

        raw = per_call(reference, calls=sizes.open_calls, repeats=sizes.poll_repeats, warmup=20)
        return mine, raw


def first_call(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """Wall seconds of the first ``kanban create`` in a fresh home, the board created by it."""
    walls: list[float] = []
    log(f"{backend.name}: first `kanban create` in a fresh home x{sizes.cli_runs}")
    for run in range(sizes.cli_runs + 1):  # run 0 warms the page cache
        home = Path(tempfile.mkdtemp(prefix="first-call-", dir=backend.workdir)) / "home"
        try:
            with backend.empty_board() as url:
                env = {"KANBAN_HOME": str(home), "KANBAN_USER": "bench"}
                if url is not None:
                    env["KANBAN_DB_URL"] = url
                wall, _ = run_cli([*kanban_command(), "create", "first"], env, expect="Created t1")
        finally:
            shutil.rmtree(home.parent, ignore_errors=True)
        if run:
            walls.append(wall)
    return median(walls)
