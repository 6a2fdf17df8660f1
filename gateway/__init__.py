"""The long-running asyncio gateway: adapters, router, notifier, dispatcher schedule.

Adapters import only this package's small public interfaces, re-exported here.
"""

from gateway.adapter import AdapterFactory, Capabilities, ChatAdapter, MessageSink
from gateway.errors import AdapterError, AdapterRateLimited, AdapterRejected, GatewayError
from gateway.messages import (
    Block,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    Paragraph,
    Preformatted,
)
from gateway.splitting import split_text

__all__ = [
    "AdapterError",
    "AdapterFactory",
    "AdapterRateLimited",
    "AdapterRejected",
    "Block",
    "Capabilities",
    "ChatAdapter",
    "ChatRef",
    "ChatUser",
    "Document",
    "GatewayError",
    "Heading",
    "IncomingMessage",
    "MessageSink",
    "Paragraph",
    "Preformatted",
    "split_text",
]
