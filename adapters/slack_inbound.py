"""Slack payloads in: slash commands, mentions, messages and button presses as gateway messages."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from gateway import ChatRef, ChatUser, IncomingMessage
from gateway.messages import MessageKind
from gateway.slash import SLASH_COMMANDS, SlashCommand, canonical

__all__ = [
    "PLATFORM",
    "action_message",
    "mention_message",
    "mentions",
    "read_mention",
    "slash_command_names",
    "slash_message",
    "text_message",
    "unescape",
]

PLATFORM: Final = "slack"

_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>")
_AFTER_MENTION = re.compile(r"[\s:,]*(?P<word>[^\s:,]+)(?P<rest>(?:\s.*)?)$", re.DOTALL)
_SEPARATORS = re.compile(r"^[\s:,]+")
# Slack escapes these three in every text it sends us; the command parser wants them raw.
_UNESCAPES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def slash_command_names(
    kanban_command: str, menu: Sequence[SlashCommand] = SLASH_COMMANDS
) -> list[str]:
    """``/kanban`` (or its configured name), then every menu command and alias (those that
    the Slack app's manifest declares reach us)."""
    names = [kanban_command]
    for command in menu:
        names.extend(f"/{word}" for word in (command.name, *command.aliases))
    return list(dict.fromkeys(names))


def unescape(text: str) -> str:
    """Undo Slack's escaping of ``&``, ``<`` and ``>`` in text it sends us."""
    for entity, char in _UNESCAPES:
        text = text.replace(entity, char)
    return text


def mentions(text: str, bot_user_id: str | None) -> bool:
    """Whether ``text`` mentions the bot (Slack then sends an ``app_mention`` for it too)."""
    return any(bot_user_id in (None, m["user"]) for m in _MENTION.finditer(text))


def read_mention(
    text: str, bot_user_id: str | None, kanban_word: str
) -> tuple[MessageKind, str, str] | None:
    """``<@BOT> git-status --all`` → (COMMAND, "git-status", "--all"); None without a mention.

    The first word after a mention of the bot names a command when it is one of the slash
    commands (or ``kanban_word``, the configured name of ``/kanban``); otherwise the whole
    message, without the mention, is plain text for the agent.
    """
    first: re.Match[str] | None = None
    for mention in _MENTION.finditer(text):
        if bot_user_id is not None and mention["user"] != bot_user_id:
            continue
        first = first or mention
        command = _AFTER_MENTION.match(text, mention.end())
        if command is None:
            continue
        word = command["word"].removeprefix("/").split("@", 1)[0]
        rest = unescape(command["rest"].strip())
        if word and canonical(word) is not None:
            return MessageKind.COMMAND, word, rest
        if word.lower() == kanban_word.lower():
            return MessageKind.COMMAND, "kanban", rest
    if first is None:
        return None
    before = text[: first.start()].strip()
    after = _SEPARATORS.sub("", text[first.end() :]).strip()
    return MessageKind.TEXT, "", unescape(f"{before} {after}".strip())


def slash_message(body: Mapping[str, Any], kanban_command: str) -> IncomingMessage | None:
    """A slash command payload as a COMMAND (None without a channel or a user)."""
    channel, user_id = _str(body.get("channel_id")), _str(body.get("user_id"))
    if channel is None or user_id is None:
        return None
    typed = str(body.get("command", ""))
    # A renamed /kanban (config ``command``) still means kanban to the router.
    word = "kanban" if typed == kanban_command else typed.removeprefix("/").split("@", 1)[0]
    return IncomingMessage(
        chat=ChatRef(PLATFORM, channel),
        user=ChatUser(PLATFORM, user_id, _str(body.get("user_name"))),
        text=unescape(str(body.get("text", ""))).strip(),
        delivery_id=_slash_delivery_id(body),
        command=word,
        kind=MessageKind.COMMAND,
        # Direct-message channel ids start with D; Slack names them "directmessage".
        private=body.get("channel_name") == "directmessage" or channel.startswith("D"),
    )


def mention_message(
    event: Mapping[str, Any], body: Mapping[str, Any], bot_user_id: str | None, kanban_word: str
) -> IncomingMessage | None:
    """An ``app_mention`` as a COMMAND or TEXT, in the mention's thread (or a new one on it)."""
    read = read_mention(str(event.get("text", "")), bot_user_id, kanban_word)
    channel, user_id, ts = _str(event.get("channel")), _str(event.get("user")), event.get("ts")
    if read is None or channel is None or user_id is None:
        return None
    kind, command, text = read
    if kind is MessageKind.TEXT and not text:
        return None
    # A top-level mention is answered in a thread started on it.
    thread = _str(event.get("thread_ts")) or _str(ts)
    return IncomingMessage(
        chat=ChatRef(PLATFORM, channel, thread),
        user=ChatUser(PLATFORM, user_id),
        text=text,
        delivery_id=_event_delivery_id(body, channel, ts),
        command=command,
        kind=kind,
        private=event.get("channel_type") == "im",
    )


def text_message(
    event: Mapping[str, Any], body: Mapping[str, Any], bot_user_id: str | None
) -> IncomingMessage | None:
    """A user's ordinary ``message`` event as TEXT; None for edits, bots, ourselves, mentions."""
    # Subtypes are edits, deletions, joins, bot posts, broadcasts: none is a user's new message.
    if event.get("subtype") is not None or event.get("bot_id") is not None:
        return None
    channel, user_id, text = _str(event.get("channel")), _str(event.get("user")), event.get("text")
    if channel is None or user_id is None or user_id == bot_user_id:
        return None
    if not isinstance(text, str) or not text.strip():
        return None
    # In channels Slack also sends an app_mention for this message; that one is delivered.
    if (
        event.get("channel_type") != "im"
        and bot_user_id is not None
        and mentions(text, bot_user_id)
    ):
        return None
    ts = event.get("ts")
    return IncomingMessage(
        chat=ChatRef(PLATFORM, channel, _str(event.get("thread_ts"))),
        user=ChatUser(PLATFORM, user_id),
        text=unescape(text).strip(),
        delivery_id=_event_delivery_id(body, channel, ts),
        command="",
        kind=MessageKind.TEXT,
    )


def action_message(body: Mapping[str, Any]) -> IncomingMessage | None:
    """A ``block_actions`` press of one of our buttons as an ACTION, where the message is."""
    actions = body.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(action, dict) or not _str(action.get("value")):
        return None
    container = _dict(body.get("container"))
    message = _dict(body.get("message"))
    user = _dict(body.get("user"))
    channel = _str(container.get("channel_id")) or _str(_dict(body.get("channel")).get("id"))
    user_id = _str(user.get("id"))
    if channel is None or user_id is None:
        return None
    message_ts = _str(container.get("message_ts")) or _str(message.get("ts"))
    thread = _str(container.get("thread_ts")) or _str(message.get("thread_ts"))
    if thread == message_ts:
        # The message is a thread's parent (it got replies): it lives in the channel itself.
        thread = None
    delivery = _str(body.get("trigger_id")) or f"{channel}:{action.get('action_ts', '')}"
    return IncomingMessage(
        chat=ChatRef(PLATFORM, channel, thread),
        user=ChatUser(PLATFORM, user_id, _str(user.get("username")) or _str(user.get("name"))),
        # Opaque: the router validates it; the adapter neither parses nor trusts it.
        text=str(action["value"]),
        delivery_id=delivery,
        command="",
        kind=MessageKind.ACTION,
    )


def _event_delivery_id(body: Mapping[str, Any], channel: str, ts: object) -> str:
    # A Slack retry carries the same event_id, so the router drops it as a redelivery.
    event_id = body.get("event_id")
    return str(event_id) if event_id else f"{channel}:{ts}"


def _slash_delivery_id(body: Mapping[str, Any]) -> str:
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and trigger_id:
        return trigger_id
    # No trigger_id (never seen in practice): the response_url is unique per invocation too.
    seed = "|".join(str(body.get(key, "")) for key in ("team_id", "channel_id", "response_url"))
    return "slash-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}
