"""A loopback fake of the Telegram Bot API, enough for the real python-telegram-bot."""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import re
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.web_request import FileField

T = TypeVar("T")

TOKEN = "123456:TEST-fake-token-never-real"  # noqa: S105 - the fake's own
#: The variable a gateway's config names for the bot token (``token_env``): the fake's, above.
TOKEN_ENV = "KANBAN_TEST_TELEGRAM_TOKEN"  # noqa: S105 - a variable name
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
#: Bots may upload files of up to 50 MB; larger requests get 413.
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
MAX_CALLBACK_DATA = 64
MAX_BUTTONS, MAX_ROW = 100, 8
DATE = 1_700_000_000
#: Update types delivered when getUpdates names none ("all but chat_member and reactions").
DEFAULT_UPDATE_TYPES = frozenset(
    {
        "message", "edited_message", "channel_post", "edited_channel_post", "inline_query",
        "chosen_inline_result", "callback_query", "shipping_query", "pre_checkout_query",
        "poll", "poll_answer", "my_chat_member", "chat_join_request",
    }
)  # fmt: skip
#: How Telegram's server finds bot commands in a message (tdlib's match_bot_commands): a slash
#: not after a word character, 1-64 ASCII letters, digits or underscores, an optional
#: @username of 3-32, and no word character right after — so ``/new-session`` yields ``/new``.
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_MENU_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_BUTTON_ACTIONS = frozenset(
    {
        "url", "callback_data", "web_app", "login_url", "switch_inline_query",
        "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
        "callback_game", "pay",
    }
)  # fmt: skip

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
    #: ``inline_keyboard`` rows as sent (button dicts), or None.
    keyboard: list[list[dict[str, Any]]] | None = None
    #: The Message object the fake returned (what a callback query carries).
    message: dict[str, Any] = field(default_factory=dict)

    @property
    def callback_data(self) -> list[str]:
        """Every button's callback_data, row by row."""
        rows = self.keyboard or []
        return [key["callback_data"] for row in rows for key in row if "callback_data" in key]


@dataclass
class SentFile:
    """A file the fake accepted through sendDocument (multipart upload)."""

    message_id: int
    chat_id: int
    filename: str
    content: bytes
    mime: str
    message_thread_id: int | None
    caption: str | None = None


@dataclass
class Held:
    """A request the fake holds unanswered (``FakeTelegram.hold``) until the test lets it go."""

    method: str
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    #: On release: True, Telegram takes it (even if its sender is gone by then); False, it never
    #: reached Telegram (the sender's connection broke first) and changes nothing.
    deliver: bool = False

    def release(self, *, deliver: bool) -> None:
        self.deliver = deliver
        self.released.set()


@dataclass
class _Chat:
    chat: dict[str, Any]
    topics: set[int] = field(default_factory=set)


