"""The Discord adapter with the real discord.py against a loopback fake of Discord."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import DEFAULT_VERBS, DiscordAdapter, create
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
from tests.e2e.fake_discord import (
    BOT_USER,
    CHANNEL_ID,
    MESSAGE_CONTENT_INTENT,
    THREAD_ID,
    USER_ID,
    FakeDiscord,
)

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

CHANNEL_MESSAGES = "POST /channels/{channel_id}/messages"
VIA = {"Via": "1.1 google"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Reply = Document | None | Awaitable[Document | None]


class Sink:
    """The gateway's side: records what arrives and answers with ``reply``.

    By default it answers commands and presses, and ignores plain text (as the router does in a
    chat bound to no workspace).
    """

    def __init__(self) -> None:
        self.received: list[IncomingMessage] = []
        self.reply: Callable[[IncomingMessage], Reply] = lambda m: (
            None if m.kind is MessageKind.TEXT else Document.text(f"ran: {m.text}")
        )

    async def __call__(self, message: IncomingMessage) -> Document | None:
        self.received.append(message)
        reply = self.reply(message)
        return await reply if inspect.isawaitable(reply) else reply


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    # The adapter points these process-wide class attributes at the fake; restore them after.
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    server = FakeDiscord()
    await server.start()
    yield server
    await server.stop()
    assert server.violations == []


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
async def started(
    fake: FakeDiscord, sink: Sink
) -> AsyncIterator[Callable[..., Awaitable[DiscordAdapter]]]:
    adapters: list[DiscordAdapter] = []

    async def start(**config: Any) -> DiscordAdapter:
        adapter = make_adapter(fake, **config)
        adapters.append(adapter)
        await adapter.start(sink)
        return adapter

    yield start
    for adapter in adapters:
        await adapter.stop()


def make_adapter(
    fake: FakeDiscord, environ: dict[str, str] | None = None, **config: Any
) -> DiscordAdapter:
    settings: dict[str, object] = {
        "token_env": "KANBAN_DISCORD_TOKEN",
        "api_base_url": fake.api_base_url,
        "gateway_url": fake.gateway_url,
        "guild_ready_timeout": 0.05,
        **config,
    }
    env = {"KANBAN_DISCORD_TOKEN": fake.token} if environ is None else environ
    return create(settings, env)


async def test_slash_command_is_deferred_then_answered_with_followups(fake, sink, started):
    await started()
    (kanban,) = [c for c in fake.commands if c["name"] == "kanban"]
    (option,) = kanban["options"]
    assert (option["name"], option["type"], option["autocomplete"]) == ("args", 3, True)

    interaction = await fake.slash("list --all")
    (reply,) = await fake.wait_for(lambda: fake.replies_to(interaction))

    assert [c["type"] for c in fake.callbacks_for(interaction)] == [5]  # deferred, thinking
    routes = [c.route for c in fake.calls]
    assert routes.index("POST /interactions/{interaction_id}/{token}/callback") < routes.index(
        "POST /webhooks/{app_id}/{token}"
    )
    assert reply.content == "ran: list --all"
    assert reply.channel_id == CHANNEL_ID
    (message,) = sink.received
    assert (message.kind, message.command, message.text) == (
        MessageKind.COMMAND,
        "kanban",
        "list --all",
    )
    assert message.delivery_id == str(interaction)
    assert message.chat == ChatRef("discord", str(CHANNEL_ID))
    assert message.user.key == f"discord:{USER_ID}"


async def test_slash_command_in_a_thread_and_without_args(fake, sink, started):
    await started()
    interaction = await fake.slash(None, channel_id=THREAD_ID)
    (reply,) = await fake.wait_for(lambda: fake.replies_to(interaction))
    assert reply.channel_id == THREAD_ID
    assert sink.received[0].text == ""
    assert sink.received[0].chat == ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID))


async def test_no_reply_removes_the_thinking_placeholder(fake, sink, started):
    await started()
    sink.reply = lambda m: None
    interaction = await fake.slash("watch 3")
    await fake.wait_for(
        lambda: any(
            c.route == "DELETE /webhooks/{app_id}/{token}/messages/@original" for c in fake.calls
        )
    )
    assert fake.replies_to(interaction) == []


async def test_text_command_in_a_thread_is_answered_in_that_thread(fake, sink, started):
    await started(message_content=True)
    assert fake.identify is not None
    assert fake.identify["intents"] & MESSAGE_CONTENT_INTENT

    await fake.message("good morning", channel_id=THREAD_ID)  # plain text: the sink says nothing
    await fake.message("/kanban list", channel_id=THREAD_ID, author=BOT_USER)  # a bot: ignored
    message_id = await fake.message("/kanban  show 12 ", channel_id=THREAD_ID)
    (reply,) = await fake.wait_for(lambda: fake.posted_to(THREAD_ID))

    assert int(reply.payload["message_reference"]["message_id"]) == message_id
    assert reply.payload["allowed_mentions"] == {"parse": []}
    # Events are handled in order, so the bot's message was skipped by the time the reply came.
    plain, incoming = sink.received
    assert (plain.kind, plain.command, plain.text) == (MessageKind.TEXT, "", "good morning")
    assert (incoming.kind, incoming.command) == (MessageKind.COMMAND, "kanban")
    assert incoming.text == "show 12"
    assert incoming.delivery_id == str(message_id)
    assert incoming.chat == ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID))
    assert incoming.user.user_id == str(USER_ID)


async def test_text_commands_need_the_message_content_intent(fake, sink, started):
    await started(message_content=False)
    assert fake.identify is not None
    assert not fake.identify["intents"] & MESSAGE_CONTENT_INTENT
    await fake.message("/kanban list")
    interaction = await fake.slash("stats")
    await fake.wait_for(lambda: fake.replies_to(interaction))
    assert [m.text for m in sink.received] == ["stats"]
    assert fake.posted_to(CHANNEL_ID) == fake.replies_to(interaction)


async def test_message_content_refused_by_the_portal_fails_start_clearly(fake, sink):
    fake.allow_message_content = False
    adapter = make_adapter(fake, message_content=True)
    with pytest.raises(AdapterRejected, match="Message Content intent"):
        await adapter.start(sink)
    await adapter.stop()


def long_document() -> Document:
    rows = "\n".join(f"{n:>4}  task number {n:<5} ready   @everyone" for n in range(1, 121))
    return Document(
        (
            Heading("Board *today*"),
            Paragraph("Tasks with `code` and @everyone in titles:"),
            Preformatted(rows),
            Paragraph("end of list"),
        )
    )


def fences_balanced(part: str) -> bool:
    return sum(1 for line in part.split("\n") if line.startswith("```")) % 2 == 0


async def test_long_output_is_split_with_balanced_fences(fake, sink, started):
    adapter = await started()
    document = long_document()
    sink.reply = lambda m: document
    expected = adapter.render(document)
    assert len(expected) > 1

    interaction = await fake.slash("list")
    await fake.wait_for(lambda: len(fake.replies_to(interaction)) == len(expected))
    contents = [p.content for p in fake.replies_to(interaction)]
    assert contents == expected
    assert all(len(part) <= 2000 for part in contents)
    assert all(fences_balanced(part) for part in contents)
    assert contents[0].startswith("**Board \\*today\\***")
    assert "```" in contents[1].split("\n")[0]  # the table continues in a reopened fence
    assert all(p.payload["allowed_mentions"] == {"parse": []} for p in fake.posted)


def test_rendering_caps_parts_and_keeps_the_footer_outside_code():
    adapter = create({"token_env": "T"}, {"T": "t"})
    rows = "\n".join(f"row {n:05}" + "x" * 60 for n in range(2000))
    parts = adapter.render(Document((Preformatted(rows),)))
    assert len(parts) == 5
    assert all(len(part) <= 2000 and fences_balanced(part) for part in parts)
    assert parts[-1].endswith("```\n" + Document(()).overflow_footer)
    tricky = adapter.render(Document((Preformatted("a ``` b\n```"), Paragraph("*x* _y_ ~z~"))))
    assert tricky == ["```\na ``\u200b` b\n``\u200b`\n```\n\\*x\\* \\_y\\_ \\~z\\~"]
    assert adapter.render(Document(())) == []


async def test_autocomplete_suggests_matching_verbs(fake, started):
    await started(verbs=[*DEFAULT_VERBS, "stale"])
    interaction = await fake.autocomplete("st")
    (callback,) = await fake.wait_for(lambda: fake.callbacks_for(interaction))
    assert callback["type"] == 8
    assert [c["value"] for c in callback["data"]["choices"]] == ["stats", "status", "stale"]

    everything = await fake.autocomplete("")
    (callback,) = await fake.wait_for(lambda: fake.callbacks_for(everything))
    assert [c["name"] for c in callback["data"]["choices"]] == [*DEFAULT_VERBS, "stale"]

    past_the_verb = await fake.autocomplete("show 1")
    (callback,) = await fake.wait_for(lambda: fake.callbacks_for(past_the_verb))
    assert callback["data"]["choices"] == []


async def test_send_posts_to_the_thread_or_the_chat_without_mentions(fake, started):
    adapter = await started()
    await adapter.send(
        ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID)), Document.text("@everyone done")
    )
    await adapter.send(ChatRef("discord", str(CHANNEL_ID)), Document.text("hello"))
    (in_thread,) = fake.posted_to(THREAD_ID)
    (in_channel,) = fake.posted_to(CHANNEL_ID)
    assert in_thread.content == "@everyone done"
    assert in_thread.payload["allowed_mentions"] == {"parse": []}
    assert in_channel.content == "hello"


async def test_send_maps_platform_errors(fake, started):
    adapter = await started()
    chat = ChatRef("discord", str(CHANNEL_ID))
    note = Document.text("task 7 completed")

    # A short 429 is discord.py's to sleep through and retry.
    fake.fail_next(CHANNEL_MESSAGES, 429, {"retry_after": 0.05, "global": False}, VIA)
    await adapter.send(chat, note)
    assert len(fake.posted_to(CHANNEL_ID)) == 1

    fake.fail_next(CHANNEL_MESSAGES, 429, {"retry_after": 120.0, "global": False}, VIA)
    with pytest.raises(AdapterRateLimited) as limited:
        await adapter.send(chat, note)
    assert limited.value.retry_after == 120.0

    # Without Via, discord.py takes it for a Cloudflare block and does not retry.
    fake.fail_next(CHANNEL_MESSAGES, 429, {"message": "slow down"}, {"Retry-After": "7"})
    with pytest.raises(AdapterRateLimited) as blocked:
        await adapter.send(chat, note)
    assert blocked.value.retry_after == 7.0

    fake.fail_next(CHANNEL_MESSAGES, 403, {"code": 50013, "message": "Missing Permissions"})
    with pytest.raises(AdapterRejected):
        await adapter.send(chat, note)
    fake.fail_next(CHANNEL_MESSAGES, 404, {"code": 10003, "message": "Unknown Channel"})
    with pytest.raises(AdapterRejected):
        await adapter.send(chat, note)
    fake.fail_next(CHANNEL_MESSAGES, 400, {"code": 50035, "message": "Invalid Form Body"})
    with pytest.raises(AdapterError) as other:
        await adapter.send(chat, note)
    assert not isinstance(other.value, AdapterRateLimited | AdapterRejected)
    assert len(fake.posted_to(CHANNEL_ID)) == 1


async def test_send_to_a_malformed_chat_id_is_refused_for_good(fake, started):
    adapter = await started()
    with pytest.raises(AdapterRejected, match="'general' is not a channel or thread id"):
        await adapter.send(ChatRef("discord", "general"), Document.text("hi"))
    assert fake.posted_to(CHANNEL_ID) == []


async def test_start_without_a_token_fails_clearly_and_touches_nothing(fake, sink):
    adapter = make_adapter(fake, environ={})
    with pytest.raises(AdapterRejected, match="KANBAN_DISCORD_TOKEN"):
        await adapter.start(sink)
    assert fake.calls == []
    await adapter.stop()


async def test_start_with_a_wrong_token_fails_clearly(fake, sink):
    adapter = make_adapter(fake, environ={"KANBAN_DISCORD_TOKEN": "wrong"})
    with pytest.raises(AdapterRejected, match="token"):
        await adapter.start(sink)
    await adapter.stop()


def test_config_needs_token_env():
    with pytest.raises(AdapterError, match="token_env"):
        create({"token_env": ""}, {})
    with pytest.raises(AdapterError, match="message_content"):
        create({"token_env": "T", "message_content": "yes"}, {})


async def test_stop_is_idempotent_and_closes_the_gateway(fake, sink):
    adapter = make_adapter(fake)
    await adapter.stop()  # never started
    await adapter.start(sink)
    assert fake.gateway_open
    await adapter.stop()
    await fake.wait_for(lambda: not fake.gateway_open)
    await adapter.stop()
    with pytest.raises(AdapterError, match="not started"):
        await adapter.send(ChatRef("discord", str(CHANNEL_ID)), Document.text("late"))
