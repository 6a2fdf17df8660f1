"""A loopback fake of Discord's REST API and gateway, enough for the real discord.py client."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

T = TypeVar("T")

APP_ID = 900000000000000001
GUILD_ID = 900000000000000002
CHANNEL_ID = 900000000000000003
THREAD_ID = 900000000000000004
USER_ID = 900000000000000005
BOT_USER = {
    "id": str(APP_ID),
    "username": "kanbanbot",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
    "flags": 0,
}
HUMAN = {
    "id": str(USER_ID),
    "username": "alice",
    "discriminator": "0",
    "global_name": "Alice",
    "avatar": None,
}
MESSAGE_CONTENT_INTENT = 1 << 15
MAX_CONTENT = 2000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_response(
    payload: object, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    # discord.py only parses bodies whose Content-Type is exactly application/json; aiohttp's
    # json_response would append "; charset=utf-8" and login would crash on a str.
    return web.Response(
        body=json.dumps(payload).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def _channel(channel_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "name": "board",
        "guild_id": str(GUILD_ID),
        "position": 0,
        "permission_overwrites": [],
        "parent_id": None,
        **extra,
    }


def _thread() -> dict[str, Any]:
    return _channel(
        THREAD_ID,
        type=11,
        name="task-12",
        parent_id=str(CHANNEL_ID),
        owner_id=str(USER_ID),
        thread_metadata={
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2025-01-01T00:00:00+00:00",
            "locked": False,
        },
        message_count=1,
        member_count=1,
    )


def _member(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user": user,
        "roles": [],
        "joined_at": "2025-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": "2147483647",
    }


@dataclass
class Call:
    """One REST request the client made."""

    method: str
    route: str  # "POST /channels/{channel_id}/messages"
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Posted:
    """A message the bot posted, by whichever route (channel message or interaction followup)."""

    channel_id: int
    content: str
    payload: dict[str, Any]
    interaction_id: int | None = None


@dataclass
class _Interaction:
    id: int
    token: str
    channel_id: int


@dataclass
class FakeDiscord:
    """Serves /api/v10 and /gateway on 127.0.0.1; records what the bot does, pushes events to it."""

    token: str = "fake-bot-token"  # noqa: S105 - the fake's own, checked on login
    allow_message_content: bool = True
    calls: list[Call] = field(default_factory=list)
    posted: list[Posted] = field(default_factory=list)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    identify: dict[str, Any] | None = None
    violations: list[str] = field(default_factory=list)
    gateway_open: bool = False

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._ids = itertools.count(950000000000000000)
        self._changed = asyncio.Condition()
        self._failures: dict[str, deque[web.Response]] = defaultdict(deque)
        self._interactions: dict[str, _Interaction] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record])
        api = "/api/v10"
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get(f"{api}/users/@me", self._me)
        app.router.add_get(f"{api}/oauth2/applications/@me", self._application)
        app.router.add_put(f"{api}/applications/{{app_id}}/commands", self._sync)
        app.router.add_post(
            f"{api}/interactions/{{interaction_id}}/{{token}}/callback", self._callback
        )
        app.router.add_post(f"{api}/webhooks/{{app_id}}/{{token}}", self._followup)
        app.router.add_delete(
            f"{api}/webhooks/{{app_id}}/{{token}}/messages/@original", self._delete_original
        )
        app.router.add_post(f"{api}/channels/{{channel_id}}/messages", self._channel_message)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/gateway"

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(
        self,
        route: str,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> None:
        """Answer the next request to ``route`` ("POST /channels/{channel_id}/messages") so."""
        self._failures[route].append(json_response(body, status, headers))

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded change)."""
        async with self._changed:
            async with asyncio.timeout(timeout):
                while not (result := predicate()):
                    await self._changed.wait()
        return result

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH the way Discord does."""
        assert self._ws is not None, "no gateway connection"
        self._seq += 1
        await self._ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    async def slash(
        self, args: str | None, *, channel_id: int = CHANNEL_ID, user: dict[str, Any] = HUMAN
    ) -> int:
        """Someone runs ``/kanban args:…``; returns the interaction id."""
        options = [] if args is None else [{"name": "args", "type": 3, "value": args}]
        return await self._interact(2, options, channel_id, user)

    async def autocomplete(self, current: str) -> int:
        """Someone is typing into the ``args`` option; returns the interaction id."""
        options = [{"name": "args", "type": 3, "value": current, "focused": True}]
        return await self._interact(4, options, CHANNEL_ID, HUMAN)

    async def message(
        self, content: str, *, channel_id: int = CHANNEL_ID, author: dict[str, Any] = HUMAN
    ) -> int:
        """Someone types a message; returns its id."""
        message = self._message(channel_id, content, author)
        message["member"] = {k: v for k, v in _member(author).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", message)
        return int(message["id"])

    def posted_to(self, channel_id: int) -> list[Posted]:
        return [p for p in self.posted if p.channel_id == channel_id]

    def replies_to(self, interaction_id: int) -> list[Posted]:
        return [p for p in self.posted if p.interaction_id == interaction_id]

    def callbacks_for(self, interaction_id: int) -> list[dict[str, Any]]:
        return [c for c in self.callbacks if c["interaction_id"] == interaction_id]

    # -- internals -------------------------------------------------------------------------------

    async def _interact(
        self, kind: int, options: list[dict[str, Any]], channel_id: int, user: dict[str, Any]
    ) -> int:
        interaction = _Interaction(next(self._ids), f"itoken-{next(self._ids)}", channel_id)
        self._interactions[interaction.token] = interaction
        channel = _thread() if channel_id == THREAD_ID else _channel(channel_id)
        await self.dispatch(
            "INTERACTION_CREATE",
            {
                "id": str(interaction.id),
                "application_id": str(APP_ID),
                "type": kind,
                "token": interaction.token,
                "version": 1,
                "locale": "en-US",
                "guild_locale": "en-US",
                "app_permissions": "2147483647",
                "attachment_size_limit": 8388608,
                "entitlements": [],
                "authorizing_integration_owners": {"0": str(GUILD_ID)},
                "context": 0,
                "data": {
                    "id": "910000000000000001",
                    "name": "kanban",
                    "type": 1,
                    "options": options,
                },
                "guild_id": str(GUILD_ID),
                "channel_id": str(channel_id),
                "channel": channel,
                "member": _member(user),
            },
        )
        return interaction.id

    def _message(self, channel_id: int, content: str, author: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "type": 0,
            "content": content,
            "author": author,
            "timestamp": datetime.now(UTC).isoformat(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "flags": 0,
            "components": [],
        }

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        raw = await request.read()
        canonical = request.match_info.route.resource
        route = canonical.canonical.removeprefix("/api/v10") if canonical else request.path
        self.calls.append(
            Call(
                request.method,
                f"{request.method} {route}",
                request.path,
                dict(request.query),
                json.loads(raw) if raw else None,
            )
        )
        await self._changed_now()
        failures = self._failures[f"{request.method} {route}"]
        if failures:
            return failures.popleft()
        if request.headers.get("Authorization") not in (None, f"Bot {self.token}"):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        return await handler(request)

    def _check_message(self, body: dict[str, Any]) -> web.Response | None:
        """Discord's own 50035 for oversize content; our rule that nothing may ping."""
        content = body.get("content") or ""
        if len(content) > MAX_CONTENT:
            return json_response(
                {
                    "code": 50035,
                    "message": "Invalid Form Body",
                    "errors": {
                        "content": {
                            "_errors": [
                                {
                                    "code": "BASE_TYPE_MAX_LENGTH",
                                    "message": "Must be 2000 or fewer in length.",
                                }
                            ]
                        }
                    },
                },
                400,
            )
        if body.get("allowed_mentions") != {"parse": []}:
            self.violations.append(f"allowed_mentions was {body.get('allowed_mentions')!r}")
            return json_response(
                {"code": 50035, "message": "fake: allowed_mentions must be {'parse': []}"}, 400
            )
        if not content.strip():
            return json_response({"code": 50006, "message": "Cannot send an empty message"}, 400)
        return None

    async def _post(
        self, channel_id: int, body: dict[str, Any], interaction_id: int | None
    ) -> web.Response:
        refused = self._check_message(body)
        if refused is not None:
            return refused
        message = self._message(channel_id, body["content"], BOT_USER)
        self.posted.append(Posted(channel_id, body["content"], body, interaction_id))
        await self._changed_now()
        return json_response(message)

    async def _me(self, request: web.Request) -> web.Response:
        return json_response(BOT_USER)

    async def _application(self, request: web.Request) -> web.Response:
        return json_response(
            {
                "id": str(APP_ID),
                "name": "kanban",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": HUMAN,
                "verify_key": "0" * 64,
                "flags": 0,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        commands = await request.json()
        self.commands = [
            {**command, "id": str(next(self._ids)), "application_id": str(APP_ID), "version": "1"}
            for command in commands
        ]
        await self._changed_now()
        return json_response(self.commands)

    async def _callback(self, request: web.Request) -> web.Response:
        body = await request.json()
        interaction_id = int(request.match_info["interaction_id"])
        self.callbacks.append({"interaction_id": interaction_id, **body})
        await self._changed_now()
        if body["type"] == 8:  # autocomplete result: no message comes of it
            return web.Response(status=204)
        return json_response(
            {
                "interaction": {
                    "id": str(interaction_id),
                    "type": 2,
                    "response_message_id": str(next(self._ids)),
                    "response_message_loading": body["type"] == 5,
                    "response_message_ephemeral": False,
                }
            }
        )

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None:
            return json_response({"code": 10015, "message": "Unknown Webhook"}, 404)
        if not any(c["interaction_id"] == interaction.id for c in self.callbacks):
            self.violations.append(f"followup before the interaction {interaction.id} was answered")
        return await self._post(interaction.channel_id, await request.json(), interaction.id)

    async def _delete_original(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _channel_message(self, request: web.Request) -> web.Response:
        return await self._post(int(request.match_info["channel_id"]), await request.json(), None)

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}})
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(frame.data)
            if payload["op"] == 1:  # heartbeat
                await ws.send_json({"op": 11})
            elif payload["op"] == 2:  # identify
                await self._identify(ws, payload["d"])
            elif payload["op"] == 6:  # resume
                self._seq += 1
                await ws.send_json({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}})
        if self._ws is ws:
            self._ws = None
            self.gateway_open = False
            await self._changed_now()
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        if data["intents"] & MESSAGE_CONTENT_INTENT and not self.allow_message_content:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self.identify = data
        self._ws = ws
        self._seq = 0
        await self.dispatch(
            "READY",
            {
                "v": 10,
                "user": BOT_USER,
                "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                "session_id": "session-1",
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(APP_ID), "flags": 0},
            },
        )
        await self.dispatch(
            "GUILD_CREATE",
            {
                "id": str(GUILD_ID),
                "name": "kanban-test",
                "owner_id": str(USER_ID),
                "unavailable": False,
                "member_count": 2,
                "features": [],
                "roles": [
                    {
                        "id": str(GUILD_ID),
                        "name": "@everyone",
                        "permissions": "2147483647",
                        "position": 0,
                        "color": 0,
                        "hoist": False,
                        "managed": False,
                        "mentionable": False,
                    }
                ],
                "channels": [_channel(CHANNEL_ID)],
                "threads": [_thread()],
                "members": [_member(BOT_USER)],
                "emojis": [],
                "stickers": [],
                "voice_states": [],
                "presences": [],
                "stage_instances": [],
                "guild_scheduled_events": [],
                "soundboard_sounds": [],
            },
        )
        self.gateway_open = True
        await self._changed_now()
