"""A loopback fake of the Telegram Bot API, enough for the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")

TOKEN = "123456:TEST-fake-token-never-real"  # noqa: S105 - the fake's own
BOT_ID = 999000
BOT_USERNAME = "kanban_test_bot"
BOT_USER = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "Kanban",
    "username": BOT_USERNAME,
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}
ALICE_ID = 42
ALICE = {
    "id": ALICE_ID,
    "is_bot": False,
    "first_name": "Alice",
    "last_name": "Liddell",
    "username": "alice",
}
MAX_TEXT = 4096
DATE = 1_700_000_000

#: Telegram's HTML parse mode accepts these tags and nothing else.
ALLOWED_TAGS = frozenset(
    {
        "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "a", "code", "pre", "blockquote", "tg-emoji",
    }
)  # fmt: skip
#: ...and these named entities; numeric ones are all fine.
_AMPERSAND = re.compile(r"&(?!(?:lt|gt|amp|quot|#[0-9]+|#x[0-9a-fA-F]+);)")
# PTB sends text parameters as they are and every other value JSON-encoded.
_RAW_PARAMS = frozenset({"text", "caption", "parse_mode", "description", "short_description"})


class EntityError(ValueError):
    """The text would be refused with 400 "Bad Request: can't parse entities: …"."""


class _StrictTelegramHTML(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise EntityError(f'unsupported start tag "{tag}"')
        parent = self.open[-1] if self.open else None
        if parent in ("pre", "code") and not (parent == "pre" and tag == "code"):
            raise EntityError(f'tag "{tag}" inside "{parent}"')
        names = {name for name, _ in attrs}
        if tag == "a" and "href" not in names:
            raise EntityError('tag "a" needs href')
        if tag == "span" and ("class", "tg-spoiler") not in attrs:
            raise EntityError('tag "span" must have class "tg-spoiler"')
        if tag in ("b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "pre") and attrs:
            raise EntityError(f'tag "{tag}" takes no attributes')
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise EntityError(f'unsupported self-closing tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise EntityError(f'can\'t find start tag corresponding to end tag "{tag}"')
        self.open.pop()

    def handle_data(self, data: str) -> None:
        for char in "<>&":
            if char in data:
                raise EntityError(f"unescaped {char!r} in text")
        self.text.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ("lt", "gt", "amp", "quot"):
            raise EntityError(f'unsupported entity "&{name};"')
        self.text.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.text.append(html.unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        raise EntityError("comments are not supported")

    def handle_decl(self, decl: str) -> None:
        raise EntityError("declarations are not supported")

    def handle_pi(self, data: str) -> None:
        raise EntityError("processing instructions are not supported")

    def unknown_decl(self, data: str) -> None:
        raise EntityError("declarations are not supported")


def parse_telegram_html(source: str) -> str:
    """The visible text of ``source``, or EntityError where Telegram would refuse it."""
    if match := _AMPERSAND.search(source):
        raise EntityError(f"unescaped or unsupported entity at byte offset {match.start()}")
    parser = _StrictTelegramHTML()
    parser.feed(source)
    parser.close()
    if parser.open:
        raise EntityError(f'can\'t find end tag corresponding to start tag "{parser.open[-1]}"')
    return "".join(parser.text)


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class BotApiError(Exception):
    """Answer a request with ``{"ok": false, …}``."""

    def __init__(self, status: int, description: str, **parameters: object) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass
class Call:
    """One request the bot made: the method name as sent and its decoded parameters."""

    method: str
    params: dict[str, Any]
    status: int = 200


@dataclass
class Sent:
    """A message the fake accepted."""

    message_id: int
    chat_id: int | str
    text: str
    message_thread_id: int | None
    parse_mode: str | None
    reply_to: int | None


@dataclass
class _Chat:
    chat: dict[str, Any]
    topics: set[int] = field(default_factory=set)


@dataclass
class FakeTelegram:
    """``POST /bot<TOKEN>/<method>`` on 127.0.0.1:<ephemeral>, with long-polled getUpdates.

    Tests push updates (``push_text``), inject failures (``fail_next``) and wait on what the bot
    did (``wait_for``) — every recorded call wakes the waiters, so there is no polling.
    """

    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._changed = asyncio.Condition()
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._failures: dict[str, deque[web.Response]] = defaultdict(deque)
        self._chats: dict[int, _Chat] = {}
        self._closing = False

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        # Long polls in flight end at once on stop (see stop), so a short grace period is plenty.
        # No access log: request paths carry the token, and tests assert it is never logged.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        async with self._changed:
            self._closing = True
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """What the adapter's ``api_base_url`` should be (PTB appends ``/bot<token>``)."""
        return f"http://127.0.0.1:{self._port}"

    # -- test controls ---------------------------------------------------------------------------

    def add_chat(
        self, chat_id: int, chat_type: str = "supergroup", *, topics: tuple[int, ...] = ()
    ) -> None:
        """Make a chat the bot is in known (sending to an unknown chat is "chat not found")."""
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "Someone"
        else:
            chat["title"] = f"chat {chat_id}"
            if topics:
                chat["is_forum"] = True
        known = self._chats.setdefault(chat_id, _Chat(chat))
        known.topics.update(topics)

    def message_update(
        self,
        text: str,
        *,
        chat_id: int = ALICE_ID,
        chat_type: str = "private",
        user: dict[str, Any] = ALICE,
        thread_id: int | None = None,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """An update carrying a text message, with the ``bot_command`` entity Telegram adds."""
        self.add_chat(chat_id, chat_type, topics=() if thread_id is None else (thread_id,))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": DATE,
            "chat": self._chats[chat_id].chat,
            "from": user,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return {
            "update_id": next(self._update_ids) if update_id is None else update_id,
            "message": message,
        }

    async def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates, all at once (one long poll can return them together)."""
        async with self._changed:
            self._updates.extend(updates)
            self._changed.notify_all()

    async def push_text(self, text: str, **kwargs: Any) -> int:
        """Someone sends ``text``; returns the update id. Keywords as for ``message_update``."""
        update = self.message_update(text, **kwargs)
        await self.push(update)
        return int(update["update_id"])

    def fail_next(self, method: str, status: int, body: dict[str, Any] | None = None) -> None:
        """Answer the next call of ``method`` with ``status`` and ``body`` (an error envelope)."""
        if body is None:
            body = {"ok": False, "error_code": status, "description": f"Error {status}"}
            if status == 429:
                body["description"] = "Too Many Requests: retry after 1"
                body["parameters"] = {"retry_after": 1}
        self._failures[method.lower()].append(web.json_response(body, status=status))

    async def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> T:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded call)."""
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    while not (result := predicate()):
                        await self._changed.wait()
            except TimeoutError:
                seen = [(c.method, c.status) for c in self.calls if c.method != "getUpdates"]
                raise AssertionError(f"not within {timeout}s; calls so far: {seen}") from None
        return result

    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def sent_to(self, chat_id: int) -> list[Sent]:
        return [message for message in self.sent if message.chat_id == chat_id]

    # -- the Bot API -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        try:
            params = await _decode(request)
        except ConnectionResetError:
            # PTB cancels its long poll on stop, sometimes while the form is still arriving.
            return web.Response(status=499)
        if request.match_info["token"] != self.token:
            await self._record(Call(method, params, 401))
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        failures = self._failures[method.lower()]
        if failures:
            response = failures.popleft()
            await self._record(Call(method, params, response.status))
            return response
        try:
            result = await self._dispatch(method, params)
        except BotApiError as error:
            await self._record(Call(method, params, error.status))
            return web.json_response(error.body(), status=error.status)
        return web.json_response({"ok": True, "result": result})

    async def _dispatch(self, method: str, params: dict[str, Any]) -> object:
        name = method.lower()
        if name == "getupdates":
            # Recorded after the wait, so waiters see the poll that returned something.
            updates = await self._get_updates(params)
            await self._record(Call(method, params))
            return updates
        if name == "getme":
            result: object = BOT_USER
        elif name == "deletewebhook":
            if params.get("drop_pending_updates"):
                self._updates.clear()
            result = True
        elif name == "sendmessage":
            result = self._send_message(params)
        else:
            # setMyCommands, getMyCommands, close, logOut, …: accepted.
            result = True
        if name == "setmycommands":
            self.commands = list(params.get("commands", []))
        await self._record(Call(method, params))
        return result

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)

        def pending() -> list[dict[str, Any]]:
            return [u for u in self._updates if u["update_id"] >= offset]

        async with self._changed:
            # An offset confirms every update below it: Telegram forgets them.
            self._updates = pending()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        while not (pending() or self._closing):
                            await self._changed.wait()
            return pending()[:limit]

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise BotApiError(400, "Bad Request: chat not found")
        known = self._chats[chat_id]
        thread_id = params.get("message_thread_id")
        if thread_id is not None and thread_id not in known.topics:
            raise BotApiError(400, "Bad Request: message thread not found")
        text = params.get("text")
        if not isinstance(text, str):
            raise BotApiError(400, "Bad Request: message text is empty")
        parse_mode = params.get("parse_mode")
        if parse_mode is None:
            visible = text
        elif parse_mode == "HTML":
            try:
                visible = parse_telegram_html(text)
            except EntityError as error:
                raise BotApiError(400, f"Bad Request: can't parse entities: {error}") from None
        else:
            raise BotApiError(400, f"Bad Request: unsupported parse_mode {parse_mode}")
        if not visible.strip():
            raise BotApiError(400, "Bad Request: message text is empty")
        if utf16_len(visible) > MAX_TEXT:
            raise BotApiError(400, "Bad Request: message is too long")
        reply = params.get("reply_parameters")
        message_id = next(self._message_ids)
        self.sent.append(
            Sent(
                message_id=message_id,
                chat_id=chat_id,
                text=text,
                message_thread_id=thread_id,
                parse_mode=parse_mode,
                reply_to=reply.get("message_id") if isinstance(reply, dict) else None,
            )
        )
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": DATE,
            "chat": known.chat,
            "from": BOT_USER,
            "text": visible,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()


async def _decode(request: web.Request) -> dict[str, Any]:
    """PTB posts form fields; every non-text value is a JSON-encoded string."""
    if request.content_type == "application/json":
        body = await request.json()
        return dict(body) if isinstance(body, dict) else {}
    form = await request.post()
    params: dict[str, Any] = {}
    for key, value in form.items():
        if not isinstance(value, str) or key in _RAW_PARAMS:
            params[key] = value
            continue
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params
