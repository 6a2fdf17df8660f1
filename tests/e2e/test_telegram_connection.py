"""Telegram's Bot API connection: unreachable at start, lost while polling, in one log line each."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from adapters.telegram import create
from gateway import AdapterError
from tests.e2e import test_telegram as telegram_e2e
from tests.support.fake_telegram import TOKEN_ENV, FakeTelegram
from tests.support.network import Relay, closed_port, until

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake


@pytest.fixture
async def relay(fake: FakeTelegram) -> AsyncIterator[Relay]:
    relay = Relay(int(fake.base_url.rsplit(":", 1)[1]))
    await relay.start()
    yield relay
    await relay.cut()


def loud(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]


async def test_unreachable_bot_api_at_start_fails_in_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    adapter = create({"token_env": TOKEN_ENV, "api_base_url": url}, {TOKEN_ENV: "1:secret"})
    caplog.set_level(logging.INFO)

    with pytest.raises(AdapterError) as raised:
        await adapter.start(telegram_e2e.Sink())

    message = str(raised.value)
    assert message.startswith(f"telegram: cannot reach the Bot API at {url} (getMe failed): ")
    assert "\n" not in message
    assert "secret" not in message
    assert loud(caplog) == []
    await adapter.stop()


async def test_polling_outage_is_retried_and_logged_in_one_line(
    fake: FakeTelegram, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"token_env": TOKEN_ENV, "api_base_url": f"http://127.0.0.1:{relay.port}"}
    adapter = create({**config, "poll_timeout": 1}, {TOKEN_ENV: fake.token})
    sink = telegram_e2e.Sink()
    await adapter.start(sink)
    try:
        caplog.set_level(logging.INFO)
        await relay.cut()
        await until(lambda: loud(caplog))
        await relay.start()
        await fake.push_text("/kanban list")
        await until(lambda: sink.received)
        assert [m.text for m in sink.received] == ["list"]
        for record in loud(caplog):
            message = record.getMessage()
            assert record.levelno == logging.WARNING, message
            assert not record.exc_info, message
            assert message.startswith("telegram: polling http://127.0.0.1:"), message
            assert fake.token not in message
    finally:
        await adapter.stop()
