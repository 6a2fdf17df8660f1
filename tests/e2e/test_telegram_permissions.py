"""An ACP agent asks, the phone answers: the real gateway, dispatcher and supervisor, the fake
ACP agent on the official SDK, and the real python-telegram-bot against the fake Bot API.

The config is config.example.yaml as a user copies it: Telegram enabled, an operator and a
viewer in ``access``, one assignee that runs the fake ACP agent. The gateway is restarted while
the request waits (the supervisor and its question outlive it); a viewer's press is refused;
the operator's press reaches the agent, which completes, and the chat hears it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kanban_core import Kanban, KernelSettings, PermissionStatus
from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.fake_telegram import ALICE_ID, TOKEN, FakeTelegram, Sent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
AGENT = ROOT / "tests" / "support" / "fake_acp_agent.py"
BOB = {"id": 7, "is_bot": False, "first_name": "Bob", "username": "bob"}
WAIT = 60.0


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    telegram = FakeTelegram()
    await telegram.start()
    try:
        yield telegram
    finally:
        await telegram.stop()


def configure(home: Path, fake: FakeTelegram, state: Path) -> None:
    """The example, with Telegram on (pointed at the fake) and an ACP assignee."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    telegram = document["platforms"]["telegram"]
    telegram["enabled"] = True
    telegram["api_base_url"] = fake.base_url
    telegram["poll_timeout"] = 1
    document["access"]["users"] = {f"telegram:{ALICE_ID}": "operator", "telegram:7": "viewer"}
    steps = [
        {
            "ask": {"kind": "execute", "title": "Bash", "input": {"command": "make deploy"}},
            "record": "answer",
        },
        {"run": [sys.executable, "-m", "kanban_core", "complete", "--summary", "deployed"]},
    ]
    document["assignees"] = {
        "asker": {
            "preset": "acp",
            "command": [sys.executable, str(AGENT)],
            "env": {"FAKE_ACP_SCRIPT": json.dumps(steps), "FAKE_ACP_OUT": str(state)},
            "sandbox": {"read": [str(AGENT.parent)], "write": [str(state)]},
        }
    }
    text = yaml.safe_dump(document, sort_keys=False)
    (home / "config.yaml").write_text(text, encoding="utf-8")


class Gateway:
    """``kanban gateway`` as a subprocess, started and stopped as a user would."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.tmp_path = tmp_path
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KANBAN_HOME": str(home),
            "TELEGRAM_BOT_TOKEN": TOKEN,
        }
        self.log = tmp_path / "gateway.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, fake: FakeTelegram) -> None:
        polls = len(fake.calls_of("getUpdates"))
        with self.log.open("ab") as stderr:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.cli",
                "gateway",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=self.env,
                cwd=self.tmp_path,
            )
        await fake.wait_for(lambda: len(fake.calls_of("getUpdates")) > polls, WAIT)

    async def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            return await self.process.wait()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


def the_card(fake: FakeTelegram) -> Sent | None:
    return next((m for m in fake.sent_to(ALICE_ID) if "asks to run" in m.text), None)


def recorded(state: Path, name: str) -> dict[str, Any] | None:
    path = state / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


async def test_a_permission_asked_by_an_acp_agent_is_answered_from_telegram(tmp_path, fake):
    home, state = tmp_path / "home", tmp_path / "state"
    home.mkdir()
    state.mkdir()
    configure(home, fake, state)
    gateway = Gateway(tmp_path, home)
    try:
        await gateway.start(fake)
        await fake.push_text('/kanban create "deploy it" --assignee asker')
        card = await fake.wait_for(lambda: the_card(fake), WAIT)
        assert "make deploy" in card.text
        allow = card.callback_data[0]
        ref = allow.split()[-1]
        assert card.callback_data == [
            f"k:kanban allow {ref}",
            f"k:kanban allow {ref} --run",
            f"k:kanban deny {ref}",
        ]

        # The gateway goes away and comes back while the agent waits for its answer.
        assert await gateway.stop() == 0
        await gateway.start(fake)
        assert recorded(state, "answer") is None

        await fake.press(card, allow, user=BOB)
        await fake.wait_for(
            lambda: any("needs the operator role" in m.text for m in fake.sent_to(ALICE_ID)), WAIT
        )
        assert recorded(state, "answer") is None

        await fake.press(card, allow)
        await fake.wait_for(
            lambda: any(m.text.startswith("✔ t1") for m in fake.sent_to(ALICE_ID)), WAIT
        )
        assert recorded(state, "answer") == {"outcome": "yes-1"}
        assert await gateway.stop() == 0
    finally:
        await gateway.kill()
    settings = KernelSettings(home=home, db_url=f"sqlite:///{home / 'kanban.db'}")
    with Kanban.open(settings) as board:
        request = board.permission(ref)
        assert request.status is PermissionStatus.ALLOWED
        assert request.answered_by is not None
        assert str(ALICE_ID) in request.answered_by
    assert TOKEN not in gateway.log.read_text(encoding="utf-8")
