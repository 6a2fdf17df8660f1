"""``/web`` in the platforms' menus: the web surface's chat command reaches Telegram's
setMyCommands and Discord's app commands, and the Discord one answers ephemerally.

The gateway's wiring, piece by piece as ``kanban gateway`` does it: the web surface made from
config.example.yaml with the board on, the menu from ``chat_menu(surface_menu(...))``, the real
Router with the surface's chat commands as the adapters' sink, the real SDKs against the fakes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.router import Router
from gateway.slash import SLASH_COMMANDS, chat_menu
from gateway.surfaces import SurfaceContext, surface_menu
from kanban_core import Kanban, KernelSettings
from tests.e2e import test_discord as discord_e2e, test_telegram as telegram_e2e
from tests.e2e.fake_discord import DM_CHANNEL_ID, EPHEMERAL, USER_ID, FakeDiscord
from tests.support.fake_telegram import ALICE_ID, TOKEN_ENV, FakeTelegram
from tests.support.network import closed_port
from tests.support.processes import start_gateway
from web import store
from web.surface import WebSurface, create

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
telegram_fake = telegram_e2e.fake
discord_fake = discord_e2e.fake
EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
WAIT = 10.0


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Kanban]:
    with Kanban.open(KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path}/k.db")) as k:
        yield k


@pytest.fixture
def executor() -> Iterator[KernelExecutor]:
    pool = KernelExecutor(threads=1)
    yield pool
    pool.shutdown()


@pytest.fixture
def access() -> AccessPolicy:
    return AccessPolicy(users={f"discord:{USER_ID}": Role.OPERATOR})


@pytest.fixture
def surface(
    board: Kanban, executor: KernelExecutor, access: AccessPolicy, tmp_path: Path
) -> Iterator[WebSurface]:
    """The web surface from the example config with the board turned on."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("web:\n  enabled: false", "web:\n  enabled: true", 1)
    text = text.replace("  port: 8787\n", f"  port: {closed_port()}\n", 1)
    config = tmp_path / "config.yaml"
    config.write_text(text, encoding="utf-8")
    context = SurfaceContext(board, executor, access, {}, config, lambda: None)
    made = create(context)
    assert isinstance(made, WebSurface)
    yield made
    made._sock.close()


@pytest.fixture
def router(
    board: Kanban, executor: KernelExecutor, access: AccessPolicy, surface: WebSurface
) -> Router:
    return Router(board, access, executor, chat_commands=surface.chat_commands)


async def test_telegram_lists_web_in_its_menu(
    telegram_fake: FakeTelegram, surface: WebSurface, router: Router
) -> None:
    adapter = telegram_e2e.make_adapter(telegram_fake)
    await adapter.start(router.handle, menu=chat_menu(surface_menu([surface])))
    try:
        names = [entry["command"] for entry in telegram_fake.commands]
        assert names[: len(SLASH_COMMANDS)] == [c.menu_name for c in SLASH_COMMANDS]
        (web,) = [e for e in telegram_fake.commands if e["command"] == "web"]
        assert "sign-in link" in web["description"]
    finally:
        await adapter.stop()


@pytest.fixture
async def discord(
    discord_fake: FakeDiscord, surface: WebSurface, router: Router
) -> AsyncIterator[FakeDiscord]:
    adapter = discord_e2e.make_adapter(discord_fake)
    await adapter.start(router.handle, menu=chat_menu(surface_menu([surface])))
    try:
        yield discord_fake
    finally:
        await adapter.stop()


async def test_discord_web_in_a_dm_answers_the_link_ephemerally(
    discord: FakeDiscord, board: Kanban
) -> None:
    assert "web" in {command["name"] for command in discord.commands}
    interaction = await discord.slash(None, command="web", dm=True)
    await discord.wait_for(lambda: discord.replies_to(interaction), timeout=WAIT)
    (callback,) = discord.callbacks_for(interaction)
    assert callback["type"] == 5  # deferred, with the "thinking…" placeholder
    assert callback["data"]["flags"] & EPHEMERAL
    (reply,) = discord.replies_to(interaction)
    assert reply.channel_id == DM_CHANNEL_ID
    assert reply.payload["flags"] & EPHEMERAL
    assert "/auth/link?token=" in reply.content
    assert "as operator" in reply.content
    # The web surface's handler made it: the link signs in the Discord user who asked.
    token = reply.content.split("token=", 1)[1].split()[0]
    with board.db.transaction(write=True) as tx:
        assert store.consume_link(tx, token) == f"discord:{USER_ID}"


async def test_discord_web_in_a_channel_refuses_ephemerally(discord: FakeDiscord) -> None:
    interaction = await discord.slash(None, command="web")
    await discord.wait_for(lambda: discord.replies_to(interaction), timeout=WAIT)
    (reply,) = discord.replies_to(interaction)
    assert reply.payload["flags"] & EPHEMERAL
    assert "only works in a private chat" in reply.content
    assert "token=" not in reply.content


async def test_discord_other_commands_stay_public(discord: FakeDiscord) -> None:
    interaction = await discord.slash("list")
    await discord.wait_for(lambda: discord.replies_to(interaction), timeout=WAIT)
    (callback,) = discord.callbacks_for(interaction)
    assert not (callback.get("data") or {}).get("flags", 0) & EPHEMERAL


async def test_kanban_gateway_puts_web_in_the_telegram_menu_and_answers_it(
    telegram_fake: FakeTelegram, tmp_path: Path
) -> None:
    """The whole process: ``kanban gateway`` with the board and Telegram on (the example
    config as a user edits it) registers ``/web`` and answers it in a private chat."""
    home = tmp_path / "home"
    home.mkdir()
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["web"] |= {"enabled": True, "port": closed_port()}
    config["platforms"]["telegram"] |= {
        "enabled": True,
        "token_env": TOKEN_ENV,
        "api_base_url": telegram_fake.base_url,
        "poll_timeout": 1,
    }
    config["access"]["users"] = {f"telegram:{ALICE_ID}": "operator"}
    (home / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {"PTB_TIMEDELTA": "1", TOKEN_ENV: telegram_fake.token}
    log = tmp_path / "gateway.log"
    process = await start_gateway(home, log, env)
    try:
        await telegram_fake.wait_for(lambda: telegram_fake.commands, timeout=60)
        names = [entry["command"] for entry in telegram_fake.commands]
        assert "web" in names, log.read_text()
        assert names.index("web") == len(SLASH_COMMANDS)  # after the shared ones
        await telegram_fake.push_text("/web")
        (reply,) = await telegram_fake.wait_for(lambda: telegram_fake.sent_to(ALICE_ID), timeout=30)
        assert "/auth/link?token=" in reply.text
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await process.wait() == 0, log.read_text()
