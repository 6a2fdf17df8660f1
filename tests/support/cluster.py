"""Simulated hosts on one board, each a ``kanban gateway`` process group of its own.

The chaos matrix's harness and the failover benchmark's: it lives with the other fakes, as the
benchmarks may import ``tests.support`` but no test package.

A host has its own ``$KANBAN_HOME`` (config.example.yaml as a user adapts it, and the host
enrollment ``kanban host enroll`` wrote there) and its own road to the board (the database URL,
perhaps through a ``TcpProxy``). Its gateway polls the fake Bot API under ``/<host name>`` so
the fake can tell which host holds the platform connection. Its agents are small scripts that
note which run started them on which host, wait for the test's ``go.<host>`` file, and then
complete through the ``kanban`` CLI as a real agent would. Killing a host is SIGKILL to every
process whose environment names its home or its host name: the gateway, its supervisors (each
in its own session) and their agents, at once — as a power cut would.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import yaml

from tests.support.fake_telegram import ALICE_ID, TOKEN_ENV, FakeTelegram
from tests.support.network import until
from tests.support.processes import alive, spawn_gateway

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 2
RUN_LEASE_S = 3
NOTIFY_CLAIM_S = 3
START_TIMEOUT_S = 60.0
#: A run of a dead host is reclaimed when its lease runs out, by the leader (itself elected by
#: lease), then claimed again at the next pass: both leases, and a try of each, plus backoff.
REDO_BOUND_S = RUN_LEASE_S + LEASE_S + 1 + 1 + 5  # loose: timings on a shared 2-core machine

AGENT = """
import os, subprocess, sys, time
from pathlib import Path
state = Path(os.environ["CHAOS_STATE"])
host, task, run = os.environ["CHAOS_HOST"], os.environ["KANBAN_TASK"], os.environ["KANBAN_RUN_ID"]
stem = f"{task}.r{run}.{host}"  # KANBAN_TASK is "t<id>"
(state / f"{stem}.started").write_text(str(os.getpid()))
while not (state / f"go.{host}").exists():
    time.sleep(0.05)
done = subprocess.run(
    [sys.executable, "-m", "kanban_core", "complete", "--summary", f"done on {host}"],
    capture_output=True, text=True,
)
(state / f".{stem}.tmp").write_text(f"{done.returncode}\\n{done.stderr}")
(state / f".{stem}.tmp").replace(state / f"{stem}.result")
"""


def enroll(home: Path, db_url: str, name: str, *labels: str) -> None:
    """``kanban host enroll --name NAME`` in ``home``, as an admin at that host's terminal."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KANBAN_HOME": str(home),
        "KANBAN_DB_URL": db_url,
    }
    argv = [sys.executable, "-m", "kanban_core", "host", "enroll", "--name", name]
    for label in labels:
        argv += ["--label", label]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


@dataclass
class Host:
    """One simulated machine: its home, its gateway process and log."""

    name: str
    home: Path
    db_url: str
    log: Path
    process: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def owner_prefix(self) -> str:
        assert self.process is not None
        return f":{self.process.pid}:"

    def running(self) -> bool:
        """Whether its gateway still runs (its log is shown when it does not)."""
        assert self.process is not None
        assert self.process.returncode is None, self.text()[-3000:]
        return True

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL every process of this host at once (gateway, supervisors, agents)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        markers = (f"KANBAN_HOME={self.home}".encode(), f"CHAOS_HOST={self.name}".encode())
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(m in environ for m in markers) and alive(int(entry.name)):
                found.append(int(entry.name))
        return found


