"""Discord events in: app commands, button presses and typed messages as gateway messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import discord

from gateway import ChatRef, ChatUser, IncomingMessage
from gateway.messages import MessageKind

__all__ = ["button_press", "slash_message", "typed_message"]

# "/word rest": the word may be a command, an alias or a repository slug (the router decides);
# a "@BotName" suffix is dropped. Anything else starting with "/" (a path) is not for us.
_TEXT_COMMAND: Final = re.compile(r"/([\w.:-]+)(?:@\S*)?(?:\s+(.*))?", re.DOTALL)
# Messages people type; joins, pins, thread starters and other system messages are not.
_USER_MESSAGES: Final = frozenset({discord.MessageType.default, discord.MessageType.reply})
_THREAD_TYPES: Final = frozenset(
    {
        discord.ChannelType.public_thread,
        discord.ChannelType.private_thread,
        discord.ChannelType.news_thread,
    }
)


def slash_message(interaction: discord.Interaction, word: str, args: str) -> IncomingMessage:
    """An app command ``/word args:…`` as a COMMAND."""
    return IncomingMessage(
        chat=_chat_ref(interaction.channel, interaction.channel_id),
        user=_chat_user(interaction.user),
        text=args.strip(),
        delivery_id=str(interaction.id),
        command=word,
        private=isinstance(interaction.channel, discord.DMChannel),
    )


def button_press(interaction: discord.Interaction) -> IncomingMessage | None:
    """A press of one of our buttons as an ACTION carrying its opaque custom_id; else None."""
    if interaction.type is not discord.InteractionType.component:
        return None  # app commands and autocomplete are the CommandTree's
    data: Mapping[str, object] = interaction.data or {}
    action = data.get("custom_id")
    if data.get("component_type") != discord.ComponentType.button.value:
        return None  # we only ever send buttons
    if not isinstance(action, str) or not action:
        return None
    return IncomingMessage(
        chat=_chat_ref(interaction.channel, interaction.channel_id),
        user=_chat_user(interaction.user),
        text=action,
        delivery_id=str(interaction.id),
        command="",
        kind=MessageKind.ACTION,
    )


def typed_message(message: discord.Message) -> IncomingMessage | None:
    """A person's message as a COMMAND (``/word rest``) or TEXT; None when it is not for us."""
    if message.author.bot or message.webhook_id is not None:
        return None  # never answer ourselves, other bots or webhooks: no reply loops
    if message.type not in _USER_MESSAGES:
        return None
    content = message.content.strip()
    if not content:
        return None  # only stickers or files, or content we may not read
    if content.startswith("/"):
        match = _TEXT_COMMAND.fullmatch(content)
        if match is None:
            return None  # "/usr/bin …" is neither a command nor a plain message
        word, text, kind = match.group(1), (match.group(2) or "").strip(), MessageKind.COMMAND
    else:
        word, text, kind = "", message.content, MessageKind.TEXT
    return IncomingMessage(
        chat=_chat_ref(message.channel, message.channel.id),
        user=_chat_user(message.author),
        text=text,
        delivery_id=str(message.id),
        command=word,
        kind=kind,
        private=isinstance(message.channel, discord.DMChannel),
    )


def _chat_ref(channel: object, channel_id: int | None) -> ChatRef:
    if isinstance(channel, discord.Thread):
        return ChatRef("discord", str(channel.parent_id), str(channel.id))
    if isinstance(channel, discord.PartialMessageable) and channel.type in _THREAD_TYPES:
        # An uncached thread: its parent is unknown, but replies only need the thread id.
        return ChatRef("discord", str(channel.id), str(channel.id))
    return ChatRef("discord", str(channel_id))


def _chat_user(user: discord.User | discord.Member) -> ChatUser:
    return ChatUser("discord", str(user.id), user.display_name)