@dataclass
class FakeTelegram:
    """``POST /bot<TOKEN>/<method>`` on 127.0.0.1:<ephemeral>, with long-polled getUpdates.

    Tests push updates (``push_text``, ``press`` for an inline-keyboard button), inject
    failures (``fail_next``) and wait on what the bot did (``wait_for``) — every recorded call
    wakes the waiters, so there is no polling. Messages (``sent``, with their keyboards), uploads
    (``files``, from multipart sendDocument), answered callback queries (``answered``) and the
    command menu (``commands``) are checked as Telegram checks them; getUpdates honours
    ``allowed_updates``.
    """

    token: str = TOKEN
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    files: list[SentFile] = field(default_factory=list)
    #: callback_query_id → the answerCallbackQuery parameters.
    answered: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Every accepted editMessageText, in order: (chat_id, message_id, the new text as sent).
    edits: list[tuple[int, int, str]] = field(default_factory=list)
    #: The path prefix (``api_base_url`` of ``{base_url}/<via>``) of every getUpdates request, as
    #: it arrives: which of several clients sharing the token polls.
    pollers: list[str] = field(default_factory=list)

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
        self._allowed_updates: frozenset[str] = DEFAULT_UPDATE_TYPES
        self._callback_ids = itertools.count(4_382_000_000_000_000_001)
        self._pressed: set[str] = set()
        self._holds: dict[str, deque[Held]] = defaultdict(deque)

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        # Uploads up to Telegram's own limit reach the handler, which answers 413 past it.
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{via}/bot{token}/{method}", self._handle)
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
        message_id: int | None = None,
    ) -> dict[str, Any]:
        """An update carrying a text message, with the ``bot_command`` entity Telegram adds.

        Message ids count per fake, not per chat as Telegram's do; pass ``message_id`` to give
        two chats the same one.
        """
        self.add_chat(chat_id, chat_type, topics=() if thread_id is None else (thread_id,))
        message: dict[str, Any] = {
            "message_id": next(self._message_ids) if message_id is None else message_id,
            "date": DATE,
            "chat": self._chats[chat_id].chat,
            "from": user,
            "text": text,
        }
        if entities := bot_command_entities(text):
            message["entities"] = entities
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

    def press_update(
        self, sent: Sent, data: str, *, user: dict[str, Any] = ALICE
    ) -> dict[str, Any]:
        """A callback_query update: ``user`` pressed the button with ``data`` under ``sent``.

        Clients can only press buttons that exist, so any other ``data`` is a test error.
        """
        if data not in sent.callback_data:
            raise ValueError(f"message {sent.message_id} has no button {data!r}")
        query_id = str(next(self._callback_ids))
        self._pressed.add(query_id)
        query = {
            "id": query_id,
            "from": user,
            "message": sent.message,
            "chat_instance": str(-7 * abs(int(sent.chat_id))),
            "data": data,
        }
        return {"update_id": next(self._update_ids), "callback_query": query}

    async def press(self, sent: Sent, data: str, *, user: dict[str, Any] = ALICE) -> str:
        """Press a button under ``sent``; returns the callback query id."""
        update = self.press_update(sent, data, user=user)
        await self.push(update)
        return str(update["callback_query"]["id"])

    def hold(self, method: str) -> Held:
        """Hold the next ``method`` request, unanswered, until ``Held.release``: a send in
        flight when its sender dies."""
        held = Held(method.lower())
        self._holds[held.method].append(held)
        return held

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

    def delete(self, chat_id: int, message_id: int) -> None:
        """A person deletes a message: editing it fails from now on, as on Telegram."""
        self.sent = [m for m in self.sent if (m.chat_id, m.message_id) != (chat_id, message_id)]

    # -- the Bot API -----------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method.lower() == "getupdates":
            self.pollers.append(request.match_info.get("via", ""))
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
        holds = self._holds[method.lower()]
        if holds:
            held = holds.popleft()
            held.arrived.set()
            await held.released.wait()
            if not held.deliver:
                return web.Response(status=502)
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
        elif name == "editmessagetext":
            result = self._edit_message_text(params)
        elif name == "senddocument":
            result = self._send_document(params)
        elif name == "answercallbackquery":
            result = self._answer_callback_query(params)
        elif name == "setmycommands":
            self.commands = _menu(params.get("commands"))
            result = True
        else:
            # getMyCommands, close, logOut, …: accepted.
            result = True
        await self._record(Call(method, params))
        return result

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        allowed = params.get("allowed_updates")
        # A list replaces the setting ([] means the default); no parameter keeps the last one.
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or DEFAULT_UPDATE_TYPES

        def wanted(update: dict[str, Any]) -> bool:
            return bool(self._allowed_updates.intersection(update.keys() - {"update_id"}))

        def pending() -> list[dict[str, Any]]:
            # Telegram does not keep updates of a type the bot did not ask for.
            return [u for u in self._updates if u["update_id"] >= offset and wanted(u)]

        async with self._changed:
            # An offset confirms every update below it: Telegram forgets them.
            self._updates = pending()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        while not (pending() or self._closing):
                            await self._changed.wait()
            return pending()[:limit]

    def _destination(self, params: dict[str, Any]) -> tuple[int, _Chat, int | None]:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int) or chat_id not in self._chats:
            raise BotApiError(400, "Bad Request: chat not found")
        known = self._chats[chat_id]
        thread_id = params.get("message_thread_id")
        if thread_id is not None and thread_id not in known.topics:
            raise BotApiError(400, "Bad Request: message thread not found")
        return chat_id, known, thread_id

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, _, _ = self._destination({"chat_id": params.get("chat_id")})
        message_id = params.get("message_id")
        found = [m for m in self.sent_to(chat_id) if m.message_id == message_id]
        if not found:
            raise BotApiError(400, "Bad Request: message to edit not found")
        (sent,) = found
        keyboard = _inline_keyboard(params.get("reply_markup"))
        text = params.get("text")
        visible = self._visible(text, params.get("parse_mode"))
        if text == sent.text and keyboard == sent.keyboard:
            raise BotApiError(
                400,
                "Bad Request: message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of the message",
            )
        assert isinstance(text, str)
        sent.text = text
        sent.keyboard = keyboard
        sent.message = {**sent.message, "text": visible, "edit_date": int(time.time())}
        self.edits.append((chat_id, sent.message_id, text))
        return sent.message

    def _visible(self, text: object, parse_mode: object) -> str:
        if not isinstance(text, str):
            raise BotApiError(400, "Bad Request: message text is empty")
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
        return visible

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, known, thread_id = self._destination(params)
        keyboard = _inline_keyboard(params.get("reply_markup"))
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
        message = self._message(known, thread_id, text=visible)
        if keyboard is not None:
            message["reply_markup"] = {"inline_keyboard": keyboard}
        self.sent.append(
            Sent(
                message_id=message["message_id"],
                chat_id=chat_id,
                text=text,
                message_thread_id=thread_id,
                parse_mode=parse_mode,
                reply_to=reply.get("message_id") if isinstance(reply, dict) else None,
                keyboard=keyboard,
                message=message,
            )
        )
        return message

    def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, known, thread_id = self._destination(params)
        _inline_keyboard(params.get("reply_markup"))
        document = params.get("document")
        if not isinstance(document, FileField):
            # A file_id or URL: the fake stores no files to refer to.
            raise BotApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        content = document.file.read()
        if not content:
            raise BotApiError(400, "Bad Request: file must be non-empty")
        if len(content) > MAX_UPLOAD_BYTES:
            raise BotApiError(413, "Request Entity Too Large")
        caption = params.get("caption")
        if isinstance(caption, str) and len(caption) > 1024:
            raise BotApiError(400, "Bad Request: message caption is too long")
        message = self._message(known, thread_id)
        message["document"] = {
            "file_id": f"BQAC-fake-{message['message_id']}",
            "file_unique_id": f"fake{message['message_id']}",
            "file_name": document.filename,
            "mime_type": document.content_type,
            "file_size": len(content),
        }
        if isinstance(caption, str):
            message["caption"] = caption
        self.files.append(
            SentFile(
                message_id=message["message_id"],
                chat_id=chat_id,
                filename=document.filename,
                content=content,
                mime=document.content_type,
                message_thread_id=thread_id,
                caption=caption if isinstance(caption, str) else None,
            )
        )
        return message

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        # Each query is answered once; unknown or answered ids get the same refusal.
        if query_id not in self._pressed or query_id in self.answered:
            raise BotApiError(
                400,
                "Bad Request: query is too old and response timeout expired or query ID is invalid",
            )
        text = params.get("text")
        if isinstance(text, str) and len(text) > 200:
            raise BotApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self.answered[query_id] = params
        return True

    def _message(self, known: _Chat, thread_id: int | None, **fields: Any) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": DATE,
            "chat": known.chat,
            "from": BOT_USER,
            **fields,
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return message

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()


