"""A fake Slack on 127.0.0.1: Web API, response_url sink, Socket Mode websocket, signed drivers."""

from __future__ import annotations

import asyncio
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
        #: (response id, JSON body) for every POST to a response_url.
        self.responses: list[tuple[str, dict[str, Any]]] = []
        #: Socket Mode acks the client sent back: {"envelope_id": …[, "payload": …]}.
        self.socket_acks: list[dict[str, Any]] = []
        self.socket_connections = 0
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
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/response/{rid}", self._response)
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
        """For ``AsyncWebClient(base_url=…)``: must end with a slash."""
        return f"{self.origin}/api/"

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
        if request.content_type == "application/json":
            body: dict[str, Any] = json.loads(raw) if raw else {}
        else:
            body = dict(parse_qsl(raw))
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
            "apps.connections.open": self._connections_open,
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
        ts = f"1700000000.{next(self._ts):06d}"
        await self._record(lambda: self.posts.append(body))
        message: dict[str, Any] = {"text": text, "ts": ts}
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        return web.json_response({"ok": True, "channel": channel, "ts": ts, "message": message})

    async def _connections_open(self, body: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"})

    async def _response(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        failure = self._take_failure("response")
        if failure is not None:
            return failure
        payload = await request.json()
        await self._record(lambda: self.responses.append((rid, payload)))
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
        """Push an envelope (``slash_commands``, ``events_api``) to the connected client."""
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
