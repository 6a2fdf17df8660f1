"""Several gateways on one PostgreSQL board, one bot token: one polls, the others stand by.

Each gateway is its own ``kanban gateway`` process with its own ``$KANBAN_HOME``; the real
python-telegram-bot talks to the loopback fake Bot API through a per-gateway path prefix, so
the fake can tell which gateway polls ``getUpdates``. A kill -9 of the owner hands the platform
connection and the leader's duties over within the lease time (plus a try); a clean stop at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kanban_core.board import leases
from kanban_core.storage import Database
from tests.e2e import test_telegram as telegram_e2e
from tests.support.fake_telegram import ALICE_ID, TOKEN_ENV, FakeTelegram
from tests.support.network import until
from tests.support.processes import spawn_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
Launch = Callable[..., Awaitable["Gateway"]]
LEASE_S = 2
#: A standby tries at least every second; a platform's start takes a moment more.
TAKEOVER_BOUND_S = LEASE_S + 2 + 3  # loose: the measured figure goes to the README
START_TIMEOUT_S = 60.0


@dataclass
class Gateway:
    """One ``kanban gateway`` process and its log."""

    name: str
    process: asyncio.subprocess.Process
    log: Path

    @property
    def owner_prefix(self) -> str:
        return f":{self.process.pid}:"

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
async def launch(fake: FakeTelegram, board_url: str, tmp_path: Path) -> AsyncIterator[Launch]:
    started: list[Gateway] = []

    async def start(name: str, **sections: object) -> Gateway:
        home = tmp_path / name
        home.mkdir()
        config: dict[str, object] = sections | {
            "gateway": {"lease_seconds": LEASE_S},
            "platforms": {
                "telegram": {
                    "token_env": TOKEN_ENV,
                    "api_base_url": f"{fake.base_url}/{name}",
                    "poll_timeout": 1,
                }
            },
            "access": {"users": {f"telegram:{ALICE_ID}": "operator"}},
        }
        (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KANBAN_HOME": str(home),
            "KANBAN_DB_URL": board_url,
            "PTB_TIMEDELTA": "1",
            TOKEN_ENV: fake.token,
        }
        log = tmp_path / f"{name}.log"
        process = await spawn_gateway(env, log, cwd=tmp_path)
        gateway = Gateway(name, process, log)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()


def owner_of(url: str, name: str) -> str | None:
    db = Database(url)
    try:
        states = {s.name: s for s in leases.all_leases(db)}
    finally:
        db.close()
    state = states.get(name)
    return state.owner if state is not None and state.live else None


async def wait_owner(url: str, name: str, gateway: Gateway, timeout: float) -> None:  # noqa: ASYNC109
    def held() -> bool:
        assert gateway.process.returncode is None, gateway.text()
        return gateway.owner_prefix in (owner_of(url, name) or "")

    try:
        await until(held, timeout)
    except AssertionError:
        pytest.fail(f"{gateway.name} did not take {name}:\n{gateway.text()}")


async def answered(fake: FakeTelegram, text: str) -> None:
    before = len(fake.sent_to(ALICE_ID))
    await fake.push_text(text)
    await fake.wait_for(lambda: len(fake.sent_to(ALICE_ID)) > before, 20)


async def test_one_gateway_polls_and_a_standby_takes_over_on_kill_and_on_clean_stop(
    fake: FakeTelegram, board_url: str, launch: Launch
) -> None:
    start = launch
    a = await start("a")
    await wait_owner(board_url, "platform:telegram", a, START_TIMEOUT_S)
    await wait_owner(board_url, "leader", a, START_TIMEOUT_S)
    b = await start("b")
    await until(lambda: "standing by" in b.text(), START_TIMEOUT_S)
    await until(lambda: "a" in fake.pollers, 10)

    # Only the owner polls, however long the standby waits (several of its tries).
    deadline = time.monotonic() + 2 * LEASE_S
    await until(lambda: time.monotonic() > deadline, 3 * LEASE_S)
    assert set(fake.pollers) == {"a"}
    assert "lease platform:telegram taken" not in b.text()
    fence_a = _fence(board_url, "platform:telegram")

    # kill -9: no release; the standby takes over when the lease runs out.
    a.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await a.process.wait()
    await until(lambda: "b" in fake.pollers, TAKEOVER_BOUND_S + 5)
    took_over = time.monotonic() - killed
    print(f"\ntakeover after kill -9: {took_over:.2f} s (lease {LEASE_S} s)")
    assert took_over < TAKEOVER_BOUND_S
    await wait_owner(board_url, "platform:telegram", b, 5)
    assert _fence(board_url, "platform:telegram") == fence_a + 1
    await wait_owner(board_url, "leader", b, TAKEOVER_BOUND_S)
    await answered(fake, "/kanban list")

    # A clean stop releases: a new standby takes over at its next try, without the lease time.
    c = await start("c")
    await until(lambda: "standing by" in c.text(), START_TIMEOUT_S)
    polls_before = len(fake.pollers)
    b.process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    await until(lambda: "c" in fake.pollers[polls_before:], TAKEOVER_BOUND_S + 5)
    handed = time.monotonic() - stopped
    print(f"handover on a clean stop: {handed:.2f} s")
    async with asyncio.timeout(20):
        assert await b.process.wait() == 0, b.text()
    assert "lease platform:telegram released" in b.text()
    await wait_owner(board_url, "leader", c, TAKEOVER_BOUND_S)
    await answered(fake, "/kanban list")
    assert fake.token not in a.text() + b.text() + c.text()


def _fence(url: str, name: str) -> int:
    db = Database(url)
    try:
        return next(s.fence for s in leases.all_leases(db) if s.name == name)
    finally:
        db.close()
