"""A loopback fake of Discord's REST API and gateway, enough for the real discord.py client."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

from aiohttp import BodyPartReader, WSMsgType, web

T = TypeVar("T")

APP_ID = 900000000000000001
GUILD_ID = 900000000000000002
CHANNEL_ID = 900000000000000003
THREAD_ID = 900000000000000004
USER_ID = 900000000000000005
DM_CHANNEL_ID = 900000000000000006
#: The message flag of a reply only its interaction's user sees.
EPHEMERAL = 64
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
#: The attachment_size_limit this fake announces and enforces per uploaded file (8 MiB).
MAX_UPLOAD = 8 * 1024 * 1024
#: Discord drops an interaction not answered within 3 s (the user sees "interaction failed").
ACK_DEADLINE = 3.0
# Interaction type → the callback types Discord accepts for it: a command (2) may be answered or
# deferred; a component press (3) may also update or defer-update its message; autocomplete (4)
# only with choices.
_CALLBACK_TYPES = {2: {4, 5, 9, 10, 12}, 3: {4, 5, 6, 7, 9}, 4: {8}}
_MAX_ROWS = 5
_MAX_ROW_BUTTONS = 5
_MAX_CUSTOM_ID = 100
_MAX_LABEL = 80

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
class Upload:
    """One ``files[n]`` part of a multipart request."""

    field: str  # "files[0]"
    filename: str
    content: bytes
    content_type: str


#: What the recording middleware read from a request, for the route handlers.
BODY: Final = web.RequestKey[Any]("body", object)
FILES: Final = web.RequestKey("files", list[Upload])


@dataclass
class Call:
    """One REST request the client made."""

    method: str
    route: str  # "POST /channels/{channel_id}/messages"
    path: str
    query: dict[str, str]
    body: Any  # the JSON body, or a multipart request's payload_json
    files: list[Upload] = field(default_factory=list)


@dataclass
class Posted:
    """A message the bot posted, by whichever route (channel message or interaction followup)."""

    channel_id: int
    content: str
    payload: dict[str, Any]
    interaction_id: int | None = None
    message_id: int = 0
    files: list[Upload] = field(default_factory=list)

    @property
    def buttons(self) -> list[list[tuple[str, str]]]:
        """(label, custom_id) of the message's buttons, row by row."""
        return [
            [(c.get("label", ""), c.get("custom_id", "")) for c in row["components"]]
            for row in self.payload.get("components") or []
        ]


