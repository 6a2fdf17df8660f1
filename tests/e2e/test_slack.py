"""The Slack adapter end to end: real slack-bolt and slack-sdk against the fake Slack."""

from __future__ import annotations

import asyncio
import logging
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import SlackAdapter, create
from adapters.slack_inbound import read_mention
from adapters.slack_render import render_parts
from gateway import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    ChatRef,
    Document,
    Heading,
    IncomingMessage,
    Paragraph,
    Preformatted,
)
from gateway.messages import MessageKind
from tests.e2e.fake_slack import APP_TOKEN, BOT_TOKEN, BOT_USER_ID, SIGNING_SECRET, FakeSlack

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "SLACK_BOT_TOKEN": BOT_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "SLACK_APP_TOKEN": APP_TOKEN,
}
WAIT = 5.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Sink:
    """The gateway's side in these tests: records commands, answers with ``reply``."""

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.reply: Callable[[IncomingMessage], Document | None] = lambda m: Document.text(
            f"ran: {m.text}"
        )
        #: When set, the sink waits on it before answering (to prove the ack did not wait).
        self.gate: asyncio.Event | None = None
        self._changed = asyncio.Condition()

    async def __call__(self, message: IncomingMessage) -> Document | None:
        async with self._changed:
            self.messages.append(message)
            self._changed.notify_all()
        if self.gate is not None:
            await self.gate.wait()
        return self.reply(message)

    async def wait_for_count(self, count: int) -> list[IncomingMessage]:
        async with asyncio.timeout(WAIT), self._changed:
            await self._changed.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack()
    await slack.start()
    try:
        yield slack
    finally:
        await slack.stop()


def http_config(fake: FakeSlack, **extra: object) -> dict[str, object]:
    return {
        "mode": "http",
        "listen_host": "127.0.0.1",
        "listen_port": 0,
        "api_base_url": fake.base_url,
        **extra,
    }


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def adapter(fake: FakeSlack, sink: Sink) -> AsyncIterator[SlackAdapter]:
    slack = create(http_config(fake), ENV)
    await slack.start(sink)
    try:
        yield slack
    finally:
        await slack.stop()


def events_url(adapter: SlackAdapter) -> str:
    return f"http://127.0.0.1:{adapter.bound_port}/slack/events"


def balanced(text: str) -> bool:
    return sum(1 for line in text.split("\n") if line == "```") % 2 == 0


# --- HTTP mode ---------------------------------------------------------------------------------