def bot_command_entities(text: str) -> list[dict[str, Any]]:
    """The ``bot_command`` entities Telegram attaches to ``text`` (offsets in UTF-16 units)."""
    return [
        {
            "type": "bot_command",
            "offset": utf16_len(text[: match.start()]),
            "length": utf16_len(match.group()),
        }
        for match in _BOT_COMMAND.finditer(text)
    ]


def _menu(commands: object) -> list[dict[str, Any]]:
    """setMyCommands' list, checked as Telegram checks it."""
    if not isinstance(commands, list) or len(commands) > 100:
        raise BotApiError(400, "Bad Request: too many commands")
    for command in commands:
        if not isinstance(command, dict) or not _MENU_COMMAND.fullmatch(
            str(command.get("command", ""))
        ):
            raise BotApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        description = command.get("description")
        if not isinstance(description, str) or not 1 <= len(description) <= 256:
            raise BotApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
    return list(commands)


def _inline_keyboard(markup: object) -> list[list[dict[str, Any]]] | None:
    """The rows of an InlineKeyboardMarkup, or a 400 where Telegram would refuse it."""
    if markup is None:
        return None
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if sum(len(row) for row in rows) > MAX_BUTTONS or any(len(row) > MAX_ROW for row in rows):
        raise BotApiError(400, "Bad Request: reply markup is too long")
    for row in rows:
        for key in row:
            if not isinstance(key, dict) or not str(key.get("text", "")).strip():
                raise BotApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
            if len(_BUTTON_ACTIONS.intersection(key)) != 1:
                raise BotApiError(
                    400, "Bad Request: text buttons are unallowed in the inline keyboard"
                )
            data = key.get("callback_data")
            if "callback_data" in key and not (
                isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA
            ):
                raise BotApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return rows


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


@contextlib.asynccontextmanager
async def running() -> AsyncIterator[FakeTelegram]:
    """A started fake Bot API, stopped afterwards (the tests' fixture body)."""
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
