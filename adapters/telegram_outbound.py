"""Telegram messages out: one rendered message or file to a chat or forum topic, via the Bot API."""

from __future__ import annotations

import asyncio

from telegram import Bot, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import RetryAfter

from adapters.telegram_errors import retry_after_seconds
from adapters.telegram_inbound import GENERAL_TOPIC, PLATFORM
from adapters.telegram_render import Outgoing, upload
from gateway import AdapterRejected, ChatRef

__all__ = ["edit_text", "send_one", "send_with_one_retry"]

#: A reply waits out one flood-control pause no longer than this; longer ones are dropped.
MAX_REPLY_RETRY_AFTER = 30.0

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


async def send_with_one_retry(
    bot: Bot,
    chat: ChatRef,
    message: Outgoing,
    reply_to: int | None,
) -> None:
    """:func:`send_one`; a reply waits out one flood-control pause of up to 30 s, then retries."""
    try:
        await send_one(bot, chat, message, reply_to)
    except RetryAfter as exc:
        delay = retry_after_seconds(exc)
        if delay > MAX_REPLY_RETRY_AFTER:
            raise
        # Flood control: Telegram names the pause; sending before it ends fails again.
        await asyncio.sleep(delay)
        await send_one(bot, chat, message, reply_to)


async def send_one(
    bot: Bot,
    chat: ChatRef,
    message: Outgoing,
    reply_to: int | None,
) -> int:
    """Send a text (with its keyboard) or a file; its message id. Failures raise TelegramError."""
    if chat.platform != PLATFORM:
        raise AdapterRejected(f"telegram: cannot send to a {chat.platform} chat")
    reply = (
        None
        if reply_to is None
        else ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
    )
    if message.file is not None:
        sent = await bot.send_document(
            chat_id=_chat_id(chat),
            document=upload(message.file),
            message_thread_id=_thread_id(chat),
            reply_parameters=reply,
        )
        return sent.message_id
    sent = await bot.send_message(
        chat_id=_chat_id(chat),
        text=message.text,
        parse_mode=ParseMode.HTML,
        message_thread_id=_thread_id(chat),
        link_preview_options=_NO_PREVIEW,
        reply_parameters=reply,
        reply_markup=message.keyboard,
    )
    return sent.message_id


async def edit_text(bot: Bot, chat: ChatRef, message_id: str, message: Outgoing) -> None:
    """Replace a sent message's text (editMessageText); failures raise TelegramError."""
    if chat.platform != PLATFORM:
        raise AdapterRejected(f"telegram: cannot edit in a {chat.platform} chat")
    await bot.edit_message_text(
        text=message.text,
        chat_id=_chat_id(chat),
        message_id=int(message_id),
        parse_mode=ParseMode.HTML,
        link_preview_options=_NO_PREVIEW,
        reply_markup=message.keyboard,
    )


def _chat_id(chat: ChatRef) -> int | str:
    # Numeric ids for chats; "@channelname" stays a string.
    try:
        return int(chat.chat_id)
    except ValueError:
        return chat.chat_id


def _thread_id(chat: ChatRef) -> int | None:
    if chat.thread_id is None:
        return None
    try:
        thread = int(chat.thread_id)
    except ValueError:
        raise AdapterRejected(f"telegram: thread id {chat.thread_id!r} is not a topic id") from None
    return None if thread == GENERAL_TOPIC else thread
