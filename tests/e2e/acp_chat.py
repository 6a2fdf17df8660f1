"""Shared harness of the "agents ask, the phone answers" scenarios on Telegram.

``kanban gateway`` runs as a subprocess with config.example.yaml as a user copies it: Telegram
on (pointed at the fake Bot API), people in ``access``, and one assignee ``asker`` that runs the
scripted fake ACP agent on the official SDK (tests/support/fake_acp_agent.py). The real
dispatcher and worker supervisors run it; the real python-telegram-bot speaks to the fake.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from kanban_core import Kanban, KernelSettings
from tests.support.fake_telegram import ALICE_ID, TOKEN, FakeTelegram, Sent
from tests.support.processes import spawn_gateway

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
AGENT = ROOT / "tests" / "support" / "fake_acp_agent.py"
BOB = {"id": 7, "is_bot": False, "first_name": "Bob", "username": "bob"}
CAROL = {"id": 8, "is_bot": False, "first_name": "Carol", "username": "carol"}
#: Alice and Carol are operators; Bob only watches.
USERS = {f"telegram:{ALICE_ID}": "operator", "telegram:7": "viewer", "telegram:8": "operator"}
#: A run is a supervisor, the agent and `kanban complete`: seconds, not milliseconds.
WAIT = 60.0
#: The agent asks to run ``make deploy`` (recorded as ``answer``), then completes.
ASK_THEN_COMPLETE: list[dict[str, Any]] = [
    {
        "ask": {"kind": "execute", "title": "Bash", "input": {"command": "make deploy"}},
        "record": "answer",
    },
    {"run": [sys.executable, "-m", "kanban_core", "complete", "--summary", "deployed"]},
]


def complete(summary: str = "deployed") -> dict[str, Any]:
    """The script step that records the agent's verdict through its door."""
    return {"run": [sys.executable, "-m", "kanban_core", "complete", "--summary", summary]}


def configure(
    home: Path,
    fake: FakeTelegram,
    state: Path,
    steps: list[dict[str, Any]],
    *,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """The example, with Telegram on the fake, :data:`USERS`, and ``asker`` running ``steps``."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    telegram = document["platforms"]["telegram"]
    telegram["enabled"] = True
    telegram["api_base_url"] = fake.base_url
    telegram["poll_timeout"] = 1
    document["access"]["users"] = dict(USERS)
    document["assignees"] = {
        "asker": {
            "preset": "acp",
            "command": [sys.executable, str(AGENT)],
            "env": {"FAKE_ACP_SCRIPT": json.dumps(steps), "FAKE_ACP_OUT": str(state)},
            "sandbox": {"read": [str(AGENT.parent)], "write": [str(state)]},
        }
    }
    if edit is not None:
        edit(document)
    text = yaml.safe_dump(document, sort_keys=False)
    (home / "config.yaml").write_text(text, encoding="utf-8")


class Gateway:
    """``kanban gateway`` as a subprocess, started and stopped as a user would."""

    def __init__(self, tmp_path: Path, home: Path) -> None:
        self.tmp_path = tmp_path
        self.home = home
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
        self.process = await spawn_gateway(
            self.env, self.log, cwd=self.tmp_path, log_level=None, append=True
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

    def board(self) -> Kanban:
        """The gateway's board, opened from the test (close it)."""
        return Kanban.open(
            KernelSettings(home=self.home, db_url=f"sqlite:///{self.home / 'kanban.db'}")
        )


def cards(fake: FakeTelegram, chat_id: int = ALICE_ID) -> list[Sent]:
    """The permission cards sent to ``chat_id`` (open, or settled in place)."""
    return [m for m in fake.sent_to(chat_id) if "asks to run" in m.text or "asked to" in m.text]


def the_card(fake: FakeTelegram, chat_id: int = ALICE_ID) -> Sent | None:
    return next(iter(cards(fake, chat_id)), None)


def said(fake: FakeTelegram, needle: str, chat_id: int = ALICE_ID) -> Sent | None:
    """The first message to ``chat_id`` that contains ``needle``."""
    return next((m for m in fake.sent_to(chat_id) if needle in m.text), None)


def recorded(state: Path, name: str) -> dict[str, Any] | None:
    """What the fake agent recorded under ``name``, if it has."""
    path = state / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


async def told(fake: FakeTelegram, needle: str, chat_id: int = ALICE_ID) -> str:
    """The text of the first message to ``chat_id`` with ``needle``, once there is one."""
    message = await fake.wait_for(lambda: said(fake, needle, chat_id), WAIT)
    assert message is not None
    return message.text
