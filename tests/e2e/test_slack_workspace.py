"""Slack workspace commands end to end: every slash command, plain text, buttons and files."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from adapters.slack import SlackAdapter, create
from gateway import AdapterRateLimited, AdapterRejected, ChatRef, Document, Paragraph, Preformatted
from gateway.messages import Attachment, Button, IncomingMessage, MessageKind
from gateway.slash import SLASH_COMMANDS
from tests.e2e import test_slack as base
from tests.e2e.fake_slack import (
    APP_TOKEN,
    BOT_TOKEN,
    BOT_USER_ID,
    MAX_SECTION_TEXT,
    SIGNING_SECRET,
    FakeSlack,
    SlackMessage,
)

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

# The fixtures (a started fake, a recording sink, the adapter in HTTP and in Socket Mode).
anyio_backend = base.anyio_backend
fake = base.fake
sink = base.sink
adapter = base.adapter
socket_adapter = base.socket_adapter
Sink = base.Sink
events_url = base.events_url
balanced = base.balanced

APPROVE = Button("Approve", "ap:42:0123456789abcdef")
DENY = Button("Deny", "dn:42:0123456789abcdef")
FIVE_MB = 5 * 1024 * 1024
QUOTED = '"fix the flaky test" --repo api'


def replies_to_actions(sink: Sink, command_reply: Document) -> None:
    """The sink answers commands with ``command_reply``, presses with what was pressed."""

    def reply(message: IncomingMessage) -> Document | None:
        if message.kind is MessageKind.ACTION:
            return Document.text(f"pressed {message.text}")
        if message.kind is MessageKind.TEXT:
            return None  # an unbound chat: the router ignores plain text
        return command_reply

    sink.reply = reply


def with_buttons(fake: FakeSlack) -> SlackMessage:
    [message] = [m for m in fake.messages if m.buttons()]
    return message


# --- commands ----------------------------------------------------------------------------------


async def test_every_slash_command_and_alias_reaches_the_sink_as_typed(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    words = [w for command in SLASH_COMMANDS for w in (command.name, *command.aliases)]
    assert {"new-session", "git-status", "gs", "set-active-repo", "repo"} <= set(words)
    for word in words:
        payload = fake.slash_payload(QUOTED, command=f"/{word}")
        # Bolt answers an un-acked command with 404 after 3 s: 200 within 2.5 s means acked.
        async with asyncio.timeout(2.5):
            result = await fake.post_slash(events_url(adapter), payload)
        assert (result.status, result.body) == (200, ""), word

    messages = await sink.wait_for_count(len(words))
    assert [(m.kind, m.command, m.text) for m in messages] == [
        (MessageKind.COMMAND, word, QUOTED) for word in words
    ]
    assert all(m.chat == ChatRef("slack", "C0001") for m in messages)
    await fake.wait_for(lambda: len(fake.responses) == len(words))


async def test_a_renamed_kanban_command_still_means_kanban(fake: FakeSlack, sink: Sink) -> None:
    slack = create(base.http_config(fake, command="/kb"), base.ENV)
    await slack.start(sink)
    try:
        await fake.post_slash(events_url(slack), fake.slash_payload("list", command="/kb"))
        await fake.post_slash(events_url(slack), fake.slash_payload("", command="/diff"))
        messages = await sink.wait_for_count(2)
    finally:
        await slack.stop()
    assert sorted((m.command, m.text) for m in messages) == [("diff", ""), ("kanban", "list")]


async def test_mention_commands_in_a_thread(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    # Slash commands cannot be used in threads; a mention is how a thread runs a command.
    event = fake.mention_event(
        f"<@{BOT_USER_ID}> Git_Status --repo api", thread_ts="1700000000.000300", user="U5"
    )
    await fake.post_event(events_url(adapter), event)
    [message] = await sink.wait_for_count(1)
    assert (message.kind, message.command, message.text) == (
        MessageKind.COMMAND,
        "Git_Status",
        "--repo api",
    )
    assert message.chat == ChatRef("slack", "C0001", "1700000000.000300")


async def test_socket_mode_workspace_command_is_acked_and_delivered(
    fake: FakeSlack, sink: Sink, socket_adapter: SlackAdapter
) -> None:
    payload = fake.slash_payload("", command="/new-session")
    envelope = await fake.socket_push("slash_commands", payload)
    assert await fake.wait_for_ack(envelope) == {"envelope_id": envelope}
    [message] = await sink.wait_for_count(1)
    assert (message.command, message.delivery_id) == ("new-session", payload["trigger_id"])


# --- plain text --------------------------------------------------------------------------------


async def test_only_users_new_messages_become_text_and_none_means_silence(
    fake: FakeSlack, sink: Sink
) -> None:
    replies_to_actions(sink, Document.text("unused"))
    slack = create(base.http_config(fake), base.ENV)
    await slack.start(sink)
    url = events_url(slack)
    ignored = [
        fake.message_event("my own post", user=BOT_USER_ID, bot_id="BBOT"),
        fake.message_event("another bot", user=None, subtype="bot_message", bot_id="B0OTHER"),
        fake.message_event("an app's user", user="U0APP", bot_id="B0APP"),
        fake.message_event("edited text", subtype="message_changed"),
        fake.message_event("", subtype="channel_join"),
        # In a channel Slack also sends an app_mention for this; that copy is the one delivered.
        fake.message_event(f"<@{BOT_USER_ID}> kanban list"),
    ]
    try:
        for event in ignored:
            assert (await fake.post_event(url, event)).status == 200
        thread = fake.message_event(
            "please also fix &lt;b&gt; tags", thread_ts="1700000000.000400", user="U7"
        )
        top = fake.message_event("top-level note", channel="C0002")
        direct = fake.message_event(
            f"<@{BOT_USER_ID}> hi", channel="D0001", channel_type="im", user="U8"
        )
        for event in (thread, top, direct):
            assert (await fake.post_event(url, event)).status == 200
        messages = await sink.wait_for_count(3)
    finally:
        # stop() drains in-flight work, so after it nothing more can be posted.
        await slack.stop()

    assert [(m.kind, m.command, m.text) for m in messages] == [
        (MessageKind.TEXT, "", "please also fix <b> tags"),
        (MessageKind.TEXT, "", "top-level note"),
        (MessageKind.TEXT, "", f"<@{BOT_USER_ID}> hi"),
    ]
    assert [m.chat for m in messages] == [
        ChatRef("slack", "C0001", "1700000000.000400"),
        ChatRef("slack", "C0002", None),
        ChatRef("slack", "D0001", None),
    ]
    assert [m.delivery_id for m in messages] == [e["event_id"] for e in (thread, top, direct)]
    assert messages[0].user.user_id == "U7"
    assert fake.posts == []
    assert fake.responses == []


async def test_socket_mode_plain_text(
    fake: FakeSlack, sink: Sink, socket_adapter: SlackAdapter
) -> None:
    await fake.socket_push("events_api", fake.message_event("hello bot", user=BOT_USER_ID))
    envelope = await fake.socket_push("events_api", fake.message_event("hello agent"))
    await fake.wait_for_ack(envelope)
    [message] = await sink.wait_for_count(1)
    assert (message.kind, message.text) == (MessageKind.TEXT, "hello agent")


# --- buttons -----------------------------------------------------------------------------------


async def test_buttons_ride_on_the_last_part_and_a_press_is_acked_then_answered(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    rows = "\n".join(f"{i:4d} {'x' * 60}" for i in range(90))
    replies_to_actions(
        sink,
        Document((Paragraph("Push api to origin?"), Preformatted(rows)), buttons=(APPROVE, DENY)),
    )
    await fake.post_slash(events_url(adapter), fake.slash_payload("", command="/push"))
    await fake.wait_for(
        lambda: len(fake.responses) >= 2 and any(m.buttons() for m in fake.messages)
    )
    bodies = [body for _, body in fake.responses]
    assert [bool(body.get("blocks")) for body in bodies] == [False] * (len(bodies) - 1) + [True]
    card = with_buttons(fake)
    assert card.labels() == ["Approve", "Deny"]
    assert [b["value"] for b in card.buttons()] == [APPROVE.action, DENY.action]
    sections = [b["text"]["text"] for b in card.blocks if b["type"] == "section"]
    assert sections
    assert "\n".join(sections).count("x" * 60) == card.text.count("x" * 60)

    sink.gate = asyncio.Event()
    press = fake.button_press(card, "Approve", user="U9", user_name="bob")
    async with asyncio.timeout(2.5):  # Slack wants the ack within 3 s
        result = await fake.post_interactive(events_url(adapter), press)
    assert (result.status, result.body) == (200, "")
    messages = await sink.wait_for_count(2)
    action = messages[-1]
    assert (action.kind, action.command, action.text) == (MessageKind.ACTION, "", APPROVE.action)
    assert action.chat == ChatRef("slack", "C0001", None)
    assert (action.user.user_id, action.user.display_name) == ("U9", "bob")
    assert action.delivery_id == press["trigger_id"]
    posts_before = len(fake.posts)
    assert posts_before == 0  # the card itself went through response_url

    sink.gate.set()
    await fake.wait_for(lambda: len(fake.posts) == 1)
    post = fake.posts[0]
    assert (post["channel"], post.get("thread_ts"), post["text"]) == (
        "C0001",
        None,
        f"pressed {APPROVE.action}",
    )


async def test_notification_buttons_in_a_thread_answer_in_that_thread(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    replies_to_actions(sink, Document.text("unused"))
    thread = ChatRef("slack", "C0002", "1700000000.000700")
    await adapter.send(thread, Document.text("Agent finished."))
    await adapter.send(thread, Document(blocks=(), buttons=(APPROVE, DENY)))
    assert fake.posts[0].get("blocks") is None
    card = with_buttons(fake)
    assert card.thread_ts == "1700000000.000700"
    assert card.text  # a buttons-only message still carries a notification text

    first = fake.button_press(card, "Deny")
    second = fake.button_press(card, "Deny")
    for press in (first, second):
        assert (await fake.post_interactive(events_url(adapter), press)).status == 200
    presses = await sink.wait_for_count(2)
    assert {m.chat for m in presses} == {thread}
    # Every press is its own delivery (the router dedupes on it, so a re-press is not lost).
    assert [m.delivery_id for m in presses] == [first["trigger_id"], second["trigger_id"]]
    await fake.wait_for(lambda: len(fake.posts) == 4)
    assert {(p["channel"], p["thread_ts"]) for p in fake.posts[2:]} == {
        ("C0002", "1700000000.000700")
    }


async def test_press_on_a_thread_parent_answers_in_the_channel(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    replies_to_actions(sink, Document.text("unused"))
    await adapter.send(
        ChatRef("slack", "C0001"), Document((Paragraph("Commit?"),), buttons=(APPROVE,))
    )
    press = fake.button_press(with_buttons(fake), "Approve", thread_parent=True)
    await fake.post_interactive(events_url(adapter), press)
    [message] = await sink.wait_for_count(1)
    assert message.chat == ChatRef("slack", "C0001", None)


async def test_long_last_part_is_cut_into_sections_and_many_buttons_into_rows(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    rows = "\n".join(f"{i:4d} <{'y' * 50}>" for i in range(60))  # about 3850 chars, escaped
    buttons = tuple(Button(f"Repo {i} " + "z" * 80, f"repo:{i}") for i in range(12))
    await adapter.send(ChatRef("slack", "C0001"), Document((Preformatted(rows),), buttons=buttons))

    [post] = fake.posts
    assert len(post["text"]) > MAX_SECTION_TEXT  # one section could not hold it
    card = with_buttons(fake)  # the fake refuses blocks Slack would refuse
    sections = [b["text"]["text"] for b in card.blocks if b["type"] == "section"]
    assert len(sections) == 2
    assert all(len(s) <= MAX_SECTION_TEXT and balanced(s) for s in sections)
    assert all(s.startswith("```\n") and s.endswith("\n```") for s in sections)
    assert "&lt;" + "y" * 50 + "&gt;" in sections[0]
    rows_of_buttons = [b["elements"] for b in card.blocks if b["type"] == "actions"]
    assert [len(row) for row in rows_of_buttons] == [5, 5, 2]
    assert [b["value"] for b in card.buttons()] == [f"repo:{i}" for i in range(12)]
    assert len({b["action_id"] for b in card.buttons()}) == 12
    assert all(len(label) <= 75 for label in card.labels())


async def test_socket_mode_press_is_acked_on_the_socket(
    fake: FakeSlack, sink: Sink, socket_adapter: SlackAdapter
) -> None:
    replies_to_actions(sink, Document.text("unused"))
    await socket_adapter.send(
        ChatRef("slack", "C0001"), Document((Paragraph("Push?"),), buttons=(APPROVE,))
    )
    press = fake.button_press(with_buttons(fake), "Approve")
    envelope = await fake.socket_push("interactive", press)
    assert await fake.wait_for_ack(envelope) == {"envelope_id": envelope}
    [message] = await sink.wait_for_count(1)
    assert (message.kind, message.text) == (MessageKind.ACTION, APPROVE.action)
    await fake.wait_for(lambda: len(fake.posts) == 2)


# --- attachments -------------------------------------------------------------------------------


async def test_capabilities_promise_buttons_and_files_up_to_five_mb(adapter: SlackAdapter) -> None:
    assert adapter.capabilities.buttons
    assert 0 < adapter.capabilities.max_attachment_bytes <= FIVE_MB


# slack-sdk hands the upload's bytes to aiohttp as one buffer, and aiohttp warns on bodies over
# 1 MiB; at our 5 MB ceiling that is harmless (ResourceWarning is silent outside tests).
@pytest.mark.filterwarnings("ignore:Sending a large body directly with raw bytes:ResourceWarning")
async def test_files_follow_the_text_and_an_oversized_one_becomes_a_line(
    fake: FakeSlack, adapter: SlackAdapter
) -> None:
    limit = adapter.capabilities.max_attachment_bytes
    diff = Attachment(
        "api.diff", b"--- a/x\n+++ b/x\n@@ -1 +1 @@\n-\xff old\n+new\n", "text/x-diff"
    )
    exact = Attachment("exact.bin", bytes(range(256)) * (limit // 256), "application/octet-stream")
    huge = Attachment("huge.log", b"z" * (limit + 1))
    thread = ChatRef("slack", "C0002", "1700000000.000800")
    document = Document(
        (Paragraph("Diff is long; see the files."),), attachments=(diff, huge, exact)
    )

    await adapter.send(thread, document)

    assert [(f.filename, f.content, f.channel, f.thread_ts) for f in fake.files] == [
        ("api.diff", diff.content, "C0002", "1700000000.000800"),
        ("exact.bin", exact.content, "C0002", "1700000000.000800"),
    ]
    assert all(f.declared_length == len(f.content) for f in fake.files)
    # Nothing past the limit was even offered to the upload URL.
    assert max(size for _, size in fake.upload_posts) == limit
    texts = [post["text"] for post in fake.posts]
    assert texts[0] == "Diff is long; see the files."
    [note] = texts[1:]
    assert "huge.log" in note
    assert "not sent" in note
    assert all(post["thread_ts"] == "1700000000.000800" for post in fake.posts)
    # The order on the wire: text, first file, the oversize note, then the last file.
    order = [
        call.method
        for call in fake.calls
        if call.method in ("chat.postMessage", "files.completeUploadExternal")
    ]
    assert order == [
        "chat.postMessage",
        "files.completeUploadExternal",
        "chat.postMessage",
        "files.completeUploadExternal",
    ]
    [complete, _] = fake.calls_to("files.completeUploadExternal")
    assert json.loads(complete.body["files"])[0]["title"] == "api.diff"


async def test_a_command_reply_with_a_file_uploads_it_to_the_channel(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter
) -> None:
    patch = Attachment("workspace.diff", b"+added line\n")
    replies_to_actions(sink, Document((Paragraph("3 files changed"),), attachments=(patch,)))
    await fake.post_slash(events_url(adapter), fake.slash_payload("--full", command="/diff"))
    await fake.wait_for(lambda: len(fake.files) == 1)
    assert [body["text"] for _, body in fake.responses] == ["3 files changed"]
    [shared] = fake.files
    assert (shared.filename, shared.content, shared.channel, shared.thread_ts) == (
        "workspace.diff",
        b"+added line\n",
        "C0001",
        None,
    )


async def test_upload_failures_are_mapped(fake: FakeSlack, adapter: SlackAdapter) -> None:
    chat = ChatRef("slack", "C0001")
    document = Document(blocks=(), attachments=(Attachment("a.txt", b"a"),))
    fake.fail_next(
        "files.getUploadURLExternal",
        429,
        {"ok": False, "error": "ratelimited"},
        {"Retry-After": "9"},
    )
    with pytest.raises(AdapterRateLimited) as limited:
        await adapter.send(chat, document)
    assert limited.value.retry_after == 9.0
    fake.fail_next("files.completeUploadExternal", 200, {"ok": False, "error": "not_in_channel"})
    with pytest.raises(AdapterRejected, match="not_in_channel"):
        await adapter.send(chat, document)
    with pytest.raises(AdapterRejected, match="channel_not_found"):
        await adapter.send(ChatRef("slack", "C0GONE"), document)
    assert fake.files == []

    await adapter.send(chat, document)
    assert [f.content for f in fake.files] == [b"a"]


async def test_no_token_is_logged_by_uploads_or_presses(
    fake: FakeSlack, sink: Sink, adapter: SlackAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    replies_to_actions(sink, Document.text("unused"))
    chat = ChatRef("slack", "C0001")
    await adapter.send(
        chat,
        Document((Paragraph("Push?"),), buttons=(APPROVE,), attachments=(Attachment("a", b"a"),)),
    )
    await fake.post_interactive(
        events_url(adapter), fake.button_press(with_buttons(fake), "Approve")
    )
    await fake.wait_for(lambda: len(fake.posts) == 2)
    assert "files.completeUploadExternal" in caplog.text  # the SDK's debug log was captured
    for secret in (BOT_TOKEN, SIGNING_SECRET, APP_TOKEN):
        assert secret not in caplog.text
