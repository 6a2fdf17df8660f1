"""``kanban gateway`` run on config.example.yaml as a user copies it: Slack enabled exactly as
documented, the real slack-bolt adapter against the fake Slack, a command answered, SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.fake_slack import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, FakeSlack
from tests.support.processes import start_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


def copy_example(home: Path, fake: FakeSlack) -> Path:
    """The example with ``platforms.slack.enabled: true``, and the fake as the server to talk to."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    slack = document["platforms"]["slack"]
    assert slack["enabled"] is False  # the example ships everything off
    slack["enabled"] = True
    slack["api_base_url"] = fake.base_url  # a documented key the example leaves commented out
    path = home / "config.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


async def wait_until_connected(fake: FakeSlack, gateway: asyncio.subprocess.Process) -> None:
    """Until the gateway's Socket Mode connection is open; fail early if the gateway exits."""
    async with asyncio.timeout(START_TIMEOUT_S):
        while fake.open_sockets == 0:
            assert gateway.returncode is None, "the gateway exited before connecting"
            try:
                await fake.wait_for(lambda: fake.open_sockets > 0)
            except TimeoutError:
                continue  # the fake's own deadline is short; ours covers a cold start


async def test_slack_enabled_as_the_example_documents_it_starts_and_answers(tmp_path, fake):
    home = tmp_path / "home"
    home.mkdir()
    copy_example(home, fake)
    # The variables the example's *_env keys name.
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    }
    log = tmp_path / "gateway.log"
    gateway = await start_gateway(home, log, env)
    try:
        try:
            await wait_until_connected(fake, gateway)
        except (AssertionError, TimeoutError):
            pytest.fail(f"slack did not start:\n{log.read_text(encoding='utf-8')}")
        assert [call.method for call in fake.calls_to("auth.test")] != []
        # U0123ABCD is the example's operator.
        slash = fake.slash_payload("list", user="U0123ABCD", user_name="ops")
        envelope = await fake.socket_push("slash_commands", slash)
        await fake.wait_for_ack(envelope)
        await fake.wait_for(lambda: len(fake.responses) == 1)
        assert "no matching tasks" in fake.responses[0][1]["text"]

        gateway.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STOP_TIMEOUT_S):
            code = await gateway.wait()
        assert code == 0, log.read_text(encoding="utf-8")
        await fake.wait_for(lambda: fake.open_sockets == 0)
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
    text = log.read_text(encoding="utf-8")
    assert "adapter slack started" in text
    assert BOT_TOKEN not in text
    assert APP_TOKEN not in text
