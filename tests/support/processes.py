"""Subprocesses in tests: starting a gateway, waiting on output lines, liveness, any condition."""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


class Lines:
    """Collects a stream's lines on a thread, so a test can wait for one."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self._queue.put(raw.decode("utf-8", errors="replace").rstrip("\n"))
        self._queue.put(None)

    def next(self, timeout: float = 30.0) -> str:
        """The next line; fails after ``timeout`` seconds or at the end of the stream."""
        return self.wait_for(lambda _line: True, timeout)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The first new line matching ``predicate``; fails after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout}s; saw {self.seen!r}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self._queue.put(None)  # stay at the end for later calls
                raise AssertionError(f"the stream ended; saw {self.seen!r}")
            self.seen.append(line)
            if predicate(line):
                return line

    def join(self, timeout: float = 30.0) -> None:
        """Wait until the stream is closed and read."""
        self._thread.join(timeout=timeout)

    def rest(self) -> str:
        """Everything seen, once the stream has closed (call after the process exited)."""
        self.join(timeout=10)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "\n".join(self.seen)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie is not alive)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def host_pid(noted: int, marker: str, argv_contains: str = "") -> int:
    """The pid, as this process sees it, of a process that noted its own pid as ``noted``.

    A contained agent has a pid namespace of its own, where pids mean nothing out here; the
    process is found by a ``NAME=value`` ``marker`` in its environment (and, where several
    such agents may live, text in its argv) and its namespace pids.
    """
    wanted = marker.encode()
    for entry in Path("/proc").iterdir():
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if argv_contains.encode() not in (entry / "cmdline").read_bytes():
                continue
            status = (entry / "status").read_text(encoding="utf-8")
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:"):
                ids = [int(word) for word in line.split()[1:]]
                if ids[-1] == noted:
                    return ids[0]
    raise AssertionError(f"no live process noted pid {noted} with {marker} in its environment")


async def spawn_gateway(
    env: Mapping[str, str],
    log: Path,
    *,
    cwd: Path,
    log_level: str | None = "INFO",
    append: bool = False,
) -> asyncio.subprocess.Process:
    """``kanban gateway`` with ``env`` as its whole environment, stderr to ``log`` (appended to
    with ``append``, as a restarted host keeps one log), at ``log_level`` (None: its default)."""
    level = () if log_level is None else ("--log-level", log_level)
    with log.open("ab" if append else "wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            "gateway",
            *level,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )


async def start_gateway(
    home: Path, log: Path, env: Mapping[str, str] = {}
) -> asyncio.subprocess.Process:
    """``kanban gateway`` for ``$KANBAN_HOME`` ``home`` (HOME its parent), stderr to ``log``,
    with PATH and ``env`` (the secrets its config names) as its whole environment."""
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home.parent),
        "KANBAN_HOME": str(home),
        **env,
    }
    return await spawn_gateway(environ, log, cwd=home.parent, log_level=None)
