"""A throwaway PostgreSQL cluster of a test's own, on a free loopback port, that it may restart.

Started and stopped by the project's own ``.ci/pg_up.sh`` and ``.ci/pg_down.sh`` (the CI's
PostgreSQL); restarted with ``pg_ctl`` on the data directory they made. Never the shared
cluster the rest of the suite uses: restarting that would break every other test.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from tests.support.network import closed_port

ROOT = Path(__file__).resolve().parents[2]


class PgCluster:
    """``start`` it, take its ``url``, ``restart`` it mid-test, ``stop`` it at the end."""

    def __init__(self, scratch: Path) -> None:
        self.port = closed_port()
        self.state = scratch / "pgci.state"
        self.url = ""

    def _env(self) -> dict[str, str]:
        return os.environ | {"PGPORT_CI": str(self.port), "PGCI_STATE": str(self.state)}

    def start(self) -> str:
        done = subprocess.run(
            ["bash", str(ROOT / ".ci" / "pg_up.sh")],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        self.url = done.stdout.strip().splitlines()[-1]
        return self.url

    def restart(self, *, mode: str = "fast") -> None:
        """Stop the server (``fast``: sessions are ended; ``immediate``: as a crash) and start
        it again on the same port and data."""
        self._pg_ctl("restart", "-m", mode, "-w", "-t", "60")

    def down(self) -> None:
        """Stop the server (fast: sessions are ended), keeping its data for ``up``."""
        self._pg_ctl("stop", "-m", "fast", "-w", "-t", "60")

    def up(self) -> None:
        """Start the server again with the options pg_up.sh gave it (kept in postmaster.opts)."""
        data = Path(self.state.read_text(encoding="utf-8").strip()) / "data"
        argv = shlex.split((data / "postmaster.opts").read_text(encoding="utf-8"))[1:]
        at = argv.index("-D")
        options = shlex.join(argv[:at] + argv[at + 2 :])
        self._pg_ctl("start", "-w", "-t", "60", "-o", options)

    def stop(self) -> None:
        subprocess.run(
            ["bash", str(ROOT / ".ci" / "pg_down.sh")], env=self._env(), timeout=60, check=False
        )

    def _pg_ctl(self, *args: str) -> None:
        cluster = Path(self.state.read_text(encoding="utf-8").strip())
        data, server_log = cluster / "data", cluster / "server.log"
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
        run_as = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run(
            [*run_as, str(bins[-1] / "pg_ctl"), "-D", str(data), "-l", str(server_log), *args],
            # Never a pipe: the server it starts would hold it open.
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=90,
            check=True,
        )
