"""Slack messages out: parts, buttons and files through a response_url or the Web API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, TypeVar

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack_errors import describe_error, map_api_error
from adapters.slack_render import buttons_fallback, render_parts, reply_blocks, too_large_line
from gateway import AdapterError, AdapterRateLimited, ChatRef, Document, MessageGone
from gateway.messages import Attachment

__all__ = ["MAX_ATTACHMENT_BYTES", "ReplyRoute", "SlackSender"]

logger = logging.getLogger(__name__)

#: Slack takes files up to 1 GB; the gateway's own ceiling for chat attachments is 5 MB.
MAX_ATTACHMENT_BYTES: Final = 5 * 1024 * 1024
#: A command reply waits for at most this long on a 429 before giving up (the notifier, which
#: calls send() directly, has its own backoff and gets the AdapterRateLimited instead).
MAX_REPLY_RETRY_AFTER: Final = 30.0
#: Slack accepts this many posts to one slash command's response_url.
RESPONSE_URL_USES: Final = 5

Blocks = list[dict[str, Any]]
_T = TypeVar("_T")


@dataclass
class ReplyRoute:
    """How one reply goes out: through the slash command's response_url while it lasts."""

    response_url: str | None
    uses: int = field(default=0)


class SlackSender:
    """Sends documents with the adapter's running app: text parts, buttons on the last, files."""

    def __init__(self, running_app: Callable[[], AsyncApp]) -> None:
        # A getter, not the app: the adapter may stop (and drop its app) between two posts.
        self._running_app = running_app

    async def deliver(
        self, chat: ChatRef, document: Document, route: ReplyRoute, *, patient: bool
    ) -> str | None:
        """Post ``document``; ``patient`` (a reply, which has no outbox) waits out a short 429.

        Returns the ts of the last text message posted through the Web API (None otherwise).
        """
        messages: list[tuple[str, Blocks | None]] = [(p, None) for p in render_parts(document)]
        if document.buttons:
            if messages:
                last = messages[-1][0]
                messages[-1] = (last, reply_blocks(last, document.buttons))
            else:
                fallback = buttons_fallback(document.buttons)
                messages.append((fallback, reply_blocks("", document.buttons)))
        posted: str | None = None
        for text, blocks in messages:
            posted = await self._say(chat, text, blocks, route, patient=patient)
        for attachment in document.attachments:
            if len(attachment.content) > MAX_ATTACHMENT_BYTES:
                line = too_large_line(attachment, MAX_ATTACHMENT_BYTES)
                await self._say(chat, line, None, route, patient=patient)
            else:
                await _patiently(patient, partial(self._upload, chat, attachment))
        return posted

    async def update(self, chat: ChatRef, ts: str, document: Document) -> None:
        """Replace a posted message's text with the document's first part (chat.update)."""
        text = (render_parts(document) or [" "])[0]
        app = self._running_app()
        try:
            await app.client.chat_update(channel=chat.chat_id, ts=ts, text=text, blocks=[])
        except SlackApiError as exc:
            data = getattr(exc.response, "data", None)
            error = data.get("error") if isinstance(data, dict) else None
            if error in ("message_not_found", "cant_update_message"):
                raise MessageGone(f"slack refused chat.update: {error}") from exc
            raise map_api_error(exc, "chat.update") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack chat.update failed: {describe_error(exc)}") from exc

    async def _say(
        self, chat: ChatRef, text: str, blocks: Blocks | None, route: ReplyRoute, *, patient: bool
    ) -> str | None:
        if route.response_url is not None and route.uses < RESPONSE_URL_USES:
            # response_url works even when the bot is not in the channel, but only 5 times;
            # whatever it refuses goes through chat.postMessage.
            if await _respond(route.response_url, text, blocks):
                route.uses += 1
                return None
            route.response_url = None
        return await _patiently(patient, partial(self._post, chat, text, blocks))

    async def _post(self, chat: ChatRef, text: str, blocks: Blocks | None) -> str | None:
        app = self._running_app()
        try:
            response = await app.client.chat_postMessage(
                channel=chat.chat_id,
                # With blocks, Slack shows them and uses text for notifications and search.
                text=text,
                blocks=blocks,
                thread_ts=chat.thread_id,
                mrkdwn=True,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise map_api_error(exc, "chat.postMessage") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack chat.postMessage failed: {describe_error(exc)}") from exc
        ts = response.get("ts")
        return ts if isinstance(ts, str) else None

    async def _upload(self, chat: ChatRef, attachment: Attachment) -> None:
        app = self._running_app()
        try:
            # files.getUploadURLExternal, a POST of the bytes, files.completeUploadExternal.
            await app.client.files_upload_v2(
                filename=attachment.filename,
                title=attachment.filename,
                content=attachment.content,
                channel=chat.chat_id,
                thread_ts=chat.thread_id,
            )
        except SlackApiError as exc:
            raise map_api_error(exc, "file upload") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack file upload failed: {describe_error(exc)}") from exc


async def _respond(response_url: str, text: str, blocks: Blocks | None) -> bool:
    try:
        response = await AsyncWebhookClient(response_url).send(
            text=text, blocks=blocks, response_type="in_channel"
        )
    except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
        # Not the exception text: it would log the response_url, a bearer capability.
        logger.warning(
            "slack: response_url failed (%s); using chat.postMessage", type(exc).__name__
        )
        return False
    if response.status_code != 200:
        logger.warning(
            "slack: response_url answered %d; using chat.postMessage", response.status_code
        )
        return False
    return True


async def _patiently(patient: bool, call: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``call``; when ``patient`` (a reply, which has no outbox), wait out one short 429."""
    try:
        return await call()
    except AdapterRateLimited as exc:
        if not patient or exc.retry_after > MAX_REPLY_RETRY_AFTER:
            raise
        await asyncio.sleep(exc.retry_after)
        return await call()
