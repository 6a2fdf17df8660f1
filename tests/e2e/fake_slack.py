"""A fake Slack on 127.0.0.1: Web API, file uploads, response_url, Socket Mode, signed drivers."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

# Test-only credentials, meaningful to this fake alone.
BOT_TOKEN = "xoxb-fake-bot-token"  # noqa: S105
APP_TOKEN = "xapp-fake-app-token"  # noqa: S105
SIGNING_SECRET = "fake-signing-secret"  # noqa: S105
#: How long any wait in the fake may take before the test fails.
DEADLINE = 5.0
TEAM_ID = "T0001"
BOT_USER_ID = "UBOT"
DEFAULT_CHANNELS = frozenset({"C0001", "C0002"})
#: The adapter splits at 4000; failing above that (real Slack truncates at 40k) catches bugs.
DEFAULT_MAX_TEXT = 4000
#: Block Kit limits Slack enforces (https://docs.slack.dev/reference/block-kit/blocks).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255


@dataclass(frozen=True)
class ApiCall:
    """One Web API request as the fake saw it."""

    method: str
    authorization: str | None
    body: dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """A canned response for the next request to a route."""

    status: int
    body: dict[str, Any] | str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlackMessage:
    """A message the fake now shows in a channel (chat.postMessage or a response_url post)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    ephemeral: bool = False

    def buttons(self) -> list[dict[str, Any]]:
        """Every button element, in order."""
        return [
            element
            for block in self.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("type") == "button"
        ]

    def labels(self) -> list[str]:
        return [button["text"]["text"] for button in self.buttons()]


@dataclass(frozen=True)
class UploadedFile:
    """A file shared by files.completeUploadExternal, with the bytes POSTed to its upload URL."""

    file_id: str
    filename: str
    title: str | None
    declared_length: int
    content: bytes
    channel: str
    thread_ts: str | None
    initial_comment: str | None


@dataclass
class _PendingUpload:
    filename: str
    length: int
    content: bytes | None = None


@dataclass
class HttpResult:
    """What the adapter's HTTP listener answered to a driver's POST."""

    status: int
    body: str


