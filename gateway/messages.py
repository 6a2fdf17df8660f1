"""The values adapters and the gateway exchange: incoming messages, chat refs, documents."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A ``/kanban …`` command as an adapter received it.

    ``text`` is what follows the command word (``create "x" --assignee y``). ``delivery_id`` is
    the platform's id for this delivery (update id, message id, event id), used to drop
    redeliveries.
    """

    chat: ChatRef
    user: ChatUser
    text: str
    delivery_id: str


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


@dataclass(frozen=True, slots=True)
class Document:
    """What the gateway says; each adapter renders, escapes and splits it for its platform."""

    blocks: tuple[Block, ...]
    #: Shown once after the last part when a long document had to be cut.
    overflow_footer: str = "… (cut; run `kanban` in a terminal for the full output)"
    #: Buttons or other extras an adapter may offer; plain adapters ignore them.
    extras: dict[str, str] = field(default_factory=dict)

    @classmethod
    def text(cls, *lines: str) -> Document:
        """A document of plain paragraphs."""
        return cls(tuple(Paragraph(line) for line in lines))
