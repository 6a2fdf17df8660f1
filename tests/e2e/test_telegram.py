"""The Telegram adapter with the real python-telegram-bot against a fake Bot API on loopback."""

from __future__ import annotations

import asyncio
import logging
import re
import traceback
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adapters.telegram import TelegramAdapter, create
from adapters.telegram_render import render_parts
from gateway import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    Block,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    Paragraph,
    Preformatted,
)
from gateway.messages import MessageKind
from gateway.slash import SLASH_COMMANDS
from tests.support.fake_telegram import (
    ALICE,
    ALICE_ID,
    BOT_ID,
    BOT_USERNAME,
    TOKEN,
    TOKEN_ENV,
    FakeTelegram,
    parse_telegram_html,
    running,
    utf16_len,
)

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

GROUP = -1001234
FORUM = -1005678
TOPIC = 77
WAIT = 10.0
FOOTER = Document(()).overflow_footer
_PRE = re.compile(r"<pre>(.*?)</pre>", re.DOTALL)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    # PTB 22 warns (an error under this suite's filterwarnings) whenever RetryAfter reads its
    # int retry_after; this is its documented opt-in to the timedelta the adapter also handles.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")


class Sink:
    """The gateway's side: records each command and answers with ``reply(message)``."""

    def __init__(self) -> None:
        self.received: list[IncomingMessage] = []
        self.reply: Callable[[IncomingMessage], Document | None] = lambda message: Document.text(
            f"echo: {message.text}"
        )

    async def __call__(self, message: IncomingMessage) -> Document | None:
        self.received.append(message)
        return self.reply(message)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with running() as server:
        yield server


def make_adapter(fake: FakeTelegram, token: str | None = TOKEN) -> TelegramAdapter:
    environ = {} if token is None else {TOKEN_ENV: token}
    config = {"token_env": TOKEN_ENV, "api_base_url": fake.base_url, "poll_timeout": 1}
    return create(config, environ)


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def adapter(fake: FakeTelegram, sink: Sink) -> AsyncIterator[TelegramAdapter]:
    telegram = make_adapter(fake)
    await telegram.start(sink)
    try:
        yield telegram
    finally:
        await telegram.stop()


def table(rows: int) -> Document:
    """A long listing: a heading, notes with markup characters, and a big table."""
    lines = [f"t{n:04d}  <todo> & 'review'  row-{n:04d}" for n in range(rows)]
    return Document(
        (
            Heading("Tasks <all> & more"),
            Paragraph('1 < 2 & "quotes" stay > plain'),
            Preformatted("ID     STATUS\n" + "\n".join(lines)),
            Paragraph("end of <listing>"),
        )
    )


def pre_contents(parts: list[str]) -> str:
    return "\n".join(match for part in parts for match in _PRE.findall(part))


# -- commands in, replies out --------------------------------------------------------------------


async def test_start_registers_the_command_menu(fake: FakeTelegram, adapter: TelegramAdapter):
    # Every slash command, under the underscore name Telegram's menu allows.
    assert fake.commands == [
        {"command": command.menu_name, "description": command.description}
        for command in SLASH_COMMANDS
    ]
    assert {"kanban", "new_session", "git_status", "set_active_repo"} <= {
        entry["command"] for entry in fake.commands
    }
    assert fake.calls_of("getMe")
    assert fake.calls_of("deleteWebhook")