@dataclass
class _Interaction:
    id: int
    token: str
    channel_id: int
    kind: int
    created: float


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
    #: Where READY tells the bot to resume (a relay in front of the fake, in outage tests).
    resume_url: str | None = None
    resumes: int = 0

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._ws: web.WebSocketResponse | None = None
        self._seq = 0
        self._ids = itertools.count(950000000000000000)
        self._changed = asyncio.Condition()
        self._failures: dict[str, deque[web.Response]] = defaultdict(deque)
        self._interactions: dict[str, _Interaction] = {}
        #: Accepted message edits, in order: (channel id, message id, the new content).
        self.edited: list[tuple[int, int, str]] = []
        self._messages: dict[int, dict[str, Any]] = {}  # the bot's messages, as Discord keeps them

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        # Room for an upload past 8 MiB, so the fake (not aiohttp) refuses it as Discord does.
        app = web.Application(middlewares=[self._record], client_max_size=2 * MAX_UPLOAD)
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
        app.router.add_patch(
            f"{api}/channels/{{channel_id}}/messages/{{message_id}}", self._edit_message
        )
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
        """The server's root, as ``platforms.discord.api_base_url`` (the adapter adds /api/v10)."""
        return f"http://127.0.0.1:{self._port}"

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

    async def close_gateway(self, code: int) -> None:
        """Close the bot's gateway connection with ``code``, as Discord does (4004: bad token)."""
        assert self._ws is not None, "no gateway connection"
        await self._ws.close(code=code)

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH the way Discord does."""
        assert self._ws is not None, "no gateway connection"
        self._seq += 1
        await self._ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})

    async def slash(
        self,
        args: str | None,
        *,
        channel_id: int = CHANNEL_ID,
        user: dict[str, Any] = HUMAN,
        command: str = "kanban",
        dm: bool = False,
    ) -> int:
        """Someone runs ``/<command> args:…`` (in a DM with the bot if ``dm``); returns the
        interaction id."""
        options = [] if args is None else [{"name": "args", "type": 3, "value": args}]
        data = {"id": self._command_id(command), "name": command, "type": 1, "options": options}
        return await self._interact(2, data, DM_CHANNEL_ID if dm else channel_id, user)

    async def autocomplete(self, current: str) -> int:
        """Someone is typing into the ``args`` option; returns the interaction id."""
        options = [{"name": "args", "type": 3, "value": current, "focused": True}]
        data = {"id": self._command_id("kanban"), "name": "kanban", "type": 1, "options": options}
        return await self._interact(4, data, CHANNEL_ID, HUMAN)

    async def press(self, message_id: int, custom_id: str, *, user: dict[str, Any] = HUMAN) -> int:
        """Someone clicks a button under one of the bot's messages; returns the interaction id."""
        message = self._messages[message_id]
        pressable = {
            c.get("custom_id")
            for row in message["components"]
            for c in row["components"]
            if not c.get("disabled")
        }
        assert custom_id in pressable, f"no button {custom_id!r} on message {message_id}"
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(3, data, int(message["channel_id"]), user, message=message)

    async def message(
        self,
        content: str,
        *,
        channel_id: int = CHANNEL_ID,
        author: dict[str, Any] = HUMAN,
        dm: bool = False,
        **extra: Any,
    ) -> int:
        """Someone types a message (in a DM with the bot if ``dm``); returns its id."""
        message = self._message(DM_CHANNEL_ID if dm else channel_id, content, author, **extra)
        if dm:
            del message["guild_id"]  # DMs carry neither a guild nor a member
        else:
            message["member"] = {k: v for k, v in _member(author).items() if k != "user"}
        await self.dispatch("MESSAGE_CREATE", message)
        return int(message["id"])

    async def edit(self, message_id: int, content: str, *, channel_id: int = CHANNEL_ID) -> None:
        """Someone edits their message: MESSAGE_UPDATE with the new content."""
        message = self._message(channel_id, content, HUMAN)
        message["id"] = str(message_id)
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        message["member"] = {k: v for k, v in _member(HUMAN).items() if k != "user"}
        await self.dispatch("MESSAGE_UPDATE", message)

    def posted_to(self, channel_id: int) -> list[Posted]:
        return [p for p in self.posted if p.channel_id == channel_id]

    def replies_to(self, interaction_id: int) -> list[Posted]:
        return [p for p in self.posted if p.interaction_id == interaction_id]

    def callbacks_for(self, interaction_id: int) -> list[dict[str, Any]]:
        return [c for c in self.callbacks if c["interaction_id"] == interaction_id]

    # -- internals -------------------------------------------------------------------------------

    def _command_id(self, name: str) -> str:
        synced = next((c["id"] for c in self.commands if c["name"] == name), None)
        return synced or "910000000000000001"

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        channel_id: int,
        user: dict[str, Any],
        *,
        message: dict[str, Any] | None = None,
    ) -> int:
        interaction = _Interaction(
            next(self._ids),
            f"itoken-{next(self._ids)}",
            channel_id,
            kind,
            asyncio.get_running_loop().time(),
        )
        self._interactions[interaction.token] = interaction
        channel = _thread() if channel_id == THREAD_ID else _channel(channel_id)
        payload: dict[str, Any] = {
            "id": str(interaction.id),
            "application_id": str(APP_ID),
            "type": kind,
            "token": interaction.token,
            "version": 1,
            "locale": "en-US",
            "guild_locale": "en-US",
            "app_permissions": "2147483647",
            "attachment_size_limit": MAX_UPLOAD,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "data": data,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": channel,
            "member": _member(user),
        }
        if message is not None:
            payload["message"] = message
        if channel_id == DM_CHANNEL_ID:
            # A DM: no guild, the user instead of a member, a private channel (type 1).
            del payload["guild_id"], payload["member"]
            payload |= {"user": user, "context": 1, "channel": {"id": str(channel_id), "type": 1}}
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction.id

    def _message(
        self, channel_id: int, content: str, author: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
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
            **extra,
        }

    async def _changed_now(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/gateway":
            return await handler(request)
        body, files = await self._read_body(request)
        request[BODY], request[FILES] = body, files
        canonical = request.match_info.route.resource
        route = canonical.canonical.removeprefix("/api/v10") if canonical else request.path
        self.calls.append(
            Call(
                request.method,
                f"{request.method} {route}",
                request.path,
                dict(request.query),
                body,
                files,
            )
        )
        await self._changed_now()
        failures = self._failures[f"{request.method} {route}"]
        if failures:
            return failures.popleft()
        if request.headers.get("Authorization") not in (None, f"Bot {self.token}"):
            return json_response({"message": "401: Unauthorized", "code": 0}, 401)
        return await handler(request)

    @staticmethod
    async def _read_body(request: web.Request) -> tuple[Any, list[Upload]]:
        """A JSON body, or multipart/form-data: ``payload_json`` plus ``files[n]`` parts."""
        if request.content_type != "multipart/form-data":
            raw = await request.read()
            return (json.loads(raw) if raw else None), []
        body: Any = None
        files: list[Upload] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            assert isinstance(part, BodyPartReader), "no nested multipart in Discord requests"
            content = bytes(await part.read())
            if part.name == "payload_json":
                body = json.loads(content)
            elif part.name and part.name.startswith("files["):
                files.append(
                    Upload(
                        part.name,
                        part.filename or "",
                        content,
                        part.headers.get("Content-Type", "application/octet-stream"),
                    )
                )
        return body, files

    def _check_message(self, body: dict[str, Any], files: list[Upload]) -> web.Response | None:
        """Discord's own checks on a new message; our rule that nothing may ping."""
        content = body.get("content") or ""
        if len(content) > MAX_CONTENT:
            return _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", "Must be 2000 or fewer in length."
            )
        if body.get("allowed_mentions") != {"parse": []}:
            self.violations.append(f"allowed_mentions was {body.get('allowed_mentions')!r}")
            return json_response(
                {"code": 50035, "message": "fake: allowed_mentions must be {'parse': []}"}, 400
            )
        if any(len(upload.content) > MAX_UPLOAD for upload in files):
            return json_response({"code": 40005, "message": "Request entity too large"}, 413)
        components = body.get("components") or []
        refused = _check_components(components)
        if refused is not None:
            self.violations.append(f"components refused: {refused}")
            return _invalid_form("components", "COMPONENT_INVALID", refused)
        if not content.strip() and not files and not components:
            return json_response({"code": 50006, "message": "Cannot send an empty message"}, 400)
        return None

    async def _post(
        self, request: web.Request, channel_id: int, interaction_id: int | None
    ) -> web.Response:
        body: dict[str, Any] = request[BODY]
        files: list[Upload] = request[FILES]
        refused = self._check_message(body, files)
        if refused is not None:
            return refused
        message = self._message(
            channel_id,
            body.get("content") or "",
            BOT_USER,
            components=body.get("components") or [],
            attachments=[self._attachment(upload) for upload in files],
        )
        if interaction_id is not None:
            message["webhook_id"] = str(APP_ID)  # interaction followups are webhook messages
        self._messages[int(message["id"])] = message
        self.posted.append(
            Posted(
                channel_id,
                body.get("content") or "",
                body,
                interaction_id,
                int(message["id"]),
                files,
            )
        )
        await self._changed_now()
        return json_response(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        """PATCH a message the bot sent: its content (and components) change, its id stays."""
        channel_id = int(request.match_info["channel_id"])
        message = self._messages.get(int(request.match_info["message_id"]))
        if message is None or message["channel_id"] != str(channel_id):
            return json_response({"message": "Unknown Message", "code": 10008}, 404)
        body: dict[str, Any] = request[BODY]
        refused = self._check_message(body, [])
        if refused is not None:
            return refused
        if "content" in body:
            message["content"] = body.get("content") or ""
        if "components" in body:
            message["components"] = body.get("components") or []
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        self.edited.append((channel_id, int(message["id"]), message["content"]))
        await self._changed_now()
        return json_response(message)

    def delete_message(self, message_id: int) -> None:
        """Someone deletes a message: editing it is "Unknown Message" from now on."""
        self._messages.pop(message_id, None)

    def _attachment(self, upload: Upload) -> dict[str, Any]:
        attachment_id = str(next(self._ids))
        url = f"http://127.0.0.1:{self._port}/attachments/{attachment_id}/{upload.filename}"
        return {
            "id": attachment_id,
            "filename": upload.filename,
            "size": len(upload.content),
            "url": url,
            "proxy_url": url,
        }

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
        commands = request[BODY]
        self.commands = [
            {**command, "id": str(next(self._ids)), "application_id": str(APP_ID), "version": "1"}
            for command in commands
        ]
        await self._changed_now()
        return json_response(self.commands)

    async def _callback(self, request: web.Request) -> web.Response:
        body = request[BODY]
        interaction_id = int(request.match_info["interaction_id"])
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None or interaction.id != interaction_id:
            return json_response({"code": 10062, "message": "Unknown interaction"}, 404)
        late = asyncio.get_running_loop().time() - interaction.created
        if late > ACK_DEADLINE:
            self.violations.append(f"interaction {interaction_id} answered after {late:.1f}s")
            return json_response({"code": 10062, "message": "Unknown interaction"}, 404)
        if body["type"] not in _CALLBACK_TYPES[interaction.kind]:
            self.violations.append(
                f"callback type {body['type']} for an interaction of type {interaction.kind}"
            )
            return _invalid_form("type", "BASE_TYPE_CHOICES", "Value is not a valid enum value.")
        self.callbacks.append({"interaction_id": interaction_id, **body})
        await self._changed_now()
        if body["type"] == 8:  # autocomplete result: no message comes of it
            return web.Response(status=204)
        return json_response(
            {
                "interaction": {
                    "id": str(interaction_id),
                    "type": interaction.kind,
                    "response_message_id": str(next(self._ids)),
                    "response_message_loading": body["type"] == 5,
                    "response_message_ephemeral": bool(
                        (body.get("data") or {}).get("flags", 0) & EPHEMERAL
                    ),
                }
            }
        )

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interactions.get(request.match_info["token"])
        if interaction is None:
            return json_response({"code": 10015, "message": "Unknown Webhook"}, 404)
        if not any(c["interaction_id"] == interaction.id for c in self.callbacks):
            self.violations.append(f"followup before the interaction {interaction.id} was answered")
        return await self._post(request, interaction.channel_id, interaction.id)

    async def _delete_original(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _channel_message(self, request: web.Request) -> web.Response:
        return await self._post(request, int(request.match_info["channel_id"]), None)

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
                self._ws = ws
                self.resumes += 1
                self.gateway_open = True
                self._seq += 1
                await ws.send_json({"op": 0, "t": "RESUMED", "s": self._seq, "d": {}})
                await self._changed_now()
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
                "resume_gateway_url": self.resume_url or self.gateway_url,
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


def _invalid_form(key: str, code: str, message: str) -> web.Response:
    """Discord's 400 for a body that fails validation."""
    return json_response(
        {
            "code": 50035,
            "message": "Invalid Form Body",
            "errors": {key: {"_errors": [{"code": code, "message": message}]}},
        },
        400,
    )


def _check_components(rows: list[dict[str, Any]]) -> str | None:
    """Discord's limits on a message's buttons; the reason they are refused, or None."""
    if len(rows) > _MAX_ROWS:
        return f"{len(rows)} action rows (at most {_MAX_ROWS})"
    seen: set[str] = set()
    for row in rows:
        if row.get("type") != 1 or not 1 <= len(row.get("components", [])) <= _MAX_ROW_BUTTONS:
            return f"an action row must hold 1..{_MAX_ROW_BUTTONS} components: {row!r}"
        for button in row["components"]:
            custom_id = button.get("custom_id")
            if button.get("type") != 2 or button.get("style") not in range(1, 5):
                return f"not an interactive button: {button!r}"
            if not isinstance(custom_id, str) or not 1 <= len(custom_id) <= _MAX_CUSTOM_ID:
                return f"custom_id must be 1..{_MAX_CUSTOM_ID} characters: {custom_id!r}"
            if custom_id in seen:
                return f"duplicate custom_id {custom_id!r}"
            seen.add(custom_id)
            if len(button.get("label", "")) > _MAX_LABEL:
                return f"label over {_MAX_LABEL} characters"
            if not button.get("label") and not button.get("emoji"):
                return "a button needs a label or an emoji"
    return None
