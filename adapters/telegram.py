"""Telegram adapter: python-telegram-bot long polling, HTML rendering and splitting, errors."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import weakref
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from telegram import Bot, BotCommand, LinkPreviewOptions, Message, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, CommandHandler, ContextTypes, filters

from gateway import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    Block,
    Capabilities,
    ChatRef,
    ChatUser,
    Document,
    Heading,
    IncomingMessage,
    MessageSink,
    Paragraph,
    Preformatted,
    split_text,
)

PLATFORM = "telegram"
COMMAND = "kanban"
COMMAND_DESCRIPTION = "Run a kanban board command, e.g. /kanban list"
DEFAULT_API_BASE_URL = "https://api.telegram.org"
DEFAULT_POLL_TIMEOUT = 10
#: Telegram's limit for one message's text (telegram.constants.MessageLimit.MAX_TEXT_LENGTH).
MAX_MESSAGE_CHARS = 4096
#: A reply waits out one flood-control pause no longer than this; longer ones are dropped.
MAX_REPLY_RETRY_AFTER = 30.0

log = logging.getLogger(__name__)

_PRE_OPEN, _PRE_CLOSE = "<pre>", "</pre>"
# Every part may gain a reopened <pre> at its start and a closing </pre> at its end.
_PRE_OVERHEAD = len(_PRE_OPEN) + len(_PRE_CLOSE)
_BOLD_OVERHEAD = len("<b></b>")
# A core-supplied footer must never eat the message; cap it well below any budget.
_MAX_FOOTER_CHARS = 256
_TAG = re.compile(r"<[^>]*>")
# The General topic of a forum is thread 1, and sending with message_thread_id=1 fails.
_GENERAL_TOPIC = 1
# BadRequest descriptions that mean the destination is gone for good, not a transient failure.
_GONE = ("chat not found", "thread not found", "not enough rights", "have no rights")
# Loggers that print the bot URL (and so the token): httpx logs every request at INFO.
_TOKEN_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> TelegramAdapter:
    """Build the adapter from its config.yaml section; the token is read from ``environ``."""
    token_env = config.get("token_env")
    if not isinstance(token_env, str) or not token_env:
        raise AdapterError(
            "telegram: config key token_env (the name of the environment variable holding "
            "the bot token) is required"
        )
    api_base_url = config.get("api_base_url", DEFAULT_API_BASE_URL)
    if not isinstance(api_base_url, str) or not api_base_url.startswith(("http://", "https://")):
        raise AdapterError("telegram: api_base_url must be an http:// or https:// URL")
    poll_timeout = config.get("poll_timeout", DEFAULT_POLL_TIMEOUT)
    if isinstance(poll_timeout, bool) or not isinstance(poll_timeout, int) or poll_timeout < 0:
        raise AdapterError("telegram: poll_timeout must be a whole number of seconds (>= 0)")
    return TelegramAdapter(
        token=environ.get(token_env, ""),
        token_env=token_env,
        api_base_url=api_base_url,
        poll_timeout=poll_timeout,
    )


class TelegramAdapter:
    """``/kanban …`` in private chats, groups and forum topics, over Bot API long polling."""

    name = PLATFORM
    capabilities = Capabilities(max_message_chars=MAX_MESSAGE_CHARS)

    def __init__(
        self,
        *,
        token: str,
        token_env: str,
        api_base_url: str = DEFAULT_API_BASE_URL,
        poll_timeout: int = DEFAULT_POLL_TIMEOUT,
    ) -> None:
        self._token = token
        self._token_env = token_env
        self._api_base_url = api_base_url.rstrip("/")
        self._poll_timeout = poll_timeout
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self._sink: MessageSink | None = None
        self._redactor: _RedactToken | None = None
        # Updates run concurrently so one slow command does not hold up every chat; this lock
        # per conversation keeps one chat's commands in the order they were sent.
        self._conversation_locks: weakref.WeakValueDictionary[
            tuple[str, str | None], asyncio.Lock
        ] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return (
            f"TelegramAdapter(api_base_url={self._api_base_url!r}, token_env={self._token_env!r})"
        )

    async def start(self, sink: MessageSink) -> None:
        """Check the token (getMe), register the command menu and start long polling."""
        if self._app is not None:
            raise AdapterError("telegram: already started")
        if not self._token:
            raise AdapterError(
                f"telegram: no bot token: the environment variable {self._token_env} "
                "(config key token_env) is not set or empty"
            )
        self._install_redactor()
        app = (
            Application.builder()
            .token(self._token)
            .base_url(f"{self._api_base_url}/bot")
            .base_file_url(f"{self._api_base_url}/file/bot")
            .concurrent_updates(True)
            .build()
        )
        # Only new messages: an edited "/kanban …" must not run the command a second time.
        app.add_handler(CommandHandler(COMMAND, self._on_command, filters.UpdateType.MESSAGE))
        self._sink = sink
        try:
            await self._initialize(app)
            await self._register_menu(app)
            await app.start()
            if app.updater is None:
                raise AdapterError("telegram: the application was built without an updater")
            # Commands sent while the gateway was down are still answered (no
            # drop_pending_updates); a re-fetched update keeps its id for the router's dedupe.
            await app.updater.start_polling(
                timeout=timedelta(seconds=self._poll_timeout),
                allowed_updates=[Update.MESSAGE],
            )
        except BaseException:
            await _teardown(app)
            self._sink = None
            self._remove_redactor()
            raise
        self._app = app
        bot_name = app.bot.username
        log.info("telegram: polling as @%s via %s", bot_name, self._api_base_url)

    async def stop(self) -> None:
        """Stop polling, finish in-flight commands and close the HTTP clients; idempotent."""
        app, self._app = self._app, None
        if app is None:
            return
        try:
            await _teardown(app)
        finally:
            self._sink = None
            self._remove_redactor()

    async def send(self, chat: ChatRef, document: Document) -> None:
        """Send a notification: every part, in order; the first failure is raised, mapped."""
        app = self._app
        if app is None:
            raise AdapterError("telegram: not started")
        for part in render_parts(document, max_parts=self.capabilities.max_parts):
            try:
                await self._send_part(app.bot, chat, part, reply_to=None)
            except TelegramError as exc:
                raise self._map_error(exc) from _safe_cause(exc)

    async def _initialize(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            await app.initialize()
        except InvalidToken:
            # PTB's message quotes the token, so neither its text nor the exception is kept.
            raise AdapterError(
                f"telegram: the Bot API rejected the token in {self._token_env} (getMe failed)"
            ) from None
        except TelegramError as exc:
            raise self._map_error(exc, "getMe failed") from exc

    async def _register_menu(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # The menu is a convenience: commands work without it, so a failure is only logged.
        try:
            await app.bot.set_my_commands([BotCommand(COMMAND, COMMAND_DESCRIPTION)])
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", self._map_error(exc))

    async def _on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        sink = self._sink
        # Anonymous channel posts have no sender to check access for; nothing to do.
        if message is None or message.from_user is None or sink is None:
            return
        user = message.from_user
        incoming = IncomingMessage(
            chat=_chat_ref(message),
            user=ChatUser(PLATFORM, str(user.id), user.username or user.full_name),
            text=_command_text(message),
            delivery_id=str(update.update_id),
        )
        key = (incoming.chat.chat_id, incoming.chat.thread_id)
        lock = self._conversation_locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                document = await sink(incoming)
            except Exception:
                log.exception("telegram: the gateway failed on update %s", update.update_id)
                document = Document.text("Sorry: the gateway failed on this command (see its log).")
            if document is not None:
                await self._reply(context.bot, incoming.chat, document, message.message_id)

    async def _reply(
        self,
        bot: Bot,
        chat: ChatRef,
        document: Document,
        reply_to: int,
    ) -> None:
        parts = render_parts(document, max_parts=self.capabilities.max_parts)
        for index, part in enumerate(parts):
            try:
                await self._send_with_one_retry(bot, chat, part, reply_to if index == 0 else None)
            except TelegramError as exc:
                log.warning(
                    "telegram: reply part %d/%d to chat %s not sent: %s",
                    index + 1,
                    len(parts),
                    chat.chat_id,
                    self._map_error(exc),
                )
                return

    async def _send_with_one_retry(
        self,
        bot: Bot,
        chat: ChatRef,
        text: str,
        reply_to: int | None,
    ) -> None:
        try:
            await self._send_part(bot, chat, text, reply_to)
        except RetryAfter as exc:
            delay = _retry_after_seconds(exc)
            if delay > MAX_REPLY_RETRY_AFTER:
                raise
            # Flood control: Telegram names the pause; sending before it ends fails again.
            await asyncio.sleep(delay)
            await self._send_part(bot, chat, text, reply_to)

    async def _send_part(
        self,
        bot: Bot,
        chat: ChatRef,
        text: str,
        reply_to: int | None,
    ) -> None:
        if chat.platform != PLATFORM:
            raise AdapterRejected(f"telegram: cannot send to a {chat.platform} chat")
        await bot.send_message(
            chat_id=_chat_id(chat),
            text=text,
            parse_mode=ParseMode.HTML,
            message_thread_id=_thread_id(chat),
            link_preview_options=_NO_PREVIEW,
            reply_parameters=(
                None
                if reply_to is None
                else ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
            ),
        )

    def _map_error(self, exc: TelegramError, context: str = "") -> AdapterError:
        what = f"telegram: {context + ': ' if context else ''}{self._redact(str(exc))}"
        if isinstance(exc, RetryAfter):
            return AdapterRateLimited(_retry_after_seconds(exc), what)
        if isinstance(exc, ChatMigrated):
            return AdapterRejected(f"{what} (the group is now chat {exc.new_chat_id})")
        if isinstance(exc, Forbidden):
            return AdapterRejected(what)
        if isinstance(exc, BadRequest) and any(gone in str(exc).lower() for gone in _GONE):
            return AdapterRejected(what)
        if isinstance(exc, InvalidToken):
            return AdapterError(f"telegram: the Bot API rejected the token in {self._token_env}")
        # NetworkError, TimedOut, other BadRequests, Conflict: the caller may retry later.
        return AdapterError(what)

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text

    def _install_redactor(self) -> None:
        self._redactor = _RedactToken(self._token)
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).addFilter(self._redactor)

    def _remove_redactor(self) -> None:
        if self._redactor is None:
            return
        for name in _TOKEN_LOGGERS:
            logging.getLogger(name).removeFilter(self._redactor)
        self._redactor = None


class _RedactToken(logging.Filter):
    """Replaces the bot token in log records: Bot API URLs embed it (``/bot<token>/getMe``)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token and self._token in message:
            record.msg = message.replace(self._token, "<token>")
            record.args = None
        return True