async def test_slash_command_is_acked_before_processing_and_answered(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    assert adapter.bound_port not in (None, 0)
    sink.gate = asyncio.Event()
    payload = fake.slash_payload("list --all &lt;mine&gt;", user="U123", user_name="alice")

    # Bolt gives up on an un-acked command at 3 s (404), so answering within 2.5 s means acked.
    async with asyncio.timeout(2.5):
        result = await fake.post_slash(events_url(adapter), payload)

    # Acked (200, empty body) while the sink is still blocked: processing runs after the ack.
    assert (result.status, result.body) == (200, "")
    [message] = await sink.wait_for_count(1)
    assert message.text == "list --all <mine>"
    assert message.delivery_id == payload["trigger_id"]
    assert message.chat == ChatRef("slack", "C0001", None)
    assert (message.user.user_id, message.user.display_name) == ("U123", "alice")
    assert message.user.key == "slack:U123"
    assert fake.responses == []

    sink.gate.set()
    await fake.wait_for(lambda: len(fake.responses) == 1)
    rid, body = fake.responses[0]
    assert payload["response_url"].endswith(f"/response/{rid}")
    assert body["text"] == "ran: list --all &lt;mine&gt;"
    assert body["response_type"] == "in_channel"
    assert fake.posts == []
    # Bolt's lazy auth.test plus our start-up check; never once per request.
    assert 1 <= len(fake.calls_to("auth.test")) <= 2


async def test_slash_reply_falls_back_to_post_message(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    fake.fail_next("response", 404, "expired_url")
    result = await fake.post_slash(events_url(adapter), fake.slash_payload("show 7"))
    assert result.status == 200
    await fake.wait_for(lambda: len(fake.posts) == 1)
    post = fake.posts[0]
    assert (post["channel"], post["text"], post.get("thread_ts")) == ("C0001", "ran: show 7", None)


async def test_sink_failure_is_reported_not_raised(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    def boom(message: IncomingMessage) -> Document:
        raise RuntimeError("kaboom")

    sink.reply = boom
    await fake.post_slash(events_url(adapter), fake.slash_payload("list"))
    await fake.wait_for(lambda: len(fake.responses) == 1)
    assert "failed" in fake.responses[0][1]["text"]
    assert "kaboom" not in fake.responses[0][1]["text"]


async def test_mention_in_thread_replies_in_that_thread(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    event = fake.mention_event(
        f"<@{BOT_USER_ID}> kanban show 12", thread_ts="1700000000.000100", user="U777"
    )
    result = await fake.post_event(events_url(adapter), event)
    assert result.status == 200

    [message] = await sink.wait_for_count(1)
    assert message.text == "show 12"
    assert message.delivery_id == event["event_id"]
    assert message.chat == ChatRef("slack", "C0001", "1700000000.000100")
    assert message.user.user_id == "U777"
    await fake.wait_for(lambda: len(fake.posts) == 1)
    post = fake.posts[0]
    assert (post["channel"], post["thread_ts"], post["text"]) == (
        "C0001",
        "1700000000.000100",
        "ran: show 12",
    )


async def test_top_level_mention_starts_a_thread_and_other_mentions_are_text(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    url = events_url(adapter)
    # Someone else's mention is not ours at all; a mention without a command is plain text.
    assert (await fake.post_event(url, fake.mention_event("<@UOTHER> kanban list"))).status == 200
    chat = fake.mention_event(f"<@{BOT_USER_ID}> hello", ts="1700000200.000001")
    assert (await fake.post_event(url, chat)).status == 200
    event = fake.mention_event(f"hey <@{BOT_USER_ID}>: Kanban  list --all", ts="1700000200.000002")
    await fake.post_event(url, event)

    messages = await sink.wait_for_count(2)
    by_kind = {m.kind: m for m in messages}
    assert len(by_kind) == 2
    text, command = by_kind[MessageKind.TEXT], by_kind[MessageKind.COMMAND]
    assert (text.text, text.command, text.chat.thread_id) == ("hello", "", "1700000200.000001")
    assert (command.command, command.text) == ("Kanban", "list --all")  # as typed
    assert command.chat.thread_id == "1700000200.000002"
    await fake.wait_for(lambda: len(fake.posts) == 2)
    assert {post["thread_ts"] for post in fake.posts} == {"1700000200.000001", "1700000200.000002"}
    assert len(sink.messages) == 2


async def test_retried_event_keeps_its_delivery_id(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    url = events_url(adapter)
    event = fake.mention_event(f"<@{BOT_USER_ID}> kanban list", event_id="Ev0RETRY")
    first = await fake.post_event(url, event)
    retry = await fake.post_event(
        url, event, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (first.status, retry.status) == (200, 200)
    # The adapter passes both on; dropping the copy is the router's job (by delivery_id).
    messages = await sink.wait_for_count(2)
    assert [m.delivery_id for m in messages] == ["Ev0RETRY", "Ev0RETRY"]


async def test_bad_signature_and_stale_timestamp_are_rejected(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    url = events_url(adapter)
    forged = await fake.post_slash(url, fake.slash_payload("delete 1"), sign_with="not-the-secret")
    stale = await fake.post_slash(
        url, fake.slash_payload("delete 2"), timestamp=int(time.time()) - 301
    )
    forged_event = await fake.post_event(
        url, fake.mention_event(f"<@{BOT_USER_ID}> kanban delete 3"), sign_with="wrong"
    )
    assert (forged.status, stale.status, forged_event.status) == (401, 401, 401)
    # Verification happens before any listener, so nothing was dispatched.
    assert sink.messages == []

    await fake.post_slash(url, fake.slash_payload("list"))
    messages = await sink.wait_for_count(1)
    assert [m.text for m in messages] == ["list"]


async def test_url_verification_is_answered(fake: FakeSlack, adapter: SlackAdapter) -> None:
    result = await fake.post_event(
        events_url(adapter), {"type": "url_verification", "challenge": "abc", "token": "t"}
    )
    assert result.status == 200
    assert '"challenge": "abc"' in result.body or '"challenge":"abc"' in result.body


async def test_long_output_is_split_with_balanced_fences_in_the_thread(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    rows = "\n".join(f"{i:4d}  task-{i:04d}  <!channel> & ``` {'x' * 40}" for i in range(400))
    document = Document((Heading("Board"), Paragraph("all tasks:"), Preformatted(rows)))
    chat = ChatRef("slack", "C0002", "1700000000.000900")

    await adapter.send(chat, document)

    posts = fake.posts
    assert 2 <= len(posts) <= 5
    assert all(post["thread_ts"] == "1700000000.000900" for post in posts)
    assert all(post["channel"] == "C0002" for post in posts)
    texts = [post["text"] for post in posts]
    assert all(len(text) <= 4000 for text in texts)
    assert all(balanced(text) for text in texts)
    assert texts[0].startswith("*Board*\nall tasks:\n```\n")
    # 400 rows do not fit in 5 parts: the footer comes last, outside the code block.
    assert len(posts) == 5
    assert texts[-1].endswith("```\n" + "… (cut; run `kanban` in a terminal for the full output)")
    joined = "\n".join(texts)
    assert "<!channel>" not in joined
    assert "&lt;!channel&gt; &amp;" in joined
    # User text never opens or closes a block: triple backticks are broken up.
    assert all(line == "```" or "```" not in line for line in joined.split("\n"))


async def test_short_documents_fit_in_one_part(fake: FakeSlack, adapter: SlackAdapter) -> None:
    await adapter.send(ChatRef("slack", "C0001"), Document.text("a <b> & c", "second"))
    assert [post["text"] for post in fake.posts] == ["a &lt;b&gt; &amp; c\nsecond"]
    assert "thread_ts" not in fake.posts[0]


async def test_send_maps_rate_limits_and_rejections(fake: FakeSlack, adapter: SlackAdapter) -> None:
    chat = ChatRef("slack", "C0001")
    fake.fail_next(
        "chat.postMessage", 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}
    )
    with pytest.raises(AdapterRateLimited) as limited:
        await adapter.send(chat, Document.text("hi"))
    assert limited.value.retry_after == 7.0

    with pytest.raises(AdapterRejected, match="channel_not_found"):
        await adapter.send(ChatRef("slack", "C0GONE"), Document.text("hi"))
    for error in ("not_in_channel", "is_archived"):
        fake.fail_next("chat.postMessage", 200, {"ok": False, "error": error})
        with pytest.raises(AdapterRejected, match=error):
            await adapter.send(chat, Document.text("hi"))

    fake.fail_next("chat.postMessage", 200, {"ok": False, "error": "fatal_error"})
    with pytest.raises(AdapterError, match="fatal_error") as other:
        await adapter.send(chat, Document.text("hi"))
    assert not isinstance(other.value, AdapterRejected | AdapterRateLimited)

    fake.fail_next("chat.postMessage", 500, "<html>oops</html>")
    with pytest.raises(AdapterError) as server_error:
        await adapter.send(chat, Document.text("hi"))
    assert not isinstance(server_error.value, AdapterRejected | AdapterRateLimited)
    assert fake.posts == []


async def test_start_fails_clearly_without_secrets(fake: FakeSlack, sink: Sink) -> None:
    names = {"bot_token_env": "MY_BOT", "signing_secret_env": "MY_SIGN"}
    slack = create({**http_config(fake), **names}, {})
    with pytest.raises(AdapterError) as missing:
        await slack.start(sink)
    assert "MY_BOT" in str(missing.value)
    assert "MY_SIGN" in str(missing.value)
    assert slack.bound_port is None
    await slack.stop()

    socket = create({"mode": "socket", "api_base_url": fake.base_url}, {"SLACK_BOT_TOKEN": "x"})
    with pytest.raises(AdapterError, match="SLACK_APP_TOKEN"):
        await socket.start(sink)


async def test_start_fails_fast_on_a_bad_token(fake: FakeSlack, sink: Sink) -> None:
    slack = create(http_config(fake), {**ENV, "SLACK_BOT_TOKEN": "xoxb-wrong"})
    with pytest.raises(AdapterError, match="invalid_auth") as bad:
        await slack.start(sink)
    assert "xoxb-wrong" not in str(bad.value)
    assert slack.bound_port is None


def test_config_is_validated() -> None:
    with pytest.raises(AdapterError) as bad:
        create({"mode": "rtm", "listen_port": "80", "colour": "blue"}, {})
    text = str(bad.value)
    assert "slack.mode" in text
    assert "slack.listen_port" in text
    assert "slack.colour" in text


async def test_stop_is_idempotent_and_closes_the_listener(fake: FakeSlack, sink: Sink) -> None:
    slack = create(http_config(fake), ENV)
    await slack.stop()  # before start
    await slack.start(sink)
    url = events_url(slack)
    await slack.stop()
    await slack.stop()
    assert slack.bound_port is None
    with pytest.raises(aiohttp.ClientConnectionError):
        await fake.post_slash(url, fake.slash_payload("list"))
    with pytest.raises(AdapterError, match="not started"):
        await slack.send(ChatRef("slack", "C0001"), Document.text("hi"))


async def test_secrets_are_never_logged(
    fake: FakeSlack, sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    slack = create(http_config(fake), ENV)
    await slack.start(sink)
    try:
        await fake.post_slash(events_url(slack), fake.slash_payload("list"))
        await fake.wait_for(lambda: len(fake.responses) == 1)
        await slack.send(ChatRef("slack", "C0001"), Document.text("hi"))
    finally:
        await slack.stop()
    assert caplog.records
    for secret in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN):
        assert secret not in caplog.text
    assert BOT_TOKEN not in repr(slack)


# --- Socket Mode -------------------------------------------------------------------------------


@pytest.fixture
async def socket_adapter(fake: FakeSlack, sink: Sink) -> AsyncIterator[SlackAdapter]:
    slack = create({"mode": "socket", "api_base_url": fake.base_url}, ENV)
    await slack.start(sink)
    try:
        yield slack
    finally:
        await slack.stop()


async def test_socket_mode_slash_command_and_threaded_mention(
    fake: FakeSlack, sink: Sink, socket_adapter: SlackAdapter
) -> None:
    assert fake.socket_connections == 1
    assert socket_adapter.bound_port is None
    slash = fake.slash_payload("list", user="U42")
    envelope = await fake.socket_push("slash_commands", slash)
    ack = await fake.wait_for_ack(envelope)
    assert ack == {"envelope_id": envelope}
    await fake.wait_for(lambda: len(fake.responses) == 1)
    assert fake.responses[0][1]["text"] == "ran: list"

    mention = fake.mention_event(f"<@{BOT_USER_ID}> kanban show 3", thread_ts="1700000000.000500")
    envelope = await fake.socket_push("events_api", mention)
    await fake.wait_for_ack(envelope)
    await fake.wait_for(lambda: len(fake.posts) == 1)
    assert fake.posts[0]["thread_ts"] == "1700000000.000500"
    messages = await sink.wait_for_count(2)
    assert [m.delivery_id for m in messages] == [slash["trigger_id"], mention["event_id"]]


async def test_socket_mode_stop_disconnects(fake: FakeSlack, sink: Sink) -> None:
    slack = create({"mode": "socket", "api_base_url": fake.base_url}, ENV)
    await slack.start(sink)
    await fake.wait_for(lambda: fake.socket_connections == 1)
    await slack.stop()
    await slack.stop()
    # The fake's handler ends when the client closes the websocket.
    await fake.wait_for(lambda: fake.open_sockets == 0)


async def test_socket_mode_bad_app_token_fails_fast(fake: FakeSlack, sink: Sink) -> None:
    slack = create(
        {"mode": "socket", "api_base_url": fake.base_url}, {**ENV, "SLACK_APP_TOKEN": "xapp-bad"}
    )
    with pytest.raises(AdapterError, match="invalid_auth"):
        await slack.start(sink)
    assert fake.socket_connections == 0


# --- pure pieces -------------------------------------------------------------------------------


def test_render_keeps_fences_balanced_at_every_cut() -> None:
    block = "\n".join(f"row {i}" for i in range(60))
    document = Document(
        tuple(
            b
            for i in range(5)
            for b in (Heading(f"part {i}"), Preformatted(block), Paragraph("after"))
        )
    )
    for limit in (70, 97, 130, 250, 400):
        parts = render_parts(document, limit=limit, max_parts=1000)
        assert all(len(part) <= limit for part in parts), limit
        assert all(balanced(part) for part in parts), limit
        # Nothing lost or invented: the rows all survive, in order.
        rows = [line for part in parts for line in part.split("\n") if line.startswith("row ")]
        assert rows == [f"row {i}" for _ in range(5) for i in range(60)], limit
    for limit in (70, 97, 130):
        parts = render_parts(document, limit=limit, max_parts=3)
        assert len(parts) == 3
        assert all(len(part) <= limit and balanced(part) for part in parts), limit
        assert parts[-1].endswith("\n" + document.overflow_footer)


def test_mention_parsing() -> None:
    command, text = MessageKind.COMMAND, MessageKind.TEXT
    assert read_mention("<@UBOT> kanban list --all", "UBOT", "kanban") == (
        command,
        "kanban",
        "list --all",
    )
    assert read_mention("<@UBOT|bot> KANBAN\ncreate &quot;x&amp;y&quot;", "UBOT", "kanban") == (
        command,
        "KANBAN",
        "create &quot;x&y&quot;",
    )
    assert read_mention("<@UBOT> kanban", "UBOT", "kanban") == (command, "kanban", "")
    assert read_mention("<@UBOT> kb list", "UBOT", "kb") == (command, "kanban", "list")
    assert read_mention("<@UBOT> Git_Status --all", "UBOT", "kanban") == (
        command,
        "Git_Status",
        "--all",
    )
    assert read_mention("<@UBOT> /gs", "UBOT", "kanban") == (command, "gs", "")
    assert read_mention("<@UBOT> kanbanx &lt;y&gt;", "UBOT", "kanban") == (text, "", "kanbanx <y>")
    assert read_mention("please <@UBOT>, add tests", "UBOT", "kanban") == (
        text,
        "",
        "please add tests",
    )
    assert read_mention("<@UOTHER> kanban list", "UBOT", "kanban") is None
    assert read_mention("no mention at all", "UBOT", "kanban") is None


def test_entry_point_is_registered() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = project["project"]["entry-points"]["kanban_gateway.adapters"]["slack"]
    assert entry == "adapters.slack:create"
    module, _, attr = entry.partition(":")
    factory: Callable[..., Any] = getattr(__import__(module, fromlist=[attr]), attr)
    assert factory is create
