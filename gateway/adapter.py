"""The adapter contract: what the gateway needs from a chat platform, and nothing more."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.messages import ChatRef, Document, IncomingMessage
from gateway.slash import SLASH_COMMANDS, SlashCommand

#: The gateway's handler for incoming commands; returns the reply (or None for no reply).
MessageSink = Callable[[IncomingMessage], Awaitable[Document | None]]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can show."""

    max_message_chars: int
    max_parts: int = 5
    #: Can show buttons whose presses come back as ACTION messages.
    buttons: bool = False
    #: Largest file the adapter will send; 0 when it cannot send files at all.
    max_attachment_bytes: int = 0
    #: Can edit a message it sent (``EditingAdapter.edit``): live progress is edited in place.
    edits: bool = False


class ChatAdapter(Protocol):
    """One platform. Started and stopped by the gateway inside its own event loop."""

    name: str
    capabilities: Capabilities

    async def start(
        self, sink: MessageSink, *, menu: Sequence[SlashCommand] = SLASH_COMMANDS
    ) -> None:
        """Connect and begin delivering commands to ``sink``; return once running.

        ``menu`` is what the platform's command menu lists (``gateway.slash.chat_menu``: the
        shared commands and the surfaces' own, such as ``/web``)."""
        ...

    async def stop(self) -> None:
        """Stop receiving and disconnect; safe to call twice."""
        ...

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        """Render and send; the platform id of the (last) message sent, when it has one.

        Raise AdapterRateLimited / AdapterError on failure.
        """
        ...


class EditingAdapter(ChatAdapter, Protocol):
    """A platform that can replace a sent message's text (``capabilities.edits``)."""

    async def edit(self, chat: ChatRef, message_id: str, document: Document) -> None:
        """Replace the message's content; raise MessageGone when it no longer exists."""
        ...


#: What an entry point in the ``kanban_gateway.adapters`` group must provide: a factory taking
#: the adapter's section of config.yaml (already checked against the settings it declares in
#: ``kanban_gateway.adapter_settings``, ``enabled`` included) and the environment (for secrets),
#: returning the adapter.
AdapterFactory = Callable[[Mapping[str, object], Mapping[str, str]], ChatAdapter]