class FakeSlack:
    """Slack's side of the wire, enough for slack-bolt and slack-sdk (see chat-platforms.md §3.2).

    Records every call; tests wait on conditions (``wait_for``), never on sleeps.
    """

    def __init__(
        self,
        *,
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
        signing_secret: str = SIGNING_SECRET,
        channels: frozenset[str] = DEFAULT_CHANNELS,
        max_text: int = DEFAULT_MAX_TEXT,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.channels = set(channels)
        self.max_text = max_text
        self.calls: list[ApiCall] = []
        #: Successful chat.postMessage bodies, in order.
        self.posts: list[dict[str, Any]] = []
        #: Successful chat.update bodies, in order.
        self.updates: list[dict[str, Any]] = []
        #: (response id, JSON body) for every POST to a response_url.
        self.responses: list[tuple[str, dict[str, Any]]] = []
        #: Every message now visible (posted or in_channel/ephemeral responses), in order.
        self.messages: list[SlackMessage] = []
        #: Files shared into a channel by files.completeUploadExternal, in order.
        self.files: list[UploadedFile] = []
        #: Requests to upload URLs: (file id, byte count), including refused ones.
        self.upload_posts: list[tuple[str, int]] = []
        self._uploads: dict[str, _PendingUpload] = {}
        #: response id -> the channel its response_url posts into.
        self._response_channels: dict[str, str] = {}
        #: Socket Mode acks the client sent back: {"envelope_id": …[, "payload": …]}.
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connections = 0
        #: The websocket URL apps.connections.open hands out (None: this fake's own /link).
        self.socket_url: str | None = None
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_ready = asyncio.Event()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._session: aiohttp.ClientSession | None = None

    # --- lifecycle ---

    async def start(self) -> None:
        # Slack takes files up to 1 GB; aiohttp's default 1 MiB body cap would refuse far less.
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await self._site.start()
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        assert self._site is not None, "fake not started"
        return self._site.port

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def open_sockets(self) -> int:
        """Socket Mode connections currently open."""
        return len(self._sockets)

    @property
    def base_url(self) -> str:
        """The server's root, as ``platforms.slack.api_base_url`` (the adapter adds /api/)."""
        return self.origin

    # --- observing ---

    async def _record(self, action: Callable[[], None]) -> None:
        async with self._changed:
            action()
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds; fail after ``DEADLINE`` seconds."""
        async with asyncio.timeout(DEADLINE), self._changed:
            await self._changed.wait_for(predicate)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [call for call in self.calls if call.method == method]

    def fail_next(
        self,
        route: str,
        status: int,
        body: dict[str, Any] | str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next request to ``route`` (a Web API method, or "response") with this."""
        self._failures[route].append(Failure(status, body, dict(headers or {})))

    def _take_failure(self, route: str) -> web.Response | None:
        queue = self._failures.get(route)
        if not queue:
            return None
        failure = queue.popleft()
        if isinstance(failure.body, str):
            return web.Response(status=failure.status, text=failure.body, headers=failure.headers)
        return web.json_response(failure.body, status=failure.status, headers=failure.headers)

    # --- Web API ---

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        raw = await request.text()
        # Arguments may come in the query string too (slack-sdk sends files.* methods' that way).
        body: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body.update(json.loads(raw) if raw else {})
        else:
            body.update(parse_qsl(raw))
        authorization = request.headers.get("Authorization")
        call = ApiCall(method, authorization, body)
        await self._record(lambda: self.calls.append(call))
        failure = self._take_failure(method)
        if failure is not None:
            return failure
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if authorization is None:
            return web.json_response({"ok": False, "error": "not_authed"})
        if authorization != f"Bearer {expected}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "apps.connections.open": self._connections_open,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return web.json_response({"ok": True})
        return await handler(body)

    async def _auth_test(self, body: dict[str, Any]) -> web.Response:
        return web.json_response(
            {
                "ok": True,
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": "BBOT",
                "team": "Fake",
                "user": "kanbanbot",
                "url": "https://fake.slack.com/",
                "is_enterprise_install": False,
            }
        )

    async def _post_message(self, body: dict[str, Any]) -> web.Response:
        channel = body.get("channel")
        text = body.get("text")
        if channel not in self.channels:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        if not isinstance(text, str) or not text:
            return web.json_response({"ok": False, "error": "no_text"})
        if len(text) > self.max_text:
            return web.json_response({"ok": False, "error": "msg_too_long"})
        blocks = body.get("blocks")
        if isinstance(blocks, str):  # form-encoded callers send blocks as a JSON string
            blocks = json.loads(blocks)
        errors = block_errors(blocks)
        if errors:
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": errors})
        thread_ts = body.get("thread_ts") or None
        shown = self._show(channel, text, blocks, thread_ts)

        def posted() -> None:
            self.posts.append(body)
            self.messages.append(shown)

        await self._record(posted)
        message: dict[str, Any] = {"text": text, "ts": shown.ts, "blocks": shown.blocks}
        if thread_ts:
            message["thread_ts"] = thread_ts
        return web.json_response(
            {"ok": True, "channel": channel, "ts": shown.ts, "message": message}
        )

    async def _update_message(self, body: dict[str, Any]) -> web.Response:
        channel, ts, text = body.get("channel"), body.get("ts"), body.get("text")
        if channel not in self.channels:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        found = [
            i
            for i, m in enumerate(self.messages)
            if m.channel == channel and m.ts == ts and not m.ephemeral
        ]
        if not found:
            return web.json_response({"ok": False, "error": "message_not_found"})
        if not isinstance(text, str) or not text:
            return web.json_response({"ok": False, "error": "no_text"})
        if len(text) > self.max_text:
            return web.json_response({"ok": False, "error": "msg_too_long"})
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        errors = block_errors(blocks or None)
        if errors:
            return web.json_response({"ok": False, "error": "invalid_blocks", "errors": errors})
        index = found[0]
        old = self.messages[index]
        # Slack keeps the message's ts and thread; an empty blocks list removes its blocks.
        new = dataclasses.replace(old, text=text, blocks=list(blocks or []))

        def updated() -> None:
            self.updates.append(body)
            self.messages[index] = new

        await self._record(updated)
        return web.json_response(
            {"ok": True, "channel": channel, "ts": ts, "text": text, "message": {"text": text}}
        )

    def _show(
        self,
        channel: str,
        text: str,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        *,
        ephemeral: bool = False,
    ) -> SlackMessage:
        ts = f"1700000000.{next(self._ts):06d}"
        # Slack gives every block without one a block_id, and echoes it in button presses.
        shown = [{"block_id": f"blk{ts[-6:]}{i}", **block} for i, block in enumerate(blocks or [])]
        return SlackMessage(channel, ts, text, shown, thread_ts, ephemeral)

    # --- files (files_upload_v2: three steps) ---

    async def _get_upload_url(self, body: dict[str, Any]) -> web.Response:
        filename, length = body.get("filename"), str(body.get("length", ""))
        if not filename or not length.isdigit():
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        file_id = f"F{next(self._ids):08d}"
        self._uploads[file_id] = _PendingUpload(str(filename), int(length))
        return web.json_response(
            {"ok": True, "upload_url": f"{self.origin}/upload/v1/{file_id}", "file_id": file_id}
        )

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        failure = self._take_failure("upload")
        if failure is not None:
            return failure
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            field = form.get("file")
            content = field.file.read() if isinstance(field, web.FileField) else b""
        else:
            content = await request.read()
        await self._record(partial(self.upload_posts.append, (file_id, len(content))))
        pending = self._uploads.get(file_id)
        if pending is None:
            return web.Response(status=404, text="not found")
        pending.content = content
        # What files.slack.com answers: plain text with the byte count.
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _complete_upload(self, body: dict[str, Any]) -> web.Response:
        try:
            entries = json.loads(body.get("files", ""))
        except json.JSONDecodeError:
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        if not isinstance(entries, list) or not entries:
            return web.json_response({"ok": False, "error": "invalid_arguments"})
        channel = body.get("channel_id")
        if channel is not None and channel not in self.channels:
            return web.json_response({"ok": False, "error": "channel_not_found"})
        pending = [(entry, self._uploads.get(str(entry.get("id")))) for entry in entries]
        if any(upload is None or upload.content is None for _, upload in pending):
            return web.json_response({"ok": False, "error": "file_not_found"})
        shared: list[UploadedFile] = []
        for entry, upload in pending:
            assert upload is not None
            assert upload.content is not None
            shared.append(
                UploadedFile(
                    file_id=str(entry["id"]),
                    filename=upload.filename,
                    title=entry.get("title"),
                    declared_length=upload.length,
                    content=upload.content,
                    channel=str(channel),
                    thread_ts=body.get("thread_ts") or None,
                    initial_comment=body.get("initial_comment"),
                )
            )
            del self._uploads[str(entry["id"])]
        if channel is not None:
            await self._record(partial(self.files.extend, shared))
        files = [
            {
                "id": f.file_id,
                "name": f.filename,
                "title": f.title or f.filename,
                "size": len(f.content),
            }
            for f in shared
        ]
        return web.json_response({"ok": True, "files": files})

    async def _connections_open(self, body: dict[str, Any]) -> web.Response:
        url = self.socket_url or f"ws://127.0.0.1:{self.port}/link"
        return web.json_response({"ok": True, "url": url})

    async def _response(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        failure = self._take_failure("response")
        if failure is not None:
            return failure
        payload = await request.json()
        errors = block_errors(payload.get("blocks"))
        if errors:
            return web.Response(status=400, text="invalid_blocks")
        text = payload.get("text")
        if not isinstance(text, str) or not text:
            return web.Response(status=400, text="no_text")
        # The fake's response ids are chosen by slash_payload/button_press: "r<n>" / "a<n>".
        channel = self._response_channels.get(rid, "C0001")
        shown = self._show(
            channel,
            text,
            payload.get("blocks"),
            None,
            ephemeral=payload.get("response_type") != "in_channel",
        )

        def responded() -> None:
            self.responses.append((rid, payload))
            self.messages.append(shown)

        await self._record(responded)
        return web.Response(text="ok")

    # --- Socket Mode ---

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": 1,
                "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                "connection_info": {"app_id": "A0001"},
            }
        )

        def connected() -> None:
            self._sockets.append(ws)
            self.socket_connections += 1

        await self._record(connected)
        self._socket_ready.set()
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    ack = json.loads(msg.data)
                    await self._record(partial(self.socket_acks.append, ack))
        finally:
            await self._record(lambda: self._sockets.remove(ws))
        return ws

    async def socket_push(self, kind: str, payload: dict[str, Any]) -> str:
        """Push an envelope (``slash_commands``, ``events_api``, ``interactive``) to the client."""
        async with asyncio.timeout(DEADLINE):
            await self._socket_ready.wait()
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_json(envelope)
        return envelope_id

    async def wait_for_ack(self, envelope_id: str) -> dict[str, Any]:
        def acked() -> bool:
            return any(ack.get("envelope_id") == envelope_id for ack in self.socket_acks)

        await self.wait_for(acked)
        return next(ack for ack in self.socket_acks if ack.get("envelope_id") == envelope_id)

    # --- payload builders ---

    def slash_payload(
        self,
        text: str,
        *,
        channel: str = "C0001",
        user: str = "U0USER",
        user_name: str = "alice",
        trigger_id: str | None = None,
        command: str = "/kanban",
    ) -> dict[str, str]:
        """The form fields of a slash command, with a fresh response_url and trigger_id."""
        n = next(self._ids)
        self._response_channels[f"r{n}"] = channel
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM_ID,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0001",
            "is_enterprise_install": "false",
            "response_url": f"{self.origin}/response/r{n}",
            "trigger_id": trigger_id or f"{n}.1.trigger{n}",
        }

    def mention_event(
        self,
        text: str,
        *,
        channel: str = "C0001",
        user: str = "U0USER",
        ts: str | None = None,
        thread_ts: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """An ``event_callback`` envelope carrying an ``app_mention``."""
        n = next(self._ids)
        ts = ts or f"1700000100.{n:06d}"
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "channel": channel,
            "text": text,
            "ts": ts,
            "event_ts": ts,
        }
        if thread_ts is not None:
            event["thread_ts"] = thread_ts
        return {
            "token": "legacy-verification-token",
            "type": "event_callback",
            "team_id": TEAM_ID,
            "api_app_id": "A0001",
            "event_id": event_id or f"Ev{n:08d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }

    def message_event(
        self,
        text: str,
        *,
        channel: str = "C0001",
        user: str | None = "U0USER",
        ts: str | None = None,
        thread_ts: str | None = None,
        event_id: str | None = None,
        channel_type: str = "channel",
        subtype: str | None = None,
        bot_id: str | None = None,
    ) -> dict[str, Any]:
        """An ``event_callback`` envelope carrying a ``message`` (a user's, unless told)."""
        envelope = self.mention_event(
            text, channel=channel, ts=ts, thread_ts=thread_ts, event_id=event_id
        )
        event = envelope["event"]
        event.update({"type": "message", "channel_type": channel_type})
        if user is None:
            del event["user"]
        else:
            event["user"] = user
        if subtype is not None:
            event["subtype"] = subtype
        if bot_id is not None:
            event["bot_id"] = bot_id
        if subtype == "message_changed":
            # An edit: the new message is nested; the event itself has no user or text.
            event["message"] = {"type": "message", "user": user, "text": text, "ts": event["ts"]}
            event["hidden"] = True
            event.pop("user", None)
            event.pop("text")
        return envelope

    def button_press(
        self,
        message: SlackMessage,
        label: str,
        *,
        user: str = "U0USER",
        user_name: str = "alice",
        trigger_id: str | None = None,
        thread_parent: bool = False,
    ) -> dict[str, Any]:
        """The ``block_actions`` payload Slack sends when ``user`` presses a button by label.

        ``thread_parent``: the message has since got replies, so Slack reports it with
        ``thread_ts`` equal to its own ``ts``.
        """
        block, element = next(
            (block, element)
            for block in message.blocks
            if block.get("type") == "actions"
            for element in block.get("elements", [])
            if element.get("text", {}).get("text") == label
        )
        n = next(self._ids)
        thread_ts = message.ts if thread_parent else message.thread_ts
        container: dict[str, Any] = {
            "type": "message",
            "message_ts": message.ts,
            "channel_id": message.channel,
            "is_ephemeral": message.ephemeral,
        }
        if thread_ts is not None:
            container["thread_ts"] = thread_ts
        self._response_channels[f"a{n}"] = message.channel
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
            "api_app_id": "A0001",
            "token": "legacy-verification-token",
            "container": container,
            "trigger_id": trigger_id or f"{n}.1.trigger{n}",
            "team": {"id": TEAM_ID, "domain": "fake"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": message.channel, "name": "general"},
            "state": {"values": {}},
            "response_url": f"{self.origin}/response/a{n}",
            "actions": [
                {
                    "action_id": element["action_id"],
                    "block_id": block["block_id"],
                    "text": element["text"],
                    "value": element.get("value"),
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        if not message.ephemeral:
            # Slack leaves the message out of presses on ephemeral messages.
            shown: dict[str, Any] = {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": "BBOT",
                "text": message.text,
                "ts": message.ts,
                "blocks": message.blocks,
            }
            if thread_ts is not None:
                shown["thread_ts"] = thread_ts
            payload["message"] = shown
        return payload

    # --- signed drivers (Slack -> the adapter's HTTP listener) ---

    def sign(
        self, body: str, *, timestamp: int | None = None, sign_with: str | None = None
    ) -> dict[str, str]:
        """Slack's request-signing headers for ``body`` (the exact bytes sent)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        key = (self.signing_secret if sign_with is None else sign_with).encode()
        digest = hmac.new(key, f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    async def signed_post(
        self,
        url: str,
        body: str,
        content_type: str,
        *,
        headers: Mapping[str, str] | None = None,
        timestamp: int | None = None,
        sign_with: str | None = None,
    ) -> HttpResult:
        """POST ``body`` signed like Slack (or with the wrong key, ``sign_with``)."""
        assert self._session is not None, "fake not started"
        signature = self.sign(body, timestamp=timestamp, sign_with=sign_with)
        all_headers = {"Content-Type": content_type, **signature}
        all_headers.update(headers or {})
        async with self._session.post(url, data=body.encode(), headers=all_headers) as response:
            text = await response.text()
        return HttpResult(response.status, text)

    async def post_slash(self, url: str, payload: Mapping[str, str], **kwargs: Any) -> HttpResult:
        return await self.signed_post(
            url, urlencode(payload), "application/x-www-form-urlencoded", **kwargs
        )

    async def post_event(self, url: str, payload: Mapping[str, Any], **kwargs: Any) -> HttpResult:
        return await self.signed_post(url, json.dumps(payload), "application/json", **kwargs)

    async def post_interactive(
        self, url: str, payload: Mapping[str, Any], **kwargs: Any
    ) -> HttpResult:
        """POST an interactive payload as Slack does: a form with one ``payload`` JSON field."""
        body = urlencode({"payload": json.dumps(payload)})
        return await self.signed_post(url, body, "application/x-www-form-urlencoded", **kwargs)


def block_errors(blocks: object) -> list[str]:
    """Why Slack would refuse these blocks (``invalid_blocks``); empty when they are fine."""
    if blocks is None:
        return []
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        return ["blocks must be an array of objects"]
    errors = [f"more than {MAX_BLOCKS} blocks"] if len(blocks) > MAX_BLOCKS else []
    action_ids: list[str] = []
    for i, block in enumerate(blocks):
        kind = block.get("type")
        if kind == "section":
            text = block.get("text") or {}
            body = text.get("text")
            if text.get("type") not in ("mrkdwn", "plain_text") or not isinstance(body, str):
                errors.append(f"[{i}] section needs a text object")
            elif not 1 <= len(body) <= MAX_SECTION_TEXT:
                errors.append(f"[{i}] section text must be 1-{MAX_SECTION_TEXT} characters")
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
                errors.append(f"[{i}] actions needs 1-{MAX_ACTIONS_ELEMENTS} elements")
                continue
            for j, element in enumerate(elements):
                errors.extend(f"[{i}][{j}] {e}" for e in _button_errors(element))
                action_ids.append(str(element.get("action_id")))
        else:
            errors.append(f"[{i}] unsupported block type {kind!r} (this fake knows two)")
    if len(set(action_ids)) != len(action_ids):
        errors.append("action_id values must be unique in a message")
    return errors


def _button_errors(element: object) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return ["not a button"]
    errors = []
    text = element.get("text") or {}
    label = text.get("text")
    if text.get("type") != "plain_text" or not isinstance(label, str):
        errors.append("button text must be plain_text")
    elif not 1 <= len(label) <= MAX_BUTTON_TEXT:
        errors.append(f"button text must be 1-{MAX_BUTTON_TEXT} characters")
    action_id = element.get("action_id")
    if not isinstance(action_id, str) or not 1 <= len(action_id) <= MAX_ACTION_ID:
        errors.append(f"action_id must be 1-{MAX_ACTION_ID} characters")
    value = element.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE):
        errors.append(f"value must be at most {MAX_BUTTON_VALUE} characters")
    return errors
