"""Workspace chat on Telegram: every slash command, plain text, buttons and files, real PTB."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.telegram import MAX_ATTACHMENT_BYTES, TelegramAdapter
from adapters.telegram_render import outgoing
from gateway import AdapterRateLimited, AdapterRejected, ChatRef, ChatUser, Document, Paragraph
from gateway.messages import Attachment, Button, IncomingMessage, MessageKind
from gateway.slash import SLASH_COMMANDS
from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.test_telegram import FORUM, GROUP, TOPIC, Sink, table
from tests.support.fake_telegram import (
    ALICE,
    ALICE_ID,
    BOT_ID,
    BOT_USERNAME,
    FakeTelegram,
    bot_command_entities,
    parse_telegram_html,
)

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

# The Telegram e2e fixtures, shared under the names pytest finds them by.
anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
sink = telegram_e2e.sink
adapter = telegram_e2e.adapter

BOB = {"id": 7, "is_bot": False, "first_name": "Bob", "username": "bob"}
OTHER_BOT = {"id": 555, "is_bot": True, "first_name": "Other", "username": "other_bot"}
# Telegram's stand-in sender for anonymous group admins.
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
APPROVE = "ap:01HZX3Q9:5f2a9c1e0b7d4e3a"
DENY = "dn:01HZX3Q9:5f2a9c1e0b7d4e3a"
# 64 bytes, the most callback_data may hold; two bytes per character in UTF-8.
WIDEST = "\N{LATIN SMALL LETTER A WITH DIAERESIS}" * 32
TOPIC_REF = ChatRef("telegram", str(FORUM), str(TOPIC))


def received(sink: Sink, kind: MessageKind) -> list[IncomingMessage]:
    return [message for message in sink.received if message.kind == kind]


def with_buttons(document: Document, *buttons: Button) -> Document:
    return Document(document.blocks, buttons=buttons)


# -- commands ------------------------------------------------------------------------------------


def test_the_fake_marks_commands_as_telegram_does():
    # The bot_command entity stops at a hyphen, takes a valid @username, and skips paths.
    assert bot_command_entities("/new-session fix") == [
        {"type": "bot_command", "offset": 0, "length": 4}
    ]
    assert bot_command_entities(f"/gs@{BOT_USERNAME} x")[0]["length"] == 4 + len(BOT_USERNAME)
    assert bot_command_entities("/etc/hosts is wrong") == []
    assert bot_command_entities("see /diff") == [{"type": "bot_command", "offset": 4, "length": 5}]


async def test_every_slash_command_and_alias_reaches_the_sink_as_typed(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    words = sorted(
        {
            word
            for command in SLASH_COMMANDS
            for word in (command.name, command.menu_name, *command.aliases)
        }
    )
    await fake.push(*(fake.message_update(f'/{word}  a "b  c" ') for word in words))
    await fake.wait_for(lambda: len(fake.sent) == len(words))

    assert sorted((m.kind, m.command, m.text) for m in sink.received) == [
        (MessageKind.COMMAND, word, 'a "b  c"') for word in words
    ]
    assert {"new-session", "new_session", "git-status", "gs", "repo"} <= {
        m.command for m in sink.received
    }


async def test_the_bot_suffix_is_stripped_and_other_bots_commands_are_ignored(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    group: dict[str, Any] = {"chat_id": GROUP, "chat_type": "group"}
    await fake.push(
        fake.message_update("/diff@OtherBot", **group),
        fake.message_update("/new-session@other_bot fix it", **group),
        fake.message_update(f"/new-session@{BOT_USERNAME} fix the\nflaky test", **group),
        fake.message_update(f"/Git_Status@{BOT_USERNAME.upper()}", user=BOB, **group),
        fake.message_update("/follow-up  and the docs ", **group),
    )
    await fake.wait_for(lambda: len(fake.sent_to(GROUP)) == 3)
    await adapter.stop()  # every fetched update is handled before stop returns

    assert [(m.command, m.text) for m in sink.received] == [
        ("new-session", "fix the\nflaky test"),
        ("Git_Status", ""),
        ("follow-up", "and the docs"),
    ]
    assert sink.received[1].user == ChatUser("telegram", "7", "bob")
    assert {m.chat for m in sink.received} == {ChatRef("telegram", str(GROUP))}


async def test_any_command_word_is_passed_on_for_the_router(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    await fake.push(
        fake.message_update("/api diff src/", chat_id=FORUM, thread_id=TOPIC),
        fake.message_update("/repo:web-app git-status", chat_id=FORUM, thread_id=TOPIC),
        fake.message_update(f"/my_repo@{BOT_USERNAME} run test", chat_id=FORUM, thread_id=TOPIC),
    )
    await fake.wait_for(lambda: len(fake.sent_to(FORUM)) == 3)

    assert [(m.kind, m.command, m.text) for m in sink.received] == [
        (MessageKind.COMMAND, "api", "diff src/"),
        (MessageKind.COMMAND, "repo:web-app", "git-status"),
        (MessageKind.COMMAND, "my_repo", "run test"),
    ]
    assert {m.chat for m in sink.received} == {TOPIC_REF}
    assert {m.message_thread_id for m in fake.sent_to(FORUM)} == {TOPIC}


# -- plain text ----------------------------------------------------------------------------------


async def test_plain_text_is_delivered_and_silence_sends_nothing(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    # An unbound chat: the router answers plain text with None, so nothing may be sent.
    sink.reply = lambda m: None if m.kind == MessageKind.TEXT else Document.text("ok")
    await fake.push(
        fake.message_update("  please also fix the tests "),
        fake.message_update("/etc/hosts is wrong", chat_id=GROUP, chat_type="group", user=BOB),
        fake.message_update("and the docs", chat_id=FORUM, thread_id=TOPIC),
        fake.message_update("/kanban list"),
    )
    await fake.wait_for(lambda: fake.sent)
    await adapter.stop()

    assert [(m.kind, m.command, m.text, m.chat) for m in received(sink, MessageKind.TEXT)] == [
        (MessageKind.TEXT, "", "  please also fix the tests ", ChatRef("telegram", str(ALICE_ID))),
        (MessageKind.TEXT, "", "/etc/hosts is wrong", ChatRef("telegram", str(GROUP))),
        (MessageKind.TEXT, "", "and the docs", TOPIC_REF),
    ]
    assert [m.text for m in fake.sent] == ["ok"]


async def test_a_reply_to_plain_text_goes_to_its_topic(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    update = fake.message_update("make it faster", chat_id=FORUM, thread_id=TOPIC)
    await fake.push(update)
    [reply] = await fake.wait_for(lambda: fake.sent_to(FORUM))

    [message] = sink.received
    assert message.delivery_id == f"{BOT_ID}:{FORUM}:{update['message']['message_id']}"
    assert message.user == ChatUser("telegram", str(ALICE_ID), "alice")
    assert reply.message_thread_id == TOPIC
    assert reply.text == "echo: make it faster"
    assert reply.reply_to is not None


async def test_bots_edits_and_forwards_are_not_delivered(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    edited = fake.message_update("/commit now")
    edited["edited_message"] = {**edited.pop("message"), "edit_date": 1_700_000_100}
    forwarded = fake.message_update("a channel post", chat_id=GROUP, chat_type="supergroup")
    forwarded["message"]["is_automatic_forward"] = True
    await fake.push(
        fake.message_update("/diff", chat_id=GROUP, chat_type="group", user=OTHER_BOT),
        fake.message_update("hello", chat_id=GROUP, chat_type="group", user=OTHER_BOT),
        fake.message_update("/push", chat_id=GROUP, chat_type="group", user=ANONYMOUS_ADMIN),
        edited,
        forwarded,
        fake.message_update("/queue"),
    )
    await fake.wait_for(lambda: fake.sent)
    await adapter.stop()

    assert [(m.command, m.text) for m in sink.received] == [("queue", "")]
    assert [m.text for m in fake.sent] == ["echo: "]


# -- buttons -------------------------------------------------------------------------------------


async def test_buttons_go_on_the_last_part_and_a_press_comes_back_as_an_action(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    buttons = (Button("Approve", APPROVE), Button("Deny", DENY), Button("Wide", WIDEST))
    sink.reply = lambda m: (
        with_buttons(table(300), *buttons)
        if m.kind == MessageKind.COMMAND
        else Document.text(f"pressed {m.text}")
    )
    await fake.push_text("/push", chat_id=FORUM, thread_id=TOPIC)
    await fake.wait_for(lambda: any(m.keyboard for m in fake.sent))

    parts = fake.sent_to(FORUM)
    assert len(parts) >= 2
    assert [m.keyboard is not None for m in parts] == [False] * (len(parts) - 1) + [True]
    last = parts[-1]
    assert last.callback_data == [APPROVE, DENY, WIDEST]
    assert [key["text"] for row in last.keyboard or [] for key in row] == [
        "Approve",
        "Deny",
        "Wide",
    ]

    query_id = await fake.press(last, APPROVE, user=BOB)
    [reply] = await fake.wait_for(
        lambda: [m for m in fake.sent_to(FORUM) if m.text.startswith("pressed")]
    )
    [action] = received(sink, MessageKind.ACTION)
    assert action == IncomingMessage(
        chat=TOPIC_REF,
        user=ChatUser("telegram", "7", "bob"),
        text=APPROVE,
        delivery_id=query_id,
        command="",
        kind=MessageKind.ACTION,
    )
    assert query_id in fake.answered
    assert (reply.message_thread_id, reply.reply_to) == (TOPIC, last.message_id)
    assert reply.keyboard is None

    await fake.press(last, WIDEST)
    await fake.wait_for(lambda: len(received(sink, MessageKind.ACTION)) == 2)
    assert received(sink, MessageKind.ACTION)[1].text == WIDEST


async def test_a_press_is_answered_when_the_gateway_says_nothing_or_fails(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    fake.add_chat(GROUP)
    card_document = with_buttons(Document.text("ok?"), Button("Yes", APPROVE), Button("No", DENY))
    await adapter.send(ChatRef("telegram", str(GROUP)), card_document)
    [card] = fake.sent

    def reply(message: IncomingMessage) -> Document | None:
        if message.text == DENY:
            raise RuntimeError("router bug")
        return None

    sink.reply = reply
    quiet = await fake.press(card, APPROVE)
    failing = await fake.press(card, DENY)
    await fake.wait_for(lambda: len(fake.sent) == 2)
    await fake.wait_for(lambda: {quiet, failing} <= fake.answered.keys())
    await adapter.stop()

    assert [m.delivery_id for m in sink.received] == [quiet, failing]
    assert "failed" in fake.sent[1].text
    assert len(fake.sent) == 2


async def test_a_press_counts_even_when_its_answer_is_refused(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink, caplog: pytest.LogCaptureFixture
):
    fake.add_chat(GROUP)
    card_document = with_buttons(Document.text("ok?"), Button("Yes", APPROVE))
    await adapter.send(ChatRef("telegram", str(GROUP)), card_document)
    fake.fail_next(
        "answerCallbackQuery",
        400,
        {"ok": False, "error_code": 400, "description": "Bad Request: query is too old"},
    )
    await fake.press(fake.sent[0], APPROVE)
    await fake.wait_for(lambda: len(fake.sent) == 2)

    assert [m.text for m in sink.received] == [APPROVE]
    assert fake.sent[1].text == f"echo: {APPROVE}"
    assert "answerCallbackQuery failed" in caplog.text
    assert "query is too old" in caplog.text.lower()


async def test_a_document_of_buttons_only_still_has_text(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    sink.reply = lambda m: Document(
        (), buttons=(Button("api", "repo:api"), Button("all", "repo:*"))
    )
    await fake.push_text("/commit")
    [card] = await fake.wait_for(lambda: fake.sent)

    assert parse_telegram_html(card.text).strip()
    assert card.callback_data == ["repo:api", "repo:*"]


def test_keyboards_keep_telegram_row_and_size_limits():
    many = tuple(Button(f"b{n}", f"a{n}") for n in range(150))
    [part] = outgoing(Document.text("x"), max_parts=5, max_file_bytes=1)
    assert part.keyboard is None
    [card] = outgoing(Document((Paragraph("x"),), buttons=many), max_parts=5, max_file_bytes=1)
    assert card.keyboard is not None
    rows = card.keyboard.inline_keyboard
    assert sum(len(row) for row in rows) == 100
    assert all(len(row) <= 3 for row in rows)
    wide = (Button("a rather long label here", "x"), Button("ok", "y"), Button("no", "z"))
    [card] = outgoing(Document((Paragraph("x"),), buttons=wide), max_parts=5, max_file_bytes=1)
    assert card.keyboard is not None
    assert [[key.text for key in row] for row in card.keyboard.inline_keyboard] == [
        ["a rather long label here"],
        ["ok", "no"],
    ]


# -- attachments ---------------------------------------------------------------------------------


async def test_attachments_follow_the_text_as_uploaded_files(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    diff = b"--- a/x\n+++ b/x\n@@\n-\xff old\n+new \xe2\x9c\x93\n"
    sink.reply = lambda m: Document(
        (Paragraph("3 files changed"),),
        buttons=(Button("Commit", "commit:ws1"),),
        attachments=(
            # Not the type the name suggests (text/x-diff): the gateway's type wins.
            Attachment("changes ü.diff", diff, "text/plain"),
            Attachment("../../etc/summary.json", b'{"a": 1}', "application/json"),
        ),
    )
    await fake.push_text("/diff", chat_id=FORUM, thread_id=TOPIC)
    await fake.wait_for(lambda: len(fake.files) == 2)

    [text] = fake.sent_to(FORUM)
    assert text.callback_data == ["commit:ws1"]
    assert [(f.filename, f.content, f.mime, f.message_thread_id) for f in fake.files] == [
        ("changes ü.diff", diff, "text/plain", TOPIC),
        ("summary.json", b'{"a": 1}', "application/json", TOPIC),
    ]
    # The text first, then the files in order.
    sends = [c.method for c in fake.calls if c.method in ("sendMessage", "sendDocument")]
    assert sends == ["sendMessage", "sendDocument", "sendDocument"]
    assert text.message_id < fake.files[0].message_id < fake.files[1].message_id


async def test_a_file_over_the_limit_is_named_in_a_line_instead(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    assert adapter.capabilities.buttons
    assert adapter.capabilities.max_attachment_bytes == MAX_ATTACHMENT_BYTES == 5 * 1024 * 1024
    largest = bytes(range(256)) * (MAX_ATTACHMENT_BYTES // 256)
    sink.reply = lambda m: Document(
        (),
        attachments=(
            Attachment("huge.diff", b"x" * (MAX_ATTACHMENT_BYTES + 1)),
            Attachment("empty.txt", b""),
            Attachment("largest.bin", largest, "application/octet-stream"),
        ),
    )
    await fake.push_text("/diff --full")
    await fake.wait_for(lambda: fake.files)

    assert [m.text for m in fake.sent] == [
        "huge.diff was too large to send (5.0 MB; the limit is 5.0 MB).",
        "empty.txt is empty, so it was not sent.",
    ]
    [file] = fake.files
    assert (file.filename, file.content == largest) == ("largest.bin", True)
    assert [c.status for c in fake.calls_of("sendDocument")] == [200]


async def test_notifications_carry_buttons_and_files(
    fake: FakeTelegram, adapter: TelegramAdapter, sink: Sink
):
    fake.add_chat(FORUM, topics=(TOPIC,))
    document = Document(
        (Paragraph("t1 needs approval: push <main>"),),
        buttons=(Button("Approve", APPROVE), Button("Deny", DENY)),
        attachments=(Attachment("plan.md", b"# plan\n", "text/markdown"),),
    )
    await adapter.send(TOPIC_REF, document)

    [card] = fake.sent
    assert (card.text, card.message_thread_id) == ("t1 needs approval: push &lt;main&gt;", TOPIC)
    assert card.callback_data == [APPROVE, DENY]
    assert [(f.filename, f.content, f.message_thread_id) for f in fake.files] == [
        ("plan.md", b"# plan\n", TOPIC)
    ]
    query_id = await fake.press(card, DENY, user=ALICE)
    await fake.wait_for(lambda: len(fake.sent) == 2)
    [action] = sink.received
    assert (action.kind, action.text, action.chat, action.delivery_id) == (
        MessageKind.ACTION,
        DENY,
        TOPIC_REF,
        query_id,
    )


async def test_a_refused_upload_is_mapped_like_a_refused_message(
    fake: FakeTelegram, adapter: TelegramAdapter
):
    fake.add_chat(GROUP)
    files = Document((), attachments=(Attachment("a.txt", b"a"),))
    fake.fail_next(
        "sendDocument",
        403,
        {"ok": False, "error_code": 403, "description": "Forbidden: bot was kicked"},
    )
    with pytest.raises(AdapterRejected, match="kicked"):
        await adapter.send(ChatRef("telegram", str(GROUP)), files)
    fake.fail_next("sendDocument", 429)
    with pytest.raises(AdapterRateLimited):
        await adapter.send(ChatRef("telegram", str(GROUP)), files)
    assert not fake.files
