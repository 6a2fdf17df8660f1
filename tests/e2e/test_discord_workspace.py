"""Discord workspace commands, plain text, buttons and files: real discord.py against the fake."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from gateway import (
    AdapterError,
    ChatRef,
    Document,
    Heading,
    IncomingMessage,
    Paragraph,
    Preformatted,
)
from gateway.messages import Attachment, Button, MessageKind
from gateway.slash import SLASH_COMMANDS
from tests.e2e import test_discord as discord_e2e
from tests.e2e.fake_discord import (
    BOT_USER,
    CHANNEL_ID,
    DM_CHANNEL_ID,
    HUMAN,
    MAX_UPLOAD,
    MESSAGE_CONTENT_INTENT,
    THREAD_ID,
    USER_ID,
    FakeDiscord,
    Posted,
)
from tests.e2e.test_discord import Sink, make_adapter

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

# test_discord's fixtures, registered here by being module attributes.
anyio_backend = discord_e2e.anyio_backend
fake = discord_e2e.fake
sink = discord_e2e.sink
started = discord_e2e.started

EVERY_WORD = [w for c in SLASH_COMMANDS for w in (c.name, *c.aliases)]
BOB_ID = 900000000000000007
BOB = {**HUMAN, "id": str(BOB_ID), "username": "bob", "global_name": "Bob"}
OTHER_BOT = {**BOT_USER, "id": "900000000000000008", "username": "otherbot"}
FIVE_MB = 5_000_000


def with_buttons(*actions: str, text: str = "pick one") -> Document:
    return Document((Paragraph(text),), buttons=tuple(Button(a.title(), a) for a in actions))


async def reply_with_buttons(fake: FakeDiscord, sink: Sink, *actions: str) -> Posted:
    """Run a slash command whose reply carries ``actions`` as buttons; return that reply."""
    sink.reply = lambda m: with_buttons(*actions) if m.kind is MessageKind.COMMAND else None
    interaction = await fake.slash("approve")
    (reply,) = await fake.wait_for(lambda: fake.replies_to(interaction))
    return reply


# -- commands --------------------------------------------------------------------------------


async def test_every_slash_command_and_alias_is_an_app_command_with_one_args_option(fake, started):
    await started()
    by_name = {c["name"]: c for c in fake.commands}
    assert sorted(by_name) == sorted(EVERY_WORD)
    assert {"new-session", "set-active-repo", "git-status", "gs", "repo"} <= set(by_name)
    for name, command in by_name.items():
        assert 1 <= len(command["description"]) <= 100, name
        (option,) = command["options"]
        assert (option["name"], option["type"]) == ("args", 3)
        assert not option.get("required", False), name
        assert bool(option.get("autocomplete")) is (name == "kanban")
    assert "set-active-repo" in by_name["repo"]["description"]


async def test_each_app_command_reaches_the_sink_as_the_word_with_its_args(fake, sink, started):
    await started()
    for word in EVERY_WORD:
        interaction = await fake.slash(f'{word} "two words" --flag', command=word)
        (reply,) = await fake.wait_for(lambda i=interaction: fake.replies_to(i))
        assert [c["type"] for c in fake.callbacks_for(interaction)] == [5], word
        assert reply.content == f'ran: {word} "two words" --flag'
    assert [(m.kind, m.command) for m in sink.received] == [
        (MessageKind.COMMAND, word) for word in EVERY_WORD
    ]
    assert [m.text for m in sink.received] == [f'{w} "two words" --flag' for w in EVERY_WORD]


async def test_repo_routing_goes_through_the_repo_command(fake, sink, started):
    await started()
    interaction = await fake.slash(" web git-status ", command="repo", channel_id=THREAD_ID)
    await fake.wait_for(lambda: fake.replies_to(interaction))
    (message,) = sink.received
    assert (message.command, message.text) == ("repo", "web git-status")
    assert message.chat == ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID))


async def test_typed_slash_words_are_commands_for_the_router_to_judge(fake, sink, started):
    await started()
    typed = [
        "/git-status",
        "/New_Session@kanbanbot fix the login bug",
        '/follow-up  "keep the quotes"  please ',
        "/api diff src/",
        "/repo:web diff",
        "/usr/bin/env is not a command",  # a path: neither a command nor plain text
        "/",
    ]
    for content in typed:
        await fake.message(content)
    sentinel = await fake.message("/gs")
    await fake.wait_for(
        lambda: any(
            int(p.payload["message_reference"]["message_id"]) == sentinel
            for p in fake.posted_to(CHANNEL_ID)
        )
    )
    assert [(m.kind, m.command, m.text) for m in sink.received] == [
        (MessageKind.COMMAND, "git-status", ""),
        (MessageKind.COMMAND, "New_Session", "fix the login bug"),
        (MessageKind.COMMAND, "follow-up", '"keep the quotes"  please'),
        (MessageKind.COMMAND, "api", "diff src/"),
        (MessageKind.COMMAND, "repo:web", "diff"),
        (MessageKind.COMMAND, "gs", ""),
    ]
    assert sink.received[-1].delivery_id == str(sentinel)


# -- plain text ------------------------------------------------------------------------------


async def test_the_message_content_intent_is_requested_by_default(fake, started):
    await started()
    assert fake.identify is not None
    assert fake.identify["intents"] & MESSAGE_CONTENT_INTENT


@pytest.mark.parametrize(
    ("where", "chat", "posted_in"),
    [
        pytest.param({}, ChatRef("discord", str(CHANNEL_ID)), CHANNEL_ID, id="channel"),
        pytest.param(
            {"channel_id": THREAD_ID},
            ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID)),
            THREAD_ID,
            id="thread",
        ),
        pytest.param({"dm": True}, ChatRef("discord", str(DM_CHANNEL_ID)), DM_CHANNEL_ID, id="dm"),
    ],
)
async def test_plain_text_reaches_the_sink_and_its_reply_answers_it(
    fake, sink, started, where: dict[str, Any], chat: ChatRef, posted_in: int
):
    await started()
    sink.reply = lambda m: Document.text(f"agent got: {m.text}")
    message_id = await fake.message("please also *fix* the tests  ", **where)
    (reply,) = await fake.wait_for(lambda: fake.posted_to(posted_in))
    (incoming,) = sink.received
    assert (incoming.kind, incoming.command) == (MessageKind.TEXT, "")
    assert incoming.text == "please also *fix* the tests  "
    assert incoming.chat == chat
    assert incoming.user.key == f"discord:{USER_ID}"
    assert incoming.delivery_id == str(message_id)
    assert int(reply.payload["message_reference"]["message_id"]) == message_id
    assert reply.content == "agent got: please also \\*fix\\* the tests  "


async def test_plain_text_the_sink_ignores_gets_no_reply(fake, sink, started):
    await started()  # the default sink returns None for plain text, as for an unbound chat
    await fake.message("just chatting")
    sentinel = await fake.slash("list")
    await fake.wait_for(lambda: fake.replies_to(sentinel))
    assert [m.kind for m in sink.received] == [MessageKind.TEXT, MessageKind.COMMAND]
    assert [p.interaction_id for p in fake.posted] == [sentinel]


async def test_bots_webhooks_edits_and_system_messages_never_reach_the_sink(fake, sink, started):
    await started()
    sink.reply = lambda m: Document.text("heard")
    await fake.message("I am the bot", author=BOT_USER)
    await fake.message("I am another bot", author=OTHER_BOT)
    await fake.message("via a webhook", webhook_id="900000000000000009")
    await fake.message("alice joined", type=7)  # a member-join system message
    await fake.message("", attachments=[])  # a sticker or file only: nothing to read
    edited = await fake.message("first draft")
    await fake.wait_for(lambda: fake.posted_to(CHANNEL_ID))  # "first draft" was answered
    await fake.edit(edited, "second draft")
    sentinel = await fake.message("still there?")
    await fake.wait_for(lambda: len(fake.posted_to(CHANNEL_ID)) == 2)
    assert [m.text for m in sink.received] == ["first draft", "still there?"]
    assert sink.received[-1].delivery_id == str(sentinel)


# -- buttons ---------------------------------------------------------------------------------


async def test_buttons_are_rendered_on_the_last_part_only_in_rows_of_five(fake, sink, started):
    adapter = await started()
    rows = "\n".join(f"{n:>4}  a long line of the diff, number {n}" for n in range(200))
    actions = [f"ap:{n:02}:deadbeef" for n in range(7)]
    document = Document(
        (Heading("Diff"), Preformatted(rows)),
        buttons=tuple(Button(f"Option {n}", a) for n, a in enumerate(actions)),
    )
    sink.reply = lambda m: document
    interaction = await fake.slash("diff", command="diff")
    parts = len(adapter.render(document))
    assert parts > 1
    await fake.wait_for(lambda: len(fake.replies_to(interaction)) == parts)
    replies = fake.replies_to(interaction)
    assert all(not p.buttons for p in replies[:-1])
    assert replies[-1].buttons == [
        [(f"Option {n}", actions[n]) for n in range(5)],
        [(f"Option {n}", actions[n]) for n in range(5, 7)],
    ]


async def test_notifications_carry_buttons_and_duplicates_are_shown_once(fake, started):
    adapter = await started()
    chat = ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID))
    document = Document(
        (Paragraph("push web to origin/feature-x?"),),
        buttons=(Button("Push", "ap:1:aa"), Button("Cancel", "deny:1"), Button("Push!", "ap:1:aa")),
    )
    await adapter.send(chat, document)
    (notice,) = fake.posted_to(THREAD_ID)
    assert notice.buttons == [[("Push", "ap:1:aa"), ("Cancel", "deny:1")]]
    assert notice.payload["allowed_mentions"] == {"parse": []}
    # Presses are handled for every message alike, so discord.py must not keep a view per card
    # (with timeout=None it would hold each one for the life of the process).
    assert adapter._client is not None
    assert adapter._client.persistent_views == []


async def test_buttons_without_text_and_more_than_discord_allows(fake, started):
    adapter = await started()
    chat = ChatRef("discord", str(CHANNEL_ID))
    many = tuple(Button("x" * 100, f"a{n}") for n in range(30))
    await adapter.send(chat, Document((), buttons=many))
    (only,) = fake.posted_to(CHANNEL_ID)
    assert only.content == ""
    assert [len(row) for row in only.buttons] == [5, 5, 5, 5, 5]
    assert [custom_id for row in only.buttons for _, custom_id in row] == [
        f"a{n}" for n in range(25)
    ]
    assert all(len(label) == 80 for row in only.buttons for label, _ in row)


async def test_a_press_is_an_action_from_the_presser_answered_with_a_new_message(
    fake, sink, started
):
    await started()
    action = "ap:01J9Z3K:Zm9vYmFy+/=é"  # opaque: passed on byte for byte
    pressed = await reply_with_buttons(fake, sink, action, "deny:01J9Z3K")
    sink.reply = lambda m: Document.text("approved") if m.kind is MessageKind.ACTION else None
    press = await fake.press(pressed.message_id, action, user=BOB)
    (reply,) = await fake.wait_for(lambda: fake.replies_to(press))

    assert [c["type"] for c in fake.callbacks_for(press)] == [6]  # deferred update
    _command, incoming = sink.received
    assert incoming == IncomingMessage(
        chat=ChatRef("discord", str(CHANNEL_ID)),
        user=incoming.user,
        text=action,
        delivery_id=str(press),
        command="",
        kind=MessageKind.ACTION,
    )
    assert incoming.user.key == f"discord:{BOB_ID}"
    assert reply.content == "approved"
    assert reply.channel_id == CHANNEL_ID
    assert reply.message_id != pressed.message_id  # a new message, the card is left as it was


async def test_a_press_in_a_thread_is_answered_in_that_thread(fake, sink, started):
    adapter = await started()
    await adapter.send(
        ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID)), with_buttons("commit:7")
    )
    (card,) = fake.posted_to(THREAD_ID)
    press = await fake.press(card.message_id, "commit:7")
    (reply,) = await fake.wait_for(lambda: fake.replies_to(press))
    assert reply.channel_id == THREAD_ID
    (incoming,) = sink.received
    assert incoming.chat == ChatRef("discord", str(CHANNEL_ID), str(THREAD_ID))
    assert reply.content == "ran: commit:7"


async def test_a_press_is_acknowledged_before_the_slow_sink_answers(fake, sink, started):
    await started()
    pressed = await reply_with_buttons(fake, sink, "run:test")
    release = asyncio.Event()

    async def slow() -> Document:
        await release.wait()
        return Document.text("tests passed")

    sink.reply = lambda m: slow()
    press = await fake.press(pressed.message_id, "run:test")
    (ack,) = await fake.wait_for(lambda: fake.callbacks_for(press))
    assert ack["type"] == 6
    assert fake.replies_to(press) == []  # the sink is still working
    release.set()
    (reply,) = await fake.wait_for(lambda: fake.replies_to(press))
    assert reply.content == "tests passed"


async def test_a_press_the_sink_ignores_is_acknowledged_and_answered_with_nothing(
    fake, sink, started
):
    await started()
    pressed = await reply_with_buttons(fake, sink, "stale:1", "fresh:1")
    ignored = asyncio.Event()

    async def ignore() -> None:
        ignored.set()

    sink.reply = lambda m: ignore() if m.text == "stale:1" else Document.text("next")
    press = await fake.press(pressed.message_id, "stale:1")
    async with asyncio.timeout(5):
        await ignored.wait()
    # A later press's reply: had the ignored one produced a message, it would be there by now.
    sentinel = await fake.press(pressed.message_id, "fresh:1")
    await fake.wait_for(lambda: fake.replies_to(sentinel))
    assert [c["type"] for c in fake.callbacks_for(press)] == [6]
    assert fake.replies_to(press) == []
    assert [m.delivery_id for m in sink.received[1:]] == [str(press), str(sentinel)]


async def test_buttons_sent_before_a_restart_still_work(fake, sink, started):
    first = await started()
    await first.send(ChatRef("discord", str(CHANNEL_ID)), with_buttons("queue:next"))
    (card,) = fake.posted_to(CHANNEL_ID)
    await first.stop()
    await fake.wait_for(lambda: not fake.gateway_open)
    await started()
    press = await fake.press(card.message_id, "queue:next")
    (reply,) = await fake.wait_for(lambda: fake.replies_to(press))
    assert reply.content == "ran: queue:next"


async def test_a_failing_sink_still_answers_a_press(fake, sink, started):
    await started()
    pressed = await reply_with_buttons(fake, sink, "boom")

    def fail(message: IncomingMessage) -> Document | None:
        raise RuntimeError("bug")

    sink.reply = fail
    press = await fake.press(pressed.message_id, "boom")
    (reply,) = await fake.wait_for(lambda: fake.replies_to(press))
    assert "failed" in reply.content


# -- attachments -----------------------------------------------------------------------------


def test_capabilities_announce_buttons_and_a_file_cap_of_at_most_5_mb():
    adapter = make_adapter(FakeDiscord())
    assert adapter.capabilities.buttons is True
    assert 0 < adapter.capabilities.max_attachment_bytes <= FIVE_MB


async def test_attachments_are_uploaded_after_the_text_and_oversize_ones_are_named(fake, started):
    adapter = await started()
    binary = bytes(range(256)) * 3 + b"\r\n--boundary\r\n\x00"
    limit = adapter.capabilities.max_attachment_bytes
    document = Document(
        (Paragraph("the diff is too long for chat"),),
        buttons=(Button("Commit", "commit:1"),),
        attachments=(
            Attachment("web.diff", b"diff --git a/x b/x\n+hello\n", "text/x-diff"),
            Attachment("huge_*.log", b"x" * (limit + 1)),
            Attachment("blob.bin", binary, "application/octet-stream"),
            Attachment("edge.txt", b"y" * limit),
        ),
    )
    await adapter.send(ChatRef("discord", str(CHANNEL_ID)), document)
    text, diff, too_large, blob, edge = fake.posted_to(CHANNEL_ID)

    assert text.content == "the diff is too long for chat"
    assert text.buttons == [[("Commit", "commit:1")]]
    assert not text.files
    assert [(f.field, f.filename, f.content) for f in diff.files] == [
        ("files[0]", "web.diff", b"diff --git a/x b/x\n+hello\n")
    ]
    assert [a["filename"] for a in diff.payload["attachments"]] == ["web.diff"]
    assert not diff.buttons
    assert not too_large.files
    assert "huge\\_\\*.log" in too_large.content
    assert "too large" in too_large.content
    assert "5.0 MB" in too_large.content
    assert [(f.filename, f.content) for f in blob.files] == [("blob.bin", binary)]
    assert [(f.filename, len(f.content)) for f in edge.files] == [("edge.txt", limit)]


async def test_a_slash_reply_and_a_press_reply_carry_files_too(fake, sink, started):
    await started()
    diff = Attachment("api.diff", b"+x\n")
    sink.reply = lambda m: Document((Paragraph("changes"),), attachments=(diff,))
    interaction = await fake.slash("", command="diff")
    text, upload = await fake.wait_for(
        lambda: len(fake.replies_to(interaction)) == 2 and fake.replies_to(interaction)
    )
    assert text.content == "changes"
    assert [(f.filename, f.content) for f in upload.files] == [("api.diff", b"+x\n")]

    pressed = await reply_with_buttons(fake, sink, "diff:full")
    sink.reply = lambda m: Document((), attachments=(diff,))  # a file and nothing else
    press = await fake.press(pressed.message_id, "diff:full")
    (only,) = await fake.wait_for(lambda: fake.replies_to(press))
    assert only.content == ""
    assert [(f.filename, f.content) for f in only.files] == [("api.diff", b"+x\n")]


async def test_the_fake_refuses_a_file_over_discords_limit(fake, started):
    # The fake's limits must bite, or the tests above could not fail: lift the adapter's own cap.
    adapter = await started()
    adapter.capabilities = replace(adapter.capabilities, max_attachment_bytes=MAX_UPLOAD + 1)
    big = Document((), attachments=(Attachment("big.bin", b"z" * (MAX_UPLOAD + 1)),))
    with pytest.raises(AdapterError, match="413"):
        await adapter.send(ChatRef("discord", str(CHANNEL_ID)), big)
    assert fake.posted == []
