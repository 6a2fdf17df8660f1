"""Slack Socket Mode's websocket: unreachable at start, lost while running, in one log line each."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from adapters.slack import create
from gateway import AdapterError
from tests.e2e import test_slack as slack_e2e
from tests.e2e.fake_slack import APP_TOKEN, FakeSlack
from tests.support.network import Relay, closed_port, until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = slack_e2e.anyio_backend
fake = slack_e2e.fake
sink = slack_e2e.sink
ENV = slack_e2e.ENV


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


@pytest.fixture
async def relay(fake: FakeSlack) -> AsyncIterator[Relay]:
    relay = Relay(fake.port)
    await relay.start()
    # apps.connections.open hands out the relay, as Slack hands out its websocket host.
    fake.socket_url = f"ws://127.0.0.1:{relay.port}/link?ticket=one-time"
    yield relay
    await relay.cut()


async def test_unreachable_socket_at_start_fails_in_one_line(
    fake: FakeSlack, sink: slack_e2e.Sink, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"ws://127.0.0.1:{closed_port()}/link"
    fake.socket_url = f"{url}?ticket=one-time"
    adapter = create({"mode": "socket", "api_base_url": fake.base_url}, ENV)
    caplog.set_level(logging.INFO)

    with pytest.raises(AdapterError) as raised:
        await adapter.start(sink)

    message = str(raised.value)
    assert message.startswith(f"slack: cannot reach the Socket Mode websocket at {url}: "), message
    assert "\n" not in message
    assert "ticket" not in caplog.text + message
    assert loud(caplog) == []
    await adapter.stop()


async def test_socket_lost_while_running_is_reconnected(
    fake: FakeSlack, sink: slack_e2e.Sink, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    adapter = create({"mode": "socket", "api_base_url": fake.base_url}, ENV)
    await adapter.start(sink)
    try:
        caplog.set_level(logging.INFO)
        await relay.cut()
        await until(lambda: loud(caplog), timeout=30)
        await relay.start()
        await until(lambda: fake.socket_connections == 2, timeout=30)
        envelope = await fake.socket_push("slash_commands", fake.slash_payload("list"))
        await fake.wait_for_ack(envelope)
        for record in loud(caplog):
            text = record.getMessage()
            assert record.levelno == logging.WARNING, text
            assert not record.exc_info, text
            assert text.startswith("slack: cannot reach the Socket Mode websocket at ws://"), text
            assert "ticket" not in text, text
            assert APP_TOKEN not in text, text
    finally:
        await adapter.stop()


async def test_an_unreachable_web_api_at_start_fails_in_one_line(sink: slack_e2e.Sink) -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/"
    adapter = create({"mode": "socket", "api_base_url": url}, ENV)
    with pytest.raises(AdapterError) as raised:
        await adapter.start(sink)
    message = str(raised.value)
    assert message.startswith(f"slack: cannot reach the Web API at {url} (auth.test failed): ")
    assert "\n" not in message
    await adapter.stop()