async def _teardown(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The reverse of start, for whatever part of it succeeded."""
    if app.updater is not None and app.updater.running:
        await app.updater.stop()
    if app.running:
        await app.stop()
    await app.shutdown()
    # A failed initialize() leaves the bot's HTTP clients open but the app "not initialized",
    # so app.shutdown() skips them; Bot.shutdown() is a no-op when they are already closed.
    await app.bot.shutdown()


def _safe_cause(exc: TelegramError) -> TelegramError | None:
    # InvalidToken raised by Bot.initialize() quotes the token; never chain it into our errors.
    return None if isinstance(exc, InvalidToken) else exc


def _retry_after_seconds(exc: RetryAfter) -> float:
    # An int of seconds today; a timedelta with PTB_TIMEDELTA=1 and in PTB's next major version.
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _chat_ref(message: Message) -> ChatRef:
    thread = message.message_thread_id
    # Outside forum topics message_thread_id names a reply chain, and sending to it fails.
    topic = thread if message.is_topic_message and thread and thread != _GENERAL_TOPIC else None
    return ChatRef(PLATFORM, str(message.chat.id), None if topic is None else str(topic))


def _chat_id(chat: ChatRef) -> int | str:
    # Numeric ids for chats; "@channelname" stays a string.
    try:
        return int(chat.chat_id)
    except ValueError:
        return chat.chat_id


def _thread_id(chat: ChatRef) -> int | None:
    if chat.thread_id is None:
        return None
    try:
        thread = int(chat.thread_id)
    except ValueError:
        raise AdapterRejected(f"telegram: thread id {chat.thread_id!r} is not a topic id") from None
    return None if thread == _GENERAL_TOPIC else thread


def _command_text(message: Message) -> str:
    """What follows ``/kanban`` or ``/kanban@bot``, with the user's quoting and spacing kept."""
    text = message.text or ""
    # CommandHandler only matches a bot_command entity at offset 0; parse_entity converts its
    # UTF-16 offsets, so slicing by the command's length is exact.
    command = message.parse_entity(message.entities[0]) if message.entities else ""
    return text[len(command) :].strip()


def render_parts(
    document: Document, *, limit: int = MAX_MESSAGE_CHARS, max_parts: int = 5
) -> list[str]:
    """Telegram HTML for ``document`` in at most ``max_parts`` messages of ``limit`` characters.

    Every part is valid HTML on its own: a code block cut between parts is closed at the end of
    one part and reopened at the start of the next. Parts are also within ``limit`` in UTF-16
    code units, which is how Telegram counts.
    """
    footer = html.escape(document.overflow_footer[:_MAX_FOOTER_CHARS], quote=False)
    budget = limit - _PRE_OVERHEAD
    parts = _render_within(document.blocks, budget, max_parts, footer)
    if any(_utf16_len(part) > limit for part in parts):
        # Astral characters (emoji) count twice; half the budget holds whatever the text is.
        parts = _render_within(document.blocks, budget // 2, max_parts, footer)
    return parts


def _render_within(
    blocks: tuple[Block, ...], budget: int, max_parts: int, footer: str
) -> list[str]:
    # Lines no longer than this never need split_text's hard cut (which could cut a tag or an
    # entity) nor its mid-line trim when the footer goes on.
    width = budget - len(footer) - 1
    if width < _PRE_OVERHEAD + 8:
        raise ValueError("limit too small for Telegram parts")
    lines = list(_html_lines(blocks, width))
    if not lines:
        return []
    parts = split_text("\n".join(lines), budget, max_parts=max_parts, footer=footer)
    cut = len(parts) == max_parts and parts[-1].endswith("\n" + footer)
    balanced = _balance_pre(parts, footer if cut else None)
    # Telegram rejects a message with no visible text (only blank lines or empty tags).
    return [part for part in balanced if _TAG.sub("", part).strip()]


def _html_lines(blocks: tuple[Block, ...], width: int) -> Iterator[str]:
    """One line of HTML per output line; only <pre> spans lines, bold is closed per line."""
    for block in blocks:
        if isinstance(block, Paragraph):
            for line in block.text.split("\n"):
                yield from _escaped_chunks(line, width)
        elif isinstance(block, Heading):
            for line in block.text.split("\n"):
                if not line.strip():
                    yield ""
                    continue
                for chunk in _escaped_chunks(line, width - _BOLD_OVERHEAD):
                    yield f"<b>{chunk}</b>"
        elif isinstance(block, Preformatted):
            text = block.text.strip("\n")
            if not text.strip():
                continue
            chunks = [
                chunk
                for line in text.split("\n")
                for chunk in _escaped_chunks(line, width - _PRE_OVERHEAD)
            ]
            chunks[0] = _PRE_OPEN + chunks[0]
            chunks[-1] += _PRE_CLOSE
            yield from chunks


def _escaped_chunks(line: str, width: int) -> list[str]:
    """``line`` escaped, cut into pieces of at most ``width`` characters between entities."""
    escaped = html.escape(line, quote=False)
    if len(escaped) <= width:
        return [escaped]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        piece = html.escape(char, quote=False)
        if size + len(piece) > width:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    chunks.append("".join(current))
    return chunks


def _balance_pre(parts: list[str], footer: str | None) -> list[str]:
    """Close a <pre> left open at the end of a part and reopen it at the next part's start."""
    balanced: list[str] = []
    inside = False
    for index, part in enumerate(parts):
        body, tail = part, ""
        if footer is not None and index == len(parts) - 1:
            # The footer is plain text after the cut: it goes after any closing </pre>.
            body, tail = part[: -len(footer) - 1], part[-len(footer) - 1 :]
        opened = _PRE_OPEN if inside else ""
        last_open, last_close = body.rfind(_PRE_OPEN), body.rfind(_PRE_CLOSE)
        if last_open != -1 or last_close != -1:
            inside = last_open > last_close
        closed = _PRE_CLOSE if inside else ""
        balanced.append(opened + body + closed + tail)
    return balanced


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
