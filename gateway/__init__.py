"""The long-running asyncio gateway: adapters, router, notifier, dispatcher schedule.

Adapters import only this package's small public interfaces, re-exported here.
"""

from gateway.adapter import AdapterFactory, Capabilities, ChatAdapter, EditingAdapter, MessageSink
from gateway.errors import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    GatewayError,
    MessageGone,
)
from gateway.messages import (
    Attachment,
    Block,
    Button,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    MessageKind,
    Paragraph,
    Preformatted,
)
from gateway.slash import SLASH_COMMANDS, SlashCommand
from gateway.splitting import split_text

__all__ = [
    "SLASH_COMMANDS",
    "AdapterError",
    "AdapterFactory",
    "AdapterRateLimited",
    "AdapterRejected",
    "Attachment",
    "Block",
    "Button",
    "Capabilities",
    "ChatAdapter",
    "ChatRef",
    "ChatUser",
    "Document",
    "EditingAdapter",
    "GatewayError",
    "Heading",
    "IncomingMessage",
    "MessageGone",
    "MessageKind",
    "MessageSink",
    "Paragraph",
    "Preformatted",
    "SlashCommand",
    "split_text",
]