async def test_a_private_command_is_answered_in_the_same_chat(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    update = fake.message_update('/kanban create "fix <b> & co"  --assignee bob')
    await fake.push(update)
    await fake.wait_for(lambda: fake.sent)

    [message] = sink.received
    assert (message.kind, message.command) == (MessageKind.COMMAND, "kanban")
    assert message.text == 'create "fix <b> & co"  --assignee bob'
    assert message.chat == ChatRef("telegram", str(ALICE_ID))
    assert message.user == ChatUser("telegram", str(ALICE_ID), "alice")
    assert message.user.key == "telegram:42"
    assert message.delivery_id == f"{BOT_ID}:{ALICE_ID}:{update['message']['message_id']}"
    [reply] = fake.sent
    assert reply.chat_id == ALICE_ID
    assert reply.message_thread_id is None
    assert reply.parse_mode == "HTML"
    assert reply.text == 'echo: create "fix &lt;b&gt; &amp; co"  --assignee bob'
    assert reply.reply_to is not None


async def test_the_bot_username_form_works_in_groups_and_other_bots_are_ignored(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    bob = {"id": 7, "is_bot": False, "first_name": "Bob", "last_name": "Stone"}
    await fake.push(
        fake.message_update("/kanban@other_bot list", chat_id=GROUP, chat_type="group"),
        fake.message_update(
            f"/kanban@{BOT_USERNAME} list --all", chat_id=GROUP, chat_type="group", user=bob
        ),
        fake.message_update("/kanban", chat_id=GROUP, chat_type="group"),
    )
    await fake.wait_for(lambda: len(fake.sent_to(GROUP)) == 2)

    assert [m.text for m in sink.received] == ["list --all", ""]
    assert sink.received[0].user == ChatUser("telegram", "7", "Bob Stone")
    assert sink.received[0].chat == ChatRef("telegram", str(GROUP))
    assert [m.text for m in fake.sent_to(GROUP)] == ["echo: list --all", "echo: "]


async def test_a_forum_topic_command_is_answered_in_the_topic(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    await fake.push_text("/kanban show t1", chat_id=FORUM, chat_type="supergroup", thread_id=TOPIC)
    await fake.wait_for(lambda: fake.sent_to(FORUM))

    assert sink.received[0].chat == ChatRef("telegram", str(FORUM), str(TOPIC))
    assert [m.message_thread_id for m in fake.sent_to(FORUM)] == [TOPIC]


async def test_a_reply_chain_in_a_plain_group_is_not_a_topic(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    # Outside forums message_thread_id names a reply chain; the fake refuses sending to it.
    update = fake.message_update("/kanban list", chat_id=GROUP, chat_type="supergroup")
    update["message"]["message_thread_id"] = 5
    await fake.push(update)
    await fake.wait_for(lambda: fake.sent_to(GROUP))

    assert sink.received[0].chat.thread_id is None
    assert fake.sent_to(GROUP)[0].message_thread_id is None


async def test_the_delivery_id_names_bot_chat_and_message_and_redeliveries_are_passed_on(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    # Dedupe is the router's job: the adapter hands on every copy with the same id, one that
    # no other message of any chat (or of a later bot, or after an update-id reset) can have.
    update = fake.message_update("/kanban list", update_id=5000, message_id=7)
    same_number_elsewhere = fake.message_update(
        "/kanban list", chat_id=GROUP, chat_type="group", update_id=5001, message_id=7
    )
    await fake.push(update, update, same_number_elsewhere)
    await fake.wait_for(lambda: len(fake.sent) == 3)

    assert sorted(m.delivery_id for m in sink.received) == [
        f"{BOT_ID}:{GROUP}:7",
        f"{BOT_ID}:{ALICE_ID}:7",
        f"{BOT_ID}:{ALICE_ID}:7",
    ]


async def test_a_sink_failure_is_answered_not_raised(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink, caplog: pytest.LogCaptureFixture
):
    def broken(message: IncomingMessage) -> Document:
        raise RuntimeError("router bug")

    sink.reply = broken
    await fake.push_text("/kanban list")
    await fake.wait_for(lambda: fake.sent)

    assert "failed" in fake.sent[0].text
    assert "router bug" in caplog.text


async def test_no_reply_sends_nothing(fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink):
    sink.reply = lambda message: None if message.text == "quiet" else Document.text("loud")
    await fake.push_text("/kanban quiet")
    await fake.push_text("/kanban noisy")
    await fake.wait_for(lambda: fake.sent)

    assert [m.text for m in fake.sent] == ["loud"]
    assert [m.text for m in sink.received] == ["quiet", "noisy"]


# -- long output ---------------------------------------------------------------------------------


async def test_long_output_is_split_into_valid_parts_in_the_topic(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    document = table(300)
    sink.reply = lambda message: document
    await fake.push_text("/kanban list", chat_id=FORUM, chat_type="supergroup", thread_id=TOPIC)
    await fake.wait_for(lambda: any("end of &lt;listing&gt;" in m.text for m in fake.sent))

    parts = [m.text for m in fake.sent_to(FORUM)]
    assert 2 <= len(parts) <= 5
    assert all(len(part) <= 4096 for part in parts)
    assert all(parse_telegram_html(part) for part in parts)
    assert {m.message_thread_id for m in fake.sent_to(FORUM)} == {TOPIC}
    assert not [call for call in fake.calls_of("sendMessage") if call.status != 200]
    # Every row of the table arrives once, in order, inside a code block.
    rows = re.findall(r"row-(\d{4})", pre_contents(parts))
    assert rows == [f"{n:04d}" for n in range(300)]
    assert parts[0].startswith("<b>Tasks &lt;all&gt; &amp; more</b>\n")
    assert FOOTER not in parts[-1]


async def test_overlong_output_stops_at_five_parts_with_the_footer(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    sink.reply = lambda message: table(2000)
    await fake.push_text("/kanban list --all")
    await fake.wait_for(lambda: any(FOOTER in m.text for m in fake.sent))

    parts = [m.text for m in fake.sent]
    assert len(parts) == 5
    assert all(len(part) <= 4096 and parse_telegram_html(part) for part in parts)
    # The footer is plain text after the code block is closed.
    assert parts[-1].endswith("</pre>\n" + FOOTER)


def test_render_parts_handles_long_lines_and_astral_characters():
    line = "&<>" * 3000
    emoji = "\N{CHECK MARK}\N{ROCKET}" * 3000
    parts = render_parts(
        Document((Heading(line), Paragraph(emoji), Preformatted(line + "\n" + emoji)))
    )
    assert len(parts) == 5
    for part in parts:
        assert utf16_len(part) <= 4096
        parse_telegram_html(part)


def test_render_parts_of_an_empty_document_is_nothing():
    assert render_parts(Document(())) == []
    assert render_parts(Document((Preformatted("\n\n"), Paragraph("")))) == []


_text = st.text(
    alphabet=st.sampled_from(["a", "Z", " ", "\n", "<", ">", "&", ";", "#", "\N{ROCKET}", "é"]),
    max_size=400,
)
_block = st.one_of(
    st.builds(Paragraph, _text), st.builds(Heading, _text), st.builds(Preformatted, _text)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.lists(_block, max_size=12), limit=st.integers(200, 900))
def test_every_part_is_valid_html_within_the_limit(blocks: list[Block], limit: int):
    document = Document(tuple(blocks), overflow_footer="… (cut)")
    parts = render_parts(document, limit=limit)

    assert len(parts) <= 5
    visible = ""
    for part in parts:
        assert utf16_len(part) <= limit
        visible += parse_telegram_html(part)
    if not parts or not parts[-1].endswith("… (cut)"):
        # Nothing visible is lost when nothing was cut.
        expected = "".join("".join(block.text.split()) for block in blocks)
        assert "".join(visible.split()) == expected


# -- flood control and errors --------------------------------------------------------------------


async def test_a_flood_wait_on_a_reply_is_waited_out_and_sent_once(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.fail_next(
        "sendMessage",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    await fake.push_text("/kanban list")
    await fake.wait_for(lambda: fake.sent)

    assert [call.status for call in fake.calls_of("sendMessage")] == [429, 200]
    assert [m.text for m in fake.sent] == ["echo: list"]
    assert loop.time() - started >= 0.9


async def test_a_long_flood_wait_on_a_reply_is_not_waited(
    fake: FakeTelegram, adapter: TelegramAdapter, caplog: pytest.LogCaptureFixture
):
    fake.fail_next(
        "sendMessage",
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many",
            "parameters": {"retry_after": 600},
        },
    )
    await fake.push_text("/kanban first")
    await fake.push_text("/kanban second")
    # One chat's commands are answered in order, so the second reply means the first is done.
    await fake.wait_for(lambda: fake.sent)

    assert [call.status for call in fake.calls_of("sendMessage")] == [429, 200]
    assert [m.text for m in fake.sent] == ["echo: second"]
    assert "retry after 600" in caplog.text


async def test_send_delivers_to_chats_and_topics(fake: FakeTelegram, adapter: TelegramAdapter):
    fake.add_chat(FORUM, topics=(TOPIC,))
    await adapter.send(ChatRef("telegram", str(FORUM), str(TOPIC)), Document.text("t1 <done>"))
    await adapter.send(ChatRef("telegram", str(FORUM)), Document.text("general"))

    assert [(m.text, m.message_thread_id) for m in fake.sent] == [
        ("t1 &lt;done&gt;", TOPIC),
        ("general", None),
    ]
    assert all(m.reply_to is None for m in fake.sent)


async def test_send_maps_flood_control_to_rate_limited(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.add_chat(GROUP)
    fake.fail_next("sendMessage", 429)
    with pytest.raises(AdapterRateLimited) as raised:
        await adapter.send(ChatRef("telegram", str(GROUP)), Document.text("hello"))
    assert raised.value.retry_after == 1
    assert not fake.sent


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (403, "Forbidden: bot was blocked by the user"),
        (403, "Forbidden: bot was kicked from the supergroup chat"),
        (400, "Bad Request: chat not found"),
    ],
)
async def test_send_maps_refusals_to_rejected(
    fake: FakeTelegram, adapter: TelegramAdapter, status: int, description: str
):
    fake.add_chat(GROUP)
    fake.fail_next(
        "sendMessage", status, {"ok": False, "error_code": status, "description": description}
    )
    with pytest.raises(AdapterRejected, match=f"(?i){description.split(': ', 1)[1]}"):
        await adapter.send(ChatRef("telegram", str(GROUP)), Document.text("hello"))


async def test_send_to_an_unknown_chat_or_topic_is_rejected(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.add_chat(FORUM, topics=(TOPIC,))
    with pytest.raises(AdapterRejected, match=r"(?i)chat not found"):
        await adapter.send(ChatRef("telegram", "-100999"), Document.text("hello"))
    with pytest.raises(AdapterRejected, match=r"(?i)thread not found"):
        await adapter.send(ChatRef("telegram", str(FORUM), "78"), Document.text("hello"))
    with pytest.raises(AdapterRejected):
        await adapter.send(ChatRef("slack", "C123"), Document.text("hello"))


async def test_send_maps_server_errors_to_adapter_error(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.add_chat(GROUP)
    fake.fail_next(
        "sendMessage", 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    )
    with pytest.raises(AdapterError) as raised:
        await adapter.send(ChatRef("telegram", str(GROUP)), Document.text("hello"))
    assert not isinstance(raised.value, AdapterRateLimited | AdapterRejected)


async def test_send_when_the_server_is_gone_is_an_adapter_error(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.add_chat(GROUP)
    await fake.stop()
    with pytest.raises(AdapterError) as raised:
        await adapter.send(ChatRef("telegram", str(GROUP)), Document.text("hello"))
    assert not isinstance(raised.value, AdapterRateLimited | AdapterRejected)


# -- lifecycle -----------------------------------------------------------------------------------


async def test_start_without_a_token_fails_clearly(fake: FakeTelegram, sink: Sink):
    telegram = make_adapter(fake, token=None)
    with pytest.raises(AdapterError, match=TOKEN_ENV):
        await telegram.start(sink)
    assert not fake.calls
    await telegram.stop()


async def test_a_rejected_token_fails_clearly_and_is_never_printed(
    fake: FakeTelegram, sink: Sink, caplog: pytest.LogCaptureFixture
):
    secret = "4242:AAnot-the-right-token"  # noqa: S105 - a wrong one, on purpose
    caplog.set_level(logging.DEBUG)
    telegram = make_adapter(fake, token=secret)
    with pytest.raises(AdapterError, match=TOKEN_ENV) as raised:
        await telegram.start(sink)

    assert [call.status for call in fake.calls] == [401]
    assert secret not in "".join(traceback.format_exception(raised.value))
    assert "getMe" in caplog.text  # httpx logged the request, with the token redacted
    assert secret not in caplog.text
    assert secret not in repr(telegram)
    await telegram.stop()


def test_config_is_checked_when_the_adapter_is_made():
    with pytest.raises(AdapterError, match="token_env"):
        create({"token_env": ""}, {})
    with pytest.raises(AdapterError, match="poll_timeout"):
        create({"token_env": TOKEN_ENV, "poll_timeout": "10"}, {})
    with pytest.raises(AdapterError, match="api_base_url"):
        create({"token_env": TOKEN_ENV, "api_base_url": "127.0.0.1:8081"}, {})
    assert create({"token_env": TOKEN_ENV}, {}).capabilities.max_message_chars == 4096


async def test_stop_is_idempotent_and_send_after_stop_fails(fake: FakeTelegram, sink: Sink):
    telegram = make_adapter(fake)
    await telegram.stop()  # never started
    await telegram.start(sink)
    with pytest.raises(AdapterError, match="already started"):
        await telegram.start(sink)
    await telegram.stop()
    await telegram.stop()
    with pytest.raises(AdapterError, match="not started"):
        await telegram.send(ChatRef("telegram", str(ALICE_ID)), Document.text("late"))
    # Stopping confirmed what was read, as Telegram expects of a polling bot.
    assert fake.calls_of("getUpdates")[-1].params.get("timeout") == 0


async def test_the_adapter_restarts_after_stop(fake: FakeTelegram, sink: Sink):
    telegram = make_adapter(fake)
    await telegram.start(sink)
    await telegram.stop()
    await telegram.start(sink)
    try:
        await fake.push_text("/kanban again", user=ALICE)
        await fake.wait_for(lambda: fake.sent)
    finally:
        await telegram.stop()
    assert [m.text for m in sink.received] == ["again"]


def test_the_entry_point_names_the_factory():
    [entry] = [ep for ep in entry_points(group="kanban_gateway.adapters") if ep.name == "telegram"]
    assert entry.value == "adapters.telegram:create"
    assert entry.load() is create
