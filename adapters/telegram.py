"""Telegram adapter: python-telegram-bot long polling, commands, text, buttons and files."""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram_render import MAX_MESSAGE_CHARS, Outgoing, outgoing, render_parts, upload
from gateway import (
    AdapterError,
    AdapterRateLimited,
    AdapterRejected,
    Capabilities,
    ChatRef,
    ChatUser,
    Document,
    IncomingMessage,
    MessageSink,
)
from gateway.messages import MessageKind
from gateway.slash import SLASH_COMMANDS

__all__ = ["MAX_ATTACHMENT_BYTES", "TelegramAdapter", "create", "render_parts"]

PLATFORM = "telegram"
DEFAULT_API_BASE_URL = "https://api.telegram.org"
DEFAULT_POLL_TIMEOUT = 10
#: Bots may upload 50 MB; the gateway sends chat-sized files only.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: A reply waits out one flood-control pause no longer than this; longer ones are dropped.
MAX_REPLY_RETRY_AFTER = 30.0

log = logging.getLogger(__name__)

# The General topic of a forum is thread 1, and sending with message_thread_id=1 fails.
_GENERAL_TOPIC = 1
# BadRequest descriptions that mean the destination is gone for good, not a transient failure.
_GONE = ("chat not found", "thread not found", "not enough rights", "have no rights")
# Loggers that print the bot URL (and so the token): httpx logs every request at INFO.
_TOKEN_LOGGERS = ("httpx", "telegram.Bot", "telegram.ext.ExtBot")
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# The command word runs to the first whitespace: Telegram's bot_command entity stops at a
# hyphen (``/new-session`` is marked as ``/new``), but the user typed the whole word.
_COMMAND_WORD = re.compile(r"/(\S+)")


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
    """Slash commands, plain text and button presses in private chats, groups and forum topics."""

    name = PLATFORM
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS,
        buttons=True,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
    )

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
        # per conversation keeps one chat's messages in the order they were sent.
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
        # Commands are told apart from text here, not by CommandHandler, which knows neither
        # hyphenated words nor commands outside a fixed list (a repository slug: ``/api diff``).
        app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.TEXT, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_button))
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
                allowed_updates=[Update.MESSAGE, Update.CALLBACK_QUERY],
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
        """Send a notification: every part and file, in order; the first failure is raised."""
        app = self._app
        if app is None:
            raise AdapterError("telegram: not started")
        for message in self._outgoing(document):
            try:
                await self._send_one(app.bot, chat, message, reply_to=None)
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
        # Telegram allows only [a-z0-9_] in menu names, hence the underscore forms.
        menu = [BotCommand(command.menu_name, command.description) for command in SLASH_COMMANDS]
        try:
            await app.bot.set_my_commands(menu)
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", self._map_error(exc))

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is None or message.text is None:
            return
        user = message.from_user
        # Anonymous channel posts and group admins (GroupAnonymousBot), other bots, and a linked
        # channel's posts forwarded into its discussion group: no person to check access for.
        if user is None or user.is_bot or message.is_automatic_forward:
            return
        command = _split_command(message)
        if command is None:
            kind, word, text = MessageKind.TEXT, "", message.text
        else:
            word, addressee, text = command
            # In a group, ``/diff@OtherBot`` is for another bot (Telegram sends it to all).
            if addressee and addressee.lower() != (context.bot.username or "").lower():
                return
            kind = MessageKind.COMMAND
        incoming = IncomingMessage(
            chat=_chat_ref(message),
            user=_chat_user(user),
            text=text,
            delivery_id=str(update.update_id),
            command=word,
            kind=kind,
        )
        await self._dispatch(context.bot, incoming, message.message_id)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        # Answered first, whatever the gateway makes of the press: until then the user's client
        # shows a spinner, and Telegram refuses answers after a few seconds.
        await self._answer(query)
        message = query.message
        # A button under an inline-mode message, or under one too old to read, has no chat
        # (or no topic) we could answer in; payloads other than callback data are not ours.
        if not isinstance(message, Message) or not isinstance(query.data, str):
            return
        incoming = IncomingMessage(
            chat=_chat_ref(message),
            user=_chat_user(query.from_user),
            text=query.data,
            delivery_id=query.id,
            command="",
            kind=MessageKind.ACTION,
        )
        await self._dispatch(context.bot, incoming, message.message_id)

    async def _answer(self, query: CallbackQuery) -> None:
        try:
            await query.answer()
        except TelegramError as exc:
            # Too late (a press fetched after a restart) or refused: the press still counts.
            log.warning("%s", self._map_error(exc, "answerCallbackQuery failed"))

    async def _dispatch(self, bot: Bot, incoming: IncomingMessage, reply_to: int) -> None:
        sink = self._sink
        if sink is None:
            return
        key = (incoming.chat.chat_id, incoming.chat.thread_id)
        lock = self._conversation_locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                document = await sink(incoming)
            except Exception:
                log.exception("telegram: the gateway failed on delivery %s", incoming.delivery_id)
                document = Document.text("Sorry: the gateway failed on this command (see its log).")
            if document is not None:
                await self._reply(bot, incoming.chat, document, reply_to)

    def _outgoing(self, document: Document) -> list[Outgoing]:
        return outgoing(
            document,
            max_parts=self.capabilities.max_parts,
            max_file_bytes=self.capabilities.max_attachment_bytes,
        )

    async def _reply(
        self,
        bot: Bot,
        chat: ChatRef,
        document: Document,
        reply_to: int,
    ) -> None:
        messages = self._outgoing(document)
        for index, message in enumerate(messages):
            try:
                await self._send_with_one_retry(
                    bot, chat, message, reply_to if index == 0 else None
                )
            except TelegramError as exc:
                log.warning(
                    "telegram: reply part %d/%d to chat %s not sent: %s",
                    index + 1,
                    len(messages),
                    chat.chat_id,
                    self._map_error(exc),
                )
                return

    async def _send_with_one_retry(
        self,
        bot: Bot,
        chat: ChatRef,
        message: Outgoing,
        reply_to: int | None,
    ) -> None:
        try:
            await self._send_one(bot, chat, message, reply_to)
        except RetryAfter as exc:
            delay = _retry_after_seconds(exc)
            if delay > MAX_REPLY_RETRY_AFTER:
                raise
            # Flood control: Telegram names the pause; sending before it ends fails again.
            await asyncio.sleep(delay)
            await self._send_one(bot, chat, message, reply_to)

    async def _send_one(
        self,
        bot: Bot,
        chat: ChatRef,
        message: Outgoing,
        reply_to: int | None,
    ) -> None:
        if chat.platform != PLATFORM:
            raise AdapterRejected(f"telegram: cannot send to a {chat.platform} chat")
        reply = (
            None
            if reply_to is None
            else ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        )
        if message.file is not None:
            await bot.send_document(
                chat_id=_chat_id(chat),
                document=upload(message.file),
                message_thread_id=_thread_id(chat),
                reply_parameters=reply,
            )
            return
        await bot.send_message(
            chat_id=_chat_id(chat),
            text=message.text,
            parse_mode=ParseMode.HTML,
            message_thread_id=_thread_id(chat),
            link_preview_options=_NO_PREVIEW,
            reply_parameters=reply,
            reply_markup=message.keyboard,
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


def _chat_user(user: User) -> ChatUser:
    return ChatUser(PLATFORM, str(user.id), user.username or user.full_name)


def _split_command(message: Message) -> tuple[str, str, str] | None:
    """``(word, addressee, rest)`` when ``message`` starts with a bot command, else None.

    Telegram marks a command with a bot_command entity at offset 0 (``/etc/hosts`` gets none);
    the word is taken from the text up to whitespace, the rest keeps the user's quoting.
    """
    text = message.text or ""
    starts = any(
        entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0
        for entity in message.entities
    )
    match = _COMMAND_WORD.match(text) if starts else None
    if match is None:
        return None
    word, _, addressee = match.group(1).partition("@")
    return word, addressee, text[match.end() :].strip()
