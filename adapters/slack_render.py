"""Slack's wire formats: mrkdwn and Block Kit out; slash, event, button payloads and errors in."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any, Final

from slack_sdk.errors import SlackApiError

from gateway import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    Paragraph,
    Preformatted,
    split_text,
)
from gateway.messages import Attachment, Button, MessageKind
from gateway.slash import SLASH_COMMANDS, canonical

__all__ = [
    "ACTION_PREFIX",
    "action_message",
    "buttons_fallback",
    "describe_error",
    "escape",
    "map_api_error",
    "mention_message",
    "mentions",
    "read_mention",
    "render",
    "render_parts",
    "reply_blocks",
    "slash_command_names",
    "slash_message",
    "text_message",
    "too_large_line",
    "unescape",
]

PLATFORM: Final = "slack"
MAX_MESSAGE_CHARS: Final = 4000
MAX_PARTS: Final = 5
FENCE: Final = "```"
#: Block Kit limits: a section's text, blocks per message, a button's label.
MAX_SECTION_CHARS: Final = 3000
MAX_BLOCKS: Final = 50
MAX_LABEL_CHARS: Final = 75
#: Slack allows 25 elements per actions block; 5 keeps a row of buttons readable.
BUTTONS_PER_ROW: Final = 5
#: Web API errors that retrying cannot fix: the channel is gone or the bot is not in it.
REJECTED_ERRORS: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
#: Every button's action_id starts with this; the adapter listens for it, and only it.
ACTION_PREFIX: Final = "kb-"

_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>")
_AFTER_MENTION = re.compile(r"[\s:,]*(?P<word>[^\s:,]+)(?P<rest>(?:\s.*)?)$", re.DOTALL)
_SEPARATORS = re.compile(r"^[\s:,]+")
# Slack escapes these three in every text it sends us; the command parser wants them raw.
_UNESCAPES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))

Block = dict[str, Any]


# --- outgoing: mrkdwn --------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three control characters and break any triple backtick.

    Backticks cannot be escaped in mrkdwn; a zero-width space keeps user text from opening or
    closing a code block, so the only fences in a rendered message are the ones we put there.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"``(?=`)", "``\u200b", text)


def render(document: Document) -> str:
    """The whole document as one mrkdwn string (before splitting)."""
    lines: list[str] = []
    for block in document.blocks:
        if isinstance(block, Heading):
            title = " ".join(block.text.split())
            if title:
                lines.append(f"*{escape(title)}*")
        elif isinstance(block, Preformatted):
            lines.extend((FENCE, escape(block.text.rstrip("\n")), FENCE))
        elif isinstance(block, Paragraph):
            lines.append(escape(block.text))
    return "\n".join(lines)


def render_parts(
    document: Document, limit: int = MAX_MESSAGE_CHARS, max_parts: int = MAX_PARTS
) -> list[str]:
    """Render and split: at most ``max_parts`` parts of at most ``limit`` chars, fences balanced."""
    text = render(document)
    footer = escape(document.overflow_footer)
    # Room for a reopening fence at the start and a closing one at the end of every part.
    room = limit - 2 * (len(FENCE) + 1)
    every = split_text(text, room, max_parts=sys.maxsize, footer=footer)
    if len(every) <= max_parts:
        return _balance_fences(every)
    kept = split_text(text, room, max_parts=max_parts, footer=footer)
    # split_text put the footer at the end of the last part; it may be inside a code block, so
    # take it off, balance, and put it back after the closing fence.
    kept[-1] = kept[-1][: -(len(footer) + 1)]
    parts = _balance_fences(kept)
    if parts:
        parts[-1] = f"{parts[-1]}\n{footer}"
    else:
        parts = [footer]
    return parts


def _balance_fences(parts: list[str]) -> list[str]:
    """Close a code block left open at the end of a part and reopen it in the next."""
    balanced: list[str] = []
    open_block = False
    for part in parts:
        lines = part.split("\n")
        if open_block:
            if lines[0] == FENCE:
                # The block closes right at the start: drop the fence we closed it with already.
                lines = lines[1:]
            else:
                lines.insert(0, FENCE)
        open_block = False
        for line in lines:
            if line == FENCE:
                open_block = not open_block
        if open_block:
            if lines and lines[-1] == FENCE:
                # A block opened on the last line: move the opener to the next part instead.
                lines.pop()
            else:
                lines.append(FENCE)
        body = "\n".join(lines)
        if body.strip():
            balanced.append(body)
    return balanced


# --- outgoing: Block Kit -----------------------------------------------------------------------


def reply_blocks(text: str, buttons: Sequence[Button]) -> list[Block]:
    """``text`` as section blocks (≤ 3000 chars each, fences balanced) then rows of buttons.

    A message part is up to 4000 chars, more than one section takes, so it is cut again on line
    boundaries. Buttons that would take the message past Slack's 50 blocks are left off.
    """
    room = MAX_SECTION_CHARS - 2 * (len(FENCE) + 1)
    chunks = (
        _balance_fences(split_text(text, room, max_parts=sys.maxsize, footer="")) if text else []
    )
    blocks: list[Block] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks
    ]
    for start in range(0, len(buttons), BUTTONS_PER_ROW):
        if len(blocks) >= MAX_BLOCKS:
            break
        row = buttons[start : start + BUTTONS_PER_ROW]
        elements = [_button(start + offset, button) for offset, button in enumerate(row)]
        blocks.append({"type": "actions", "elements": elements})
    return blocks


def _button(index: int, button: Button) -> Block:
    label = " ".join(button.label.split()) or button.action
    if len(label) > MAX_LABEL_CHARS:
        label = label[: MAX_LABEL_CHARS - 1] + "…"
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": label, "emoji": True},
        # Unique within the message, as Slack requires; the press is matched by the prefix.
        "action_id": f"{ACTION_PREFIX}{index}",
        # Opaque to us: passed back verbatim when pressed.
        "value": button.action,
    }


def buttons_fallback(buttons: Sequence[Button]) -> str:
    """The notification text of a message that is only buttons (Slack wants a text too)."""
    return escape(" · ".join(" ".join(button.label.split()) for button in buttons)) or "…"


def too_large_line(attachment: Attachment, limit: int) -> str:
    """What is said instead of sending a file past ``limit`` bytes."""
    return escape(
        f"📎 {attachment.filename} was not sent: {_size(len(attachment.content))} is over the "
        f"{_size(limit)} limit for files here."
    )


def _size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count} bytes"
    return f"{count / (1024 * 1024):.1f} MB"


def slash_command_names(kanban_command: str) -> list[str]:
    """``/kanban`` (or its configured name), then every workspace command and alias."""
    names = [kanban_command]
    for command in SLASH_COMMANDS:
        names.extend(f"/{word}" for word in (command.name, *command.aliases))
    return list(dict.fromkeys(names))


# --- incoming ----------------------------------------------------------------------------------


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


# --- Web API errors ----------------------------------------------------------------------------


def map_api_error(exc: SlackApiError, method: str) -> AdapterError:
    """A Web API failure as the gateway's error: rate limited, rejected for good, or other."""
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = next(
            (value for key, value in headers.items() if str(key).lower() == "retry-after"), None
        )
        return AdapterRateLimited(_seconds(retry_after), f"slack {method} rate limited")
    if error in REJECTED_ERRORS:
        return AdapterRejected(f"slack refused {method}: {error}")
    return AdapterError(f"slack {method} failed: {error or f'HTTP {status}'}")


def _seconds(value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        return 1.0
    return seconds if seconds >= 0 else 1.0


def describe_error(exc: BaseException) -> str:
    """A short reason for a log line or an error message (never the whole response)."""
    # SlackApiError's str() embeds the whole response; the error code is what a human needs.
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"
    return str(exc) or type(exc).__name__