class Cluster:
    """The hosts of one test, the fake Bot API they share, and the agents' notes."""

    def __init__(self, fake: FakeTelegram, root: Path) -> None:
        self.fake = fake
        fake.add_chat(ALICE_ID, "private")  # the chat subscribed to every task
        self.root = root
        self.state = root / "state"
        self.agents = root / "agents"
        self.state.mkdir()
        self.agents.mkdir()
        (self.agents / "chaos_agent.py").write_text(AGENT, encoding="utf-8")
        self.hosts: dict[str, Host] = {}

    def add(self, name: str, db_url: str, *, enroll_url: str | None = None) -> Host:
        """Enroll a host (over ``enroll_url``, default its own road) and write its config."""
        home = self.root / name
        enroll(home, enroll_url or db_url, name)
        (home / "config.yaml").write_text(yaml.safe_dump(self._config(name)), encoding="utf-8")
        host = Host(name, home, db_url, self.root / f"{name}.log")
        self.hosts[name] = host
        return host

    def _config(self, name: str) -> dict[str, Any]:
        document: dict[str, Any] = yaml.safe_load(
            (ROOT / "config.example.yaml").read_text(encoding="utf-8")
        )
        document["dispatcher"].update(
            max_in_progress=4,
            lease_ttl_seconds=RUN_LEASE_S,
            dispatch_interval_seconds=1,
            backoff_base_seconds=1,
            backoff_cap_seconds=1,
            failure_limit=10,
            terminate_grace_seconds=1,
        )
        document["assignees"] = {
            "chaos": {
                "preset": "command",
                "command": [sys.executable, str(self.agents / "chaos_agent.py")],
                "workspace": "scratch",
                "env": {"CHAOS_STATE": str(self.state), "CHAOS_HOST": name},
                "sandbox": {"read": [str(self.agents)], "write": [str(self.state)]},
            }
        }
        document["gateway"].update(
            lease_seconds=LEASE_S,
            notify_claim_lease_seconds=NOTIFY_CLAIM_S,
            notify_backoff_base_seconds=1,
            notify_poll_ms=100,
        )
        document["platforms"]["telegram"].update(
            enabled=True,
            token_env=TOKEN_ENV,
            api_base_url=f"{self.fake.base_url}/{name}",
            poll_timeout=1,
        )
        document["access"]["users"] = {f"telegram:{ALICE_ID}": "operator"}
        document.pop("workspaces")
        document.pop("web", None)
        return document

    async def start(self, name: str) -> Host:
        host = self.hosts[name]
        host.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.root),
            "KANBAN_HOME": str(host.home),
            "KANBAN_DB_URL": host.db_url,
            "PTB_TIMEDELTA": "1",
            TOKEN_ENV: self.fake.token,
        }
        host.process = await spawn_gateway(host.env, host.log, cwd=host.home, append=True)
        return host

    async def kill(self, name: str) -> float:
        """Kill -9 a host; returns when (monotonic) it died."""
        host = self.hosts[name]
        host.kill()
        assert host.process is not None
        await host.process.wait()
        died = time.monotonic()
        await until(lambda: not host.pids(), 10)  # a contained agent goes with its supervisor
        return died

    def release(self, name: str) -> None:
        """Let ``name``'s agents complete."""
        (self.state / f"go.{name}").write_text("", encoding="utf-8")

    def started(self, task_id: int) -> list[tuple[int, str]]:
        """(run id, host) of each agent started for the task."""
        found = []
        for note in self.state.glob(f"t{task_id}.r*.started"):
            _, run, host, _ = note.name.split(".")
            found.append((int(run[1:]), host))
        return sorted(found)

    def results(self, task_id: int) -> dict[tuple[int, str], tuple[int, str]]:
        """(run id, host) → (exit code, stderr) of each agent's ``kanban complete``."""
        found = {}
        for note in self.state.glob(f"t{task_id}.r*.result"):
            _, run, host, _ = note.name.split(".")
            code, _, err = note.read_text(encoding="utf-8").partition("\n")
            found[(int(run[1:]), host)] = (int(code), err)
        return found

    async def stop_all(self) -> None:
        for host in self.hosts.values():
            host.kill()
            if host.process is not None and host.process.returncode is None:
                await host.process.wait()


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the board, read from outside the hosts."""
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def lease_owner(url: str, name: str) -> str | None:
    """The owner of lease ``name`` while it is live, by the database's clock."""
    rows = query(
        url,
        "SELECT owner FROM leases WHERE name = %s AND expires_ms > "
        "(extract(epoch from clock_timestamp()) * 1000)::bigint",
        (name,),
    )
    return str(rows[0][0]) if rows else None


async def wait_owner(url: str, lease: str, host: Host, timeout: float) -> None:  # noqa: ASYNC109
    """Wait until ``host``'s gateway holds ``lease``; fail with its log if it dies or times out."""

    def held() -> bool:
        return host.running() and host.owner_prefix in (lease_owner(url, lease) or "")

    try:
        await until(held, timeout)
    except AssertionError as exc:
        raise AssertionError(f"{host.name} did not take {lease}:\n{host.text()[-3000:]}") from exc
