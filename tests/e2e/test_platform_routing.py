"""Each chat platform end to end into the real Router: SDK + adapter + fake, a board on SQLite.

For Telegram, Discord and Slack the real SDK and our adapter run against the platform's loopback
fake, with the gateway's own Router (on a SQLite board in tmp_path) as the adapter's sink. Per
platform: an allowed user's ``create`` is answered where it was typed and subscribes that chat;
an unknown user is refused, audited and changes nothing; a redelivered delivery runs only once.

A redelivery produces nothing visible, so each redelivery test ends with a later command (a
"sentinel") from the same place: its reply proves the copy before it was already handled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import DiscordAdapter
from adapters.slack import SlackAdapter, create as create_slack
from adapters.telegram import TelegramAdapter
from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.router import Router
from kanban_core import Kanban, KernelSettings, TaskId
from kanban_core.board.audit import AuditEntry
from tests.e2e import (
    test_discord as discord_e2e,
    test_slack as slack_e2e,
    test_telegram as telegram_e2e,
)
from tests.e2e.fake_discord import CHANNEL_ID, HUMAN, THREAD_ID, USER_ID, FakeDiscord, Posted
from tests.e2e.fake_slack import BOT_USER_ID, FakeSlack
from tests.kanban_core.support import snapshot
from tests.support.fake_telegram import ALICE_ID, FakeTelegram, Sent

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

# The platform test modules' fixtures, under names that do not collide here (pytest registers a
# fixture under the attribute name it is found by). Telegram's autouse PTB_TIMEDELTA opt-in keeps
# its name so it applies to this module as it does to test_telegram.
anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
telegram_fake = telegram_e2e.fake
discord_fake = discord_e2e.fake
slack_fake = slack_e2e.fake

T1 = TaskId(1)
CREATE = 'create "x"'
WAIT = 10.0

TELEGRAM_USER = f"telegram:{ALICE_ID}"
TELEGRAM_STRANGER = {"id": 7, "is_bot": False, "first_name": "Mallory", "username": "mallory"}

DISCORD_USER = f"discord:{USER_ID}"
DISCORD_STRANGER_ID = 900000000000000099
DISCORD_STRANGER = {
    **HUMAN,
    "id": str(DISCORD_STRANGER_ID),
    "username": "mallory",
    "global_name": "Mallory",
}
DISCORD_DELETE_ORIGINAL = "DELETE /webhooks/{app_id}/{token}/messages/@original"

SLACK_USER_ID = "U0USER"  # FakeSlack's default sender
SLACK_USER = f"slack:{SLACK_USER_ID}"
SLACK_STRANGER_ID = "U0STRANGER"
SLACK_THREAD = "1700000000.000100"
SLACK_OTHER_THREAD = "1700000000.000200"


# -- the gateway side: a board on a SQLite file, the kernel executor, a router per platform ----


@pytest.fixture
def board(tmp_path: Path) -> Iterator[Kanban]:
    kanban = Kanban.open(KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path}/k.db"))
    try:
        yield kanban
    finally:
        kanban.close()


@pytest.fixture
def executor(board: Kanban) -> Iterator[KernelExecutor]:
    pool = KernelExecutor(threads=1)
    try:
        yield pool
    finally:
        pool.shutdown()


def router_for(board: Kanban, executor: KernelExecutor, user_key: str) -> Router:
    """The real router, with only ``user_key`` allowed (as an operator)."""
    return Router(board, AccessPolicy(users={user_key: Role.OPERATOR}), executor)


# -- the platforms, each started with the router as its sink ------------------------------------


@pytest.fixture
async def telegram(
    telegram_fake: FakeTelegram, board: Kanban, executor: KernelExecutor
) -> AsyncIterator[TelegramAdapter]:
    adapter = telegram_e2e.make_adapter(telegram_fake)
    await adapter.start(router_for(board, executor, TELEGRAM_USER).handle)
    try:
        yield adapter
    finally:
        await adapter.stop()


@pytest.fixture
async def discord(
    discord_fake: FakeDiscord, board: Kanban, executor: KernelExecutor
) -> AsyncIterator[DiscordAdapter]:
    # message_content: typed "/kanban …" messages are commands too (slash commands always are).
    adapter = discord_e2e.make_adapter(discord_fake, message_content=True)
    await adapter.start(router_for(board, executor, DISCORD_USER).handle)
    try:
        yield adapter
    finally:
        await adapter.stop()


@pytest.fixture
async def slack(
    slack_fake: FakeSlack, board: Kanban, executor: KernelExecutor
) -> AsyncIterator[SlackAdapter]:
    adapter = create_slack(slack_e2e.http_config(slack_fake), slack_e2e.ENV)
    await adapter.start(router_for(board, executor, SLACK_USER).handle)
    try:
        yield adapter
    finally:
        await adapter.stop()


# -- checks shared by every platform -------------------------------------------------------------


def assert_created_and_subscribed(
    board: Kanban, *, platform: str, chat_id: str, thread_id: str | None, user_id: str
) -> None:
    """Exactly one task, t1 "x", and one subscription: the chat (and thread) it came from."""
    assert [(task.id, task.title) for task in board.list()] == [(T1, "x")]
    [subscription] = board.subscriptions()
    assert (
        subscription.task_id,
        subscription.platform,
        subscription.chat_id,
        subscription.thread_id or None,
        subscription.user_id,
    ) == (T1, platform, chat_id, thread_id, user_id)


def assert_short_refusal(text: str, user_key: str) -> None:
    """The one-line "not allowed" answer, naming whom an admin should add."""
    assert "not allowed" in text, text
    assert user_key in text, text
    assert "\n" not in text.strip(), text
    assert len(text) < 200, text


def refusals_of(board: Kanban, user_id: str) -> list[AuditEntry]:
    return [
        e for e in board.audit_log(limit=1000) if e.outcome == "refused" and e.user_id == user_id
    ]


# -- Telegram ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chat_id", "chat_type", "topic"),
    [
        pytest.param(ALICE_ID, "private", None, id="private-chat"),
        pytest.param(telegram_e2e.FORUM, "supergroup", telegram_e2e.TOPIC, id="forum-topic"),
    ],
)
async def test_telegram_create_is_answered_in_place_and_subscribes_it(
    telegram_fake: FakeTelegram,
    telegram: TelegramAdapter,
    board: Kanban,
    chat_id: int,
    chat_type: str,
    topic: int | None,
):
    update = telegram_fake.message_update(
        f"/kanban {CREATE}", chat_id=chat_id, chat_type=chat_type, thread_id=topic
    )
    await telegram_fake.push(update)
    [reply] = await telegram_fake.wait_for(lambda: telegram_fake.sent_to(chat_id), WAIT)

    assert "Created t1" in reply.text
    assert "subscribed" in reply.text
    assert reply.message_thread_id == topic
    assert reply.reply_to == update["message"]["message_id"]
    assert_created_and_subscribed(
        board,
        platform="telegram",
        chat_id=str(chat_id),
        thread_id=None if topic is None else str(topic),
        user_id=str(ALICE_ID),
    )


async def test_telegram_unknown_user_is_refused_and_audited(
    telegram_fake: FakeTelegram, telegram: TelegramAdapter, board: Kanban
):
    before = snapshot(board)
    group = telegram_e2e.GROUP
    await telegram_fake.push_text(
        f"/kanban {CREATE}", chat_id=group, chat_type="group", user=TELEGRAM_STRANGER
    )
    [reply] = await telegram_fake.wait_for(lambda: telegram_fake.sent_to(group), WAIT)

    assert_short_refusal(reply.text, "telegram:7")
    assert snapshot(board) == before
    [entry] = refusals_of(board, "7")
    assert (entry.platform, entry.chat_id, entry.role, entry.text) == (
        "telegram",
        str(group),
        None,
        CREATE,
    )


async def test_telegram_redelivered_update_runs_once(
    telegram_fake: FakeTelegram, telegram: TelegramAdapter, board: Kanban
):
    update = telegram_fake.message_update(f"/kanban {CREATE}", update_id=5000)
    sentinel = telegram_fake.message_update("/kanban list", update_id=5001)
    await telegram_fake.push(update, update, sentinel)
    create_id = update["message"]["message_id"]
    sentinel_id = sentinel["message"]["message_id"]

    def replies_to(message_id: int) -> list[Sent]:
        return [m for m in telegram_fake.sent_to(ALICE_ID) if m.reply_to == message_id]

    # One chat's commands are handled in order, so the sentinel's reply comes after both copies.
    await telegram_fake.wait_for(lambda: replies_to(create_id) and replies_to(sentinel_id), WAIT)

    replies = replies_to(create_id)
    assert len(replies) == 1, [m.text for m in replies]
    assert "Created t1" in replies[0].text
    assert_created_and_subscribed(
        board, platform="telegram", chat_id=str(ALICE_ID), thread_id=None, user_id=str(ALICE_ID)
    )


# -- Discord -------------------------------------------------------------------------------------


def record_dispatches(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, dict[str, Any]]]:
    """Keep every gateway event the fake sends, so a test can send one again as it was."""
    sent: list[tuple[str, dict[str, Any]]] = []
    dispatch = fake.dispatch

    async def recording(event: str, data: dict[str, Any]) -> None:
        sent.append((event, data))
        await dispatch(event, data)

    monkeypatch.setattr(fake, "dispatch", recording)
    return sent


@pytest.mark.parametrize(
    ("channel_id", "thread_id"),
    [
        pytest.param(CHANNEL_ID, None, id="channel"),
        pytest.param(THREAD_ID, THREAD_ID, id="thread"),
    ],
)
async def test_discord_slash_create_is_answered_in_place_and_subscribes_it(
    discord_fake: FakeDiscord,
    discord: DiscordAdapter,
    board: Kanban,
    channel_id: int,
    thread_id: int | None,
):
    interaction = await discord_fake.slash(CREATE, channel_id=channel_id)
    [reply] = await discord_fake.wait_for(lambda: discord_fake.replies_to(interaction), WAIT)

    assert "Created t1" in reply.content
    assert "subscribed" in reply.content
    assert reply.channel_id == channel_id
    assert_created_and_subscribed(
        board,
        platform="discord",
        chat_id=str(CHANNEL_ID),
        thread_id=None if thread_id is None else str(thread_id),
        user_id=str(USER_ID),
    )


async def test_discord_text_create_in_a_thread_is_answered_there(
    discord_fake: FakeDiscord, discord: DiscordAdapter, board: Kanban
):
    message_id = await discord_fake.message(f"/kanban {CREATE}", channel_id=THREAD_ID)
    [reply] = await discord_fake.wait_for(lambda: discord_fake.posted_to(THREAD_ID), WAIT)

    assert "Created t1" in reply.content
    assert int(reply.payload["message_reference"]["message_id"]) == message_id
    assert_created_and_subscribed(
        board,
        platform="discord",
        chat_id=str(CHANNEL_ID),
        thread_id=str(THREAD_ID),
        user_id=str(USER_ID),
    )


async def test_discord_unknown_user_is_refused_and_audited(
    discord_fake: FakeDiscord, discord: DiscordAdapter, board: Kanban
):
    before = snapshot(board)
    interaction = await discord_fake.slash(CREATE, user=DISCORD_STRANGER)
    [reply] = await discord_fake.wait_for(lambda: discord_fake.replies_to(interaction), WAIT)

    assert reply.channel_id == CHANNEL_ID
    assert_short_refusal(reply.content, f"discord:{DISCORD_STRANGER_ID}")
    assert snapshot(board) == before
    [entry] = refusals_of(board, str(DISCORD_STRANGER_ID))
    assert (entry.platform, entry.chat_id, entry.role, entry.text) == (
        "discord",
        str(CHANNEL_ID),
        None,
        CREATE,
    )


async def test_discord_redelivered_interaction_runs_once(
    discord_fake: FakeDiscord,
    discord: DiscordAdapter,
    board: Kanban,
    monkeypatch: pytest.MonkeyPatch,
):
    dispatched = record_dispatches(discord_fake, monkeypatch)
    interaction = await discord_fake.slash(CREATE)
    await discord_fake.wait_for(lambda: discord_fake.replies_to(interaction), WAIT)
    [(event, data)] = dispatched
    assert (event, data["id"]) == ("INTERACTION_CREATE", str(interaction))

    await discord_fake.dispatch(event, data)  # the same interaction id again
    # The copy is deferred like any interaction; then it either answers or drops its placeholder.
    await discord_fake.wait_for(
        lambda: (
            len(discord_fake.callbacks_for(interaction)) == 2
            and (
                any(c.route == DISCORD_DELETE_ORIGINAL for c in discord_fake.calls)
                or len(discord_fake.replies_to(interaction)) > 1
            )
        ),
        WAIT,
    )

    replies = discord_fake.replies_to(interaction)
    assert len(replies) == 1, [p.content for p in replies]
    assert "Created t1" in replies[0].content
    assert_created_and_subscribed(
        board, platform="discord", chat_id=str(CHANNEL_ID), thread_id=None, user_id=str(USER_ID)
    )


async def test_discord_redelivered_message_runs_once(
    discord_fake: FakeDiscord,
    discord: DiscordAdapter,
    board: Kanban,
    monkeypatch: pytest.MonkeyPatch,
):
    dispatched = record_dispatches(discord_fake, monkeypatch)
    message_id = await discord_fake.message(f"/kanban {CREATE}")
    [(event, data)] = dispatched
    await discord_fake.dispatch(event, data)  # the same message id again
    # Events are handled in the order they arrive: the sentinel's reply comes after the copy's.
    sentinel = await discord_fake.message("/kanban list")

    def replies_to_message(wanted: int) -> list[Posted]:
        return [
            p
            for p in discord_fake.posted_to(CHANNEL_ID)
            if int(p.payload.get("message_reference", {}).get("message_id", 0)) == wanted
        ]

    await discord_fake.wait_for(
        lambda: replies_to_message(message_id) and replies_to_message(sentinel), WAIT
    )

    replies = replies_to_message(message_id)
    assert len(replies) == 1, [p.content for p in replies]
    assert "Created t1" in replies[0].content
    assert_created_and_subscribed(
        board, platform="discord", chat_id=str(CHANNEL_ID), thread_id=None, user_id=str(USER_ID)
    )


# -- Slack ---------------------------------------------------------------------------------------


async def test_slack_slash_create_is_answered_in_the_channel_and_subscribes_it(
    slack_fake: FakeSlack, slack: SlackAdapter, board: Kanban
):
    payload = slack_fake.slash_payload(CREATE, user=SLACK_USER_ID)
    result = await slack_fake.post_slash(slack_e2e.events_url(slack), payload)
    assert result.status == 200
    await slack_fake.wait_for(lambda: len(slack_fake.responses) == 1)

    [(rid, body)] = slack_fake.responses
    assert payload["response_url"].endswith(f"/response/{rid}")
    assert body["response_type"] == "in_channel"
    assert "Created t1" in body["text"]
    assert "subscribed" in body["text"]
    assert_created_and_subscribed(
        board, platform="slack", chat_id="C0001", thread_id=None, user_id=SLACK_USER_ID
    )


async def test_slack_mention_create_in_a_thread_is_answered_there_and_subscribes_it(
    slack_fake: FakeSlack, slack: SlackAdapter, board: Kanban
):
    event = slack_fake.mention_event(
        f"<@{BOT_USER_ID}> kanban {CREATE}", user=SLACK_USER_ID, thread_ts=SLACK_THREAD
    )
    result = await slack_fake.post_event(slack_e2e.events_url(slack), event)
    assert result.status == 200
    await slack_fake.wait_for(lambda: len(slack_fake.posts) == 1)

    [post] = slack_fake.posts
    assert (post["channel"], post.get("thread_ts")) == ("C0001", SLACK_THREAD)
    assert "Created t1" in post["text"]
    assert_created_and_subscribed(
        board, platform="slack", chat_id="C0001", thread_id=SLACK_THREAD, user_id=SLACK_USER_ID
    )


async def test_slack_unknown_user_is_refused_and_audited(
    slack_fake: FakeSlack, slack: SlackAdapter, board: Kanban
):
    before = snapshot(board)
    payload = slack_fake.slash_payload(CREATE, user=SLACK_STRANGER_ID, user_name="mallory")
    result = await slack_fake.post_slash(slack_e2e.events_url(slack), payload)
    assert result.status == 200
    await slack_fake.wait_for(lambda: len(slack_fake.responses) == 1)

    [(rid, body)] = slack_fake.responses
    assert payload["response_url"].endswith(f"/response/{rid}")
    assert_short_refusal(body["text"], f"slack:{SLACK_STRANGER_ID}")
    assert snapshot(board) == before
    [entry] = refusals_of(board, SLACK_STRANGER_ID)
    assert (entry.platform, entry.chat_id, entry.role, entry.text) == (
        "slack",
        "C0001",
        None,
        CREATE,
    )


async def test_slack_retried_event_runs_once(
    slack_fake: FakeSlack, slack: SlackAdapter, board: Kanban
):
    url = slack_e2e.events_url(slack)
    event = slack_fake.mention_event(
        f"<@{BOT_USER_ID}> kanban {CREATE}",
        user=SLACK_USER_ID,
        thread_ts=SLACK_THREAD,
        event_id="Ev0RETRY",
    )
    first = await slack_fake.post_event(url, event)
    retry = await slack_fake.post_event(
        url, event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (first.status, retry.status) == (200, 200)
    # Listeners start in the order events arrive, so the sentinel is routed after the retry.
    sentinel = slack_fake.mention_event(
        f"<@{BOT_USER_ID}> kanban list", user=SLACK_USER_ID, thread_ts=SLACK_OTHER_THREAD
    )
    assert (await slack_fake.post_event(url, sentinel)).status == 200

    def posts_in(thread_ts: str) -> list[dict[str, Any]]:
        return [p for p in slack_fake.posts if p.get("thread_ts") == thread_ts]

    await slack_fake.wait_for(lambda: bool(posts_in(SLACK_THREAD) and posts_in(SLACK_OTHER_THREAD)))

    replies = posts_in(SLACK_THREAD)
    assert len(replies) == 1, [p["text"] for p in replies]
    assert "Created t1" in replies[0]["text"]
    assert_created_and_subscribed(
        board, platform="slack", chat_id="C0001", thread_id=SLACK_THREAD, user_id=SLACK_USER_ID
    )
