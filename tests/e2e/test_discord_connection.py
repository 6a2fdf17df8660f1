"""Discord's gateway connection: unreachable at start, lost while running; quiet logs."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from discord.voice_client import VoiceClient

from adapters.discord import DiscordAdapter
from gateway import AdapterError, ChatRef, Document, IncomingMessage
from tests.e2e import test_discord as discord_e2e
from tests.e2e.fake_discord import FakeDiscord
from tests.support.network import Relay, closed_port, until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = discord_e2e.anyio_backend
fake = discord_e2e.fake
WAIT = 15.0
ROOT = Path(__file__).resolve().parents[2]


class Received:
    """A sink recording the delivery ids that arrived."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    async def __call__(self, message: IncomingMessage) -> Document | None:
        self.ids.append(message.delivery_id)
        return Document.text("ok")


@pytest.fixture
async def relay(fake: FakeDiscord) -> AsyncIterator[Relay]:
    port = int(fake.gateway_url.split(":")[2].split("/")[0])
    relay = Relay(port)
    await relay.start()
    fake.resume_url = f"ws://127.0.0.1:{relay.port}/gateway"
    yield relay
    await relay.cut()


async def test_unreachable_gateway_at_start_fails_in_one_line(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/gateway"
    adapter = discord_e2e.make_adapter(fake, gateway_url=url)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AdapterError) as raised:
        await asyncio.wait_for(adapter.start(Received()), WAIT)

    message = str(raised.value)
    assert message.startswith(f"discord: cannot reach the gateway at {url}: "), message
    assert "\n" not in message
    assert "sequence" not in message
    # REST worked (login and command sync); nothing logged a traceback or an error on the way.
    assert any(call.route.startswith("PUT /applications") for call in fake.calls)
    loud = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert loud == []
    await adapter.stop()  # a second stop after the failed start is quiet too
    with pytest.raises(AdapterError, match="not started"):
        await adapter.send(ChatRef("discord", "1"), Document.text("late"))


async def test_connection_lost_while_running_is_retried_with_backoff(
    fake: FakeDiscord, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    adapter: DiscordAdapter = discord_e2e.make_adapter(
        fake, gateway_url=f"ws://127.0.0.1:{relay.port}/gateway"
    )
    sink = Received()
    await adapter.start(sink)
    try:
        caplog.set_level(logging.INFO)
        await relay.cut()  # the network goes away: the link drops, new connections are refused

        def retries() -> list[logging.LogRecord]:
            return [r for r in caplog.records if "cannot reach the gateway" in r.getMessage()]

        await until(retries)
        assert all(r.levelno == logging.WARNING and not r.exc_info for r in retries())
        assert "retrying in" in retries()[0].getMessage()

        await relay.start()  # the network is back: discord.py resumes the session
        await fake.wait_for(lambda: fake.resumes and fake.gateway_open, timeout=WAIT)
        interaction = await fake.slash("list")
        await fake.wait_for(lambda: fake.replies_to(interaction), timeout=WAIT)
        assert sink.ids == [str(interaction)]
    finally:
        await adapter.stop()


async def test_a_connection_discord_ends_for_good_is_logged_once(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = discord_e2e.make_adapter(fake)
    await adapter.start(Received())
    try:
        caplog.set_level(logging.INFO)
        await fake.close_gateway(4004)  # the token was revoked: discord.py stops retrying

        def ended() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if "connection ended for good" in r.getMessage()
            ]

        await until(ended)
        [line] = ended()
        assert line.startswith("discord: the gateway connection ended for good ("), line
        assert "4004" in line, line
        assert line.endswith("; restart the gateway"), line
    finally:
        await adapter.stop()


async def test_start_does_not_warn_about_voice_support(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # discord.py warns once per process; pretend this is the process's first client.
    monkeypatch.setattr(VoiceClient, "warn_nacl", True)
    monkeypatch.setattr(VoiceClient, "warn_dave", True)
    caplog.set_level(logging.INFO)
    adapter = discord_e2e.make_adapter(fake)
    await adapter.start(Received())
    await adapter.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    # Only those two lines are dropped: discord.py's other client messages still come through.
    assert any(r.name == "discord.client" for r in caplog.records)


async def test_gateway_process_exits_1_with_one_line_when_the_gateway_is_unreachable(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    # config.example.yaml as a user would adapt it: Discord enabled, pointed at the fake, whose
    # REST API answers while the websocket URL leads nowhere.
    document = yaml.safe_load((ROOT / "config.example.yaml").read_text(encoding="utf-8"))
    url = f"ws://127.0.0.1:{closed_port()}/gateway"
    document["platforms"]["discord"].update(
        enabled=True, api_base_url=fake.api_base_url, gateway_url=url, guild_ready_timeout=0.05
    )
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env |= {"KANBAN_HOME": str(home), "DISCORD_BOT_TOKEN": fake.token}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "gateway",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 1, err.decode()
    text = err.decode()
    assert "Traceback" not in text, text
    assert "voice" not in text, text
    assert "sequence" not in text, text
    problems = [line for line in text.splitlines() if url in line]
    assert len(problems) == 1, text
    assert f"discord: cannot reach the gateway at {url}: Cannot connect" in problems[0], text
    assert out == b""


async def test_an_unreachable_api_at_start_fails_in_one_line(fake: FakeDiscord) -> None:
    root = f"http://127.0.0.1:{closed_port()}"  # api_base_url is the server's root
    adapter = discord_e2e.make_adapter(fake, api_base_url=root)
    url = f"{root}/api/v10"
    with pytest.raises(AdapterError) as raised:
        await asyncio.wait_for(adapter.start(Received()), WAIT)
    message = str(raised.value)
    assert message.startswith(f"discord: cannot reach the API at {url}: Cannot connect"), message
    assert fake.calls == []
    await adapter.stop()
