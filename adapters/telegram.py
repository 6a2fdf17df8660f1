"""Telegram adapter: python-telegram-bot long polling, commands, text, buttons and files."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, BotCommand, CallbackQuery, Update
from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from adapters.telegram_config import DEFAULT_API_BASE_URL, DEFAULT_POLL_TIMEOUT, TelegramSettings
from adapters.telegram_errors import TokenRedactor, map_error, safe_cause
from adapters.telegram_inbound import PLATFORM, read_button, read_message
from adapters.telegram_outbound import edit_text, send_one, send_with_one_retry
from adapters.telegram_render import MAX_MESSAGE_CHARS, Outgoing, outgoing
from gateway import (
    AdapterError,
    Capabilities,
    ChatRef,
    Document,
    IncomingMessage,
    MessageGone,
    MessageSink,
)
from gateway.slash import SLASH_COMMANDS, SlashCommand

__all__ = ["MAX_ATTACHMENT_BYTES", "TelegramAdapter", "create"]

#: Bots may upload 50 MB; the gateway sends chat-sized files only.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024

log = logging.getLogger(__name__)


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> TelegramAdapter:
    """Build the adapter from its config.yaml section; the token is read from ``environ``."""
    settings = TelegramSettings.from_section(config, "telegram")
    return TelegramAdapter(
        token=environ.get(settings.token_env, ""),
        token_env=settings.token_env,
        api_base_url=settings.api_base_url,
        poll_timeout=settings.poll_timeout,
    )


class TelegramAdapter:
    """Slash commands, plain text and button presses in private chats, groups and forum topics."""

    name = PLATFORM
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS,
        buttons=True,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
        edits=True,
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
        self._menu: tuple[SlashCommand, ...] = SLASH_COMMANDS
        self._redactor: TokenRedactor | None = None
        # Updates run concurrently so one slow command does not hold up every chat; this lock
        # per conversation keeps one chat's messages in the order they were sent.
        self._conversation_locks: weakref.WeakValueDictionary[
            tuple[str, str | None], asyncio.Lock
        ] = weakref.WeakValueDictionary()

    def __repr__(self) -> str:
        return (
            f"TelegramAdapter(api_base_url={self._api_base_url!r}, token_env={self._token_env!r})"
        )

    async def start(
        self, sink: MessageSink, *, menu: Sequence[SlashCommand] = SLASH_COMMANDS
    ) -> None:
        """Check the token (getMe), register the command menu and start long polling."""
        self._menu = tuple(menu)
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
                error_callback=self._polling_failed,
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

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        """Send a notification: every part and file, in order; the first failure is raised."""
        app = self._app
        if app is None:
            raise AdapterError("telegram: not started")
        last: int | None = None
        for message in self._outgoing(document):
            try:
                last = await send_one(app.bot, chat, message, reply_to=None)
            except TelegramError as exc:
                raise self._map_error(exc) from safe_cause(exc)
        return None if last is None else str(last)

    async def edit(self, chat: ChatRef, message_id: str, document: Document) -> None:
        """Replace a sent message's text with the document's first part (editMessageText)."""
        app = self._app
        if app is None:
            raise AdapterError("telegram: not started")
        message = self._outgoing(document)[0]
        try:
            await edit_text(app.bot, chat, message_id, message)
        except BadRequest as exc:
            text = str(exc).lower()
            if "message is not modified" in text:
                return  # the same snapshot again: nothing to change, not a failure
            if "message to edit not found" in text or "message can't be edited" in text:
                raise MessageGone(f"telegram: {exc}") from None
            raise self._map_error(exc) from safe_cause(exc)
        except TelegramError as exc:
            raise self._map_error(exc) from safe_cause(exc)

    async def _initialize(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        try:
            await app.initialize()
        except InvalidToken:
            # PTB's message quotes the token, so neither its text nor the exception is kept.
            raise AdapterError(
                f"telegram: the Bot API rejected the token in {self._token_env} (getMe failed)"
            ) from None
        except NetworkError as exc:
            # Unreachable (DNS, refused, timed out): say where, in one line; the gateway exits.
            raise self._map_error(
                exc, f"cannot reach the Bot API at {self._api_base_url} (getMe failed)"
            ) from exc
        except TelegramError as exc:
            raise self._map_error(exc, "getMe failed") from exc

    def _polling_failed(self, exc: TelegramError) -> None:
        # PTB retries getUpdates with a growing pause (up to 30 s) by itself; without this
        # callback it logs a full traceback on every failed poll of an outage.
        log.warning("%s; retrying", self._map_error(exc, f"polling {self._api_base_url} failed"))

    async def _register_menu(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # The menu is a convenience: commands work without it, so a failure is only logged.
        # Telegram allows only [a-z0-9_] in menu names, hence the underscore forms.
        menu = [BotCommand(command.menu_name, command.description) for command in self._menu]
        try:
            await app.bot.set_my_commands(menu)
        except TelegramError as exc:
            log.warning("telegram: setMyCommands failed: %s", self._map_error(exc))

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        received = read_message(update, context.bot)
        if received is not None:
            await self._dispatch(context.bot, received.incoming, received.reply_to)

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        # Answered first, whatever the gateway makes of the press: until then the user's client
        # shows a spinner, and Telegram refuses answers after a few seconds.
        await self._answer(query)
        received = read_button(query)
        if received is not None:
            await self._dispatch(context.bot, received.incoming, received.reply_to)

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
                await send_with_one_retry(bot, chat, message, reply_to if index == 0 else None)
            except TelegramError as exc:
                log.warning(
                    "telegram: reply part %d/%d to chat %s not sent: %s",
                    index + 1,
                    len(messages),
                    chat.chat_id,
                    self._map_error(exc),
                )
                return

    def _map_error(self, exc: TelegramError, context: str = "") -> AdapterError:
        return map_error(exc, token=self._token, token_env=self._token_env, context=context)

    def _install_redactor(self) -> None:
        self._redactor = TokenRedactor(self._token)
        self._redactor.install()

    def _remove_redactor(self) -> None:
        if self._redactor is None:
            return
        self._redactor.remove()
        self._redactor = None


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
