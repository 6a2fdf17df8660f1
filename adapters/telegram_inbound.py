"""Telegram updates in: commands, plain text and button presses as gateway messages."""

from __future__ import annotations

import re
from typing import NamedTuple

from telegram import Bot, CallbackQuery, Message, MessageEntity, Update, User

from gateway import ChatRef, ChatUser, IncomingMessage
from gateway.messages import MessageKind

__all__ = [
    "GENERAL_TOPIC",
    "PLATFORM",
    "Received",
    "message_delivery_id",
    "read_button",
    "read_message",
]

PLATFORM = "telegram"
#: The General topic of a forum is thread 1, and sending with message_thread_id=1 fails.
GENERAL_TOPIC = 1
# The command word runs to the first whitespace: Telegram's bot_command entity stops at a
# hyphen (``/new-session`` is marked as ``/new``), but the user typed the whole word.
_COMMAND_WORD = re.compile(r"/(\S+)")


class Received(NamedTuple):
    """An update for the gateway, and the message its reply answers."""

    incoming: IncomingMessage
    reply_to: int


def read_message(update: Update, bot: Bot) -> Received | None:
    """A person's new text message as TEXT or COMMAND; None when it is not for this bot."""
    message = update.message
    if message is None or message.text is None:
        return None
    user = message.from_user
    # Anonymous channel posts and group admins (GroupAnonymousBot), other bots, and a linked
    # channel's posts forwarded into its discussion group: no person to check access for.
    if user is None or user.is_bot or message.is_automatic_forward:
        return None
    command = _split_command(message)
    if command is None:
        kind, word, text = MessageKind.TEXT, "", message.text
    else:
        word, addressee, text = command
        # In a group, ``/diff@OtherBot`` is for another bot (Telegram sends it to all).
        if addressee and addressee.lower() != (bot.username or "").lower():
            return None
        kind = MessageKind.COMMAND
    incoming = IncomingMessage(
        chat=_chat_ref(message),
        user=_chat_user(user),
        text=text,
        delivery_id=message_delivery_id(bot, message),
        command=word,
        kind=kind,
        private=message.chat.type == "private",
    )
    return Received(incoming, message.message_id)


def message_delivery_id(bot: Bot, message: Message) -> str:
    """``<bot id>:<chat id>:<message id>``: the same for every copy of one message, forever.

    Not the update id: Telegram restarts update ids at a random number after a week without
    updates, and another bot (a new token) counts from its own start, so an old id can come
    back for a new message. A message id is unique only within its chat (and its bot).
    """
    return f"{bot.id}:{message.chat.id}:{message.message_id}"


def read_button(query: CallbackQuery) -> Received | None:
    """A press of one of our buttons as an ACTION in the pressed message's chat, else None."""
    message = query.message
    # A button under an inline-mode message, or under one too old to read, has no chat
    # (or no topic) we could answer in; payloads other than callback data are not ours.
    if not isinstance(message, Message) or not isinstance(query.data, str):
        return None
    incoming = IncomingMessage(
        chat=_chat_ref(message),
        user=_chat_user(query.from_user),
        text=query.data,
        delivery_id=query.id,
        command="",
        kind=MessageKind.ACTION,
    )
    return Received(incoming, message.message_id)


def _chat_ref(message: Message) -> ChatRef:
    thread = message.message_thread_id
    # Outside forum topics message_thread_id names a reply chain, and sending to it fails.
    topic = thread if message.is_topic_message and thread and thread != GENERAL_TOPIC else None
    return ChatRef(PLATFORM, str(message.chat.id), None if topic is None else str(topic))


def _chat_user(user: User) -> ChatUser:
    return ChatUser(PLATFORM, str(user.id), user.username or user.full_name)


def _split_command(message: Message) -> tuple[str, str, str] | None:
    """``(word, addressee, rest)`` when ``message`` starts with a bot command, else None.

    Telegram marks a command with a bot_command entity at offset 0 (``/etc/hosts`` gets none);
    the word is taken from the text up to whitespace, the rest keeps the user's quoting.
    """
    text = message.text or ""
    starts = any(
        entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0
        for entity in message.entities
    )
    match = _COMMAND_WORD.match(text) if starts else None
    if match is None:
        return None
    word, _, addressee = match.group(1).partition("@")
    return word, addressee, text[match.end() :].strip()
