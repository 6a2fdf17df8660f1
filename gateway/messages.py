"""The values adapters and the gateway exchange: incoming messages, chat refs, documents."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatRef:
    """Where to reply: a platform, a chat, and optionally a thread or forum topic in it."""

    platform: str
    chat_id: str
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChatUser:
    """Who sent a message, by the platform's stable id (display names are for show only)."""

    platform: str
    user_id: str
    display_name: str | None = None

    @property
    def key(self) -> str:
        """``telegram:12345``: how access control names this user."""
        return f"{self.platform}:{self.user_id}"


class MessageKind(enum.StrEnum):
    """What an adapter received."""

    COMMAND = "command"  # a slash command: ``command`` names it, ``text`` is what follows
    TEXT = "text"  # a plain message (a follow-up to the agent in a bound chat)
    ACTION = "action"  # a button press: ``text`` is the button's action string


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A command, plain message or button press as an adapter received it.

    For a command, ``command`` is the word after the slash as the user typed it (without the
    slash or a ``@BotName`` suffix; any case, hyphen or underscore form — the router normalises
    it) and ``text`` is what follows (``create "x" --assignee y``). ``delivery_id`` is the
    platform's id for this delivery (update id, message id, event id, callback id), used to drop
    redeliveries.
    """

    chat: ChatRef
    user: ChatUser
    text: str
    delivery_id: str
    command: str = "kanban"
    kind: MessageKind = MessageKind.COMMAND
    #: True only where the platform says the chat is a one-to-one conversation with the bot
    #: (secrets such as a web login link are sent nowhere else).
    private: bool = False


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Plain text; adapters escape it."""

    text: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A short title line."""

    text: str


@dataclass(frozen=True, slots=True)
class Preformatted:
    """Aligned text (tables): rendered in a code block, never reflowed."""

    text: str


Block = Paragraph | Heading | Preformatted

#: Telegram's callback_data limit; every platform's button payload is kept within it.
MAX_ACTION_BYTES = 64


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a message; pressing it sends ``action`` back as an ACTION message."""

    label: str
    action: str

    def __post_init__(self) -> None:
        if not self.action or len(self.action.encode()) > MAX_ACTION_BYTES:
            raise ValueError(f"button action must be 1..{MAX_ACTION_BYTES} bytes: {self.action!r}")


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with a message (a full diff past the chat budget)."""

    filename: str
    content: bytes
    mime: str = "text/plain"


@dataclass(frozen=True, slots=True)
class Document:
    """What the gateway says; each adapter renders, escapes and splits it for its platform."""

    blocks: tuple[Block, ...]
    #: Shown once after the last part when a long document had to be cut.
    overflow_footer: str = "… (cut; run `kanban` in a terminal for the full output)"
    #: Buttons shown under the (last part of the) message; text-only adapters list the
    #: equivalent commands instead.
    buttons: tuple[Button, ...] = ()
    #: Files sent after the text.
    attachments: tuple[Attachment, ...] = ()

    @classmethod
    def text(cls, *lines: str) -> Document:
        """A document of plain paragraphs."""
        return cls(tuple(Paragraph(line) for line in lines))
