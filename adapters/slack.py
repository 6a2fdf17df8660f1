"""Slack adapter: slash commands, mentions, messages and buttons via slack-bolt (HTTP/socket)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackClientError

from adapters.connection_watch import ConnectionWatch
from adapters.slack_config import SlackConfig
from adapters.slack_errors import describe_error
from adapters.slack_inbound import (
    PLATFORM,
    action_message,
    mention_message,
    slash_command_names,
    slash_message,
    text_message,
)
from adapters.slack_outbound import MAX_ATTACHMENT_BYTES, ReplyRoute, SlackSender
from adapters.slack_render import ACTION_PREFIX, MAX_MESSAGE_CHARS, MAX_PARTS
from gateway import (
    AdapterError,
    AdapterFactory,
    Capabilities,
    ChatRef,
    Document,
    IncomingMessage,
    MessageSink,
)
from gateway.slash import SLASH_COMMANDS, SlashCommand

__all__ = ["SlackAdapter", "SlackConfig", "create"]

logger = logging.getLogger(__name__)
#: Socket Mode's own log lines (connections, reconnects), apart from Bolt's request logging.
SOCKET_LOGGER: Final = "adapters.slack.socket"

FAILURE_REPLY: Final = "Sorry, that command failed; the details are in the gateway log."


class SlackAdapter:
    """Slack through a real slack-bolt ``AsyncApp``; one per workspace (single-team install)."""

    name = PLATFORM
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS,
        max_parts=MAX_PARTS,
        buttons=True,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
        edits=True,
    )

    def __init__(
        self,
        config: SlackConfig,
        *,
        bot_token: str | None,
        signing_secret: str | None,
        app_token: str | None,
    ) -> None:
        self.config = config
        self._bot_token = bot_token
        self._signing_secret = signing_secret
        self._app_token = app_token
        self._app: AsyncApp | None = None
        self._sink: MessageSink | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._watch: ConnectionWatch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bot_user_id: str | None = None
        self._sender = SlackSender(self._running_app)

    def __repr__(self) -> str:
        return f"SlackAdapter(mode={self.config.mode!r}, running={self._app is not None})"

    @property
    def bound_port(self) -> int | None:
        """The HTTP listener's bound port (see ``listen_port: 0``); None when not listening."""
        return self._site.port if self._site is not None else None

    @property
    def bot_user_id(self) -> str | None:
        """The bot's own user id, from ``auth.test`` at start."""
        return self._bot_user_id

    # --- lifecycle ---

    def _missing_secrets(self) -> list[str]:
        cfg = self.config
        needed = [(cfg.bot_token_env, self._bot_token, "bot_token_env")]
        if cfg.mode == "http":
            needed.append((cfg.signing_secret_env, self._signing_secret, "signing_secret_env"))
        else:
            needed.append((cfg.app_token_env, self._app_token, "app_token_env"))
        return [
            f"environment variable {env} (slack.{key}) is not set"
            for env, value, key in needed
            if not value
        ]

    async def start(
        self, sink: MessageSink, *, menu: Sequence[SlashCommand] = SLASH_COMMANDS
    ) -> None:
        """Check the token, then listen (HTTP) or connect (Socket Mode); return once receiving."""
        if self._app is not None:
            raise AdapterError("slack adapter is already started")
        missing = self._missing_secrets()
        if missing:
            raise AdapterError("slack adapter cannot start: " + "; ".join(missing))
        assert self._bot_token is not None  # checked just above; narrows for the type checker
        cfg = self.config
        app = AsyncApp(
            name="kanban-gateway",
            token=self._bot_token,
            # Always explicit: AsyncApp would otherwise read SLACK_SIGNING_SECRET itself.
            signing_secret=self._signing_secret or "",
            request_verification_enabled=cfg.mode == "http",
        )
        # Set after construction rather than passing client=: passing both a client and a token
        # (or having SLACK_BOT_TOKEN in the environment) makes Bolt log a warning; per-request
        # clients copy base_url from this one.
        app.client.base_url = cfg.api_url
        for command in slash_command_names(cfg.command, menu):
            app.command(command)(self._on_command)
        app.event("app_mention")(self._on_mention)
        # Every message event, subtypes included: text_message() drops what is not a user's new
        # message, and one listener for them all keeps Bolt from warning about unhandled edits.
        app.event("message")(self._on_message)
        app.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._on_action)
        self._bot_user_id = await self._check_token(app)
        self._sink = sink
        self._app = app
        try:
            if cfg.mode == "http":
                await self._listen(app)
            else:
                await self._connect(app)
        except BaseException:
            await self.stop()
            raise

    async def _check_token(self, app: AsyncApp) -> str | None:
        # Fail fast on a bad token here, not on the first command (Bolt calls auth.test lazily).
        try:
            auth = await app.client.auth_test()
        except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
            raise AdapterError(
                f"slack: cannot reach the Web API at {self.config.api_base_url} "
                f"(auth.test failed): {describe_error(exc)}"
            ) from exc
        except (SlackClientError, aiohttp.ClientError) as exc:
            raise AdapterError(f"slack auth.test failed: {describe_error(exc)}") from exc
        user_id = auth.get("user_id")
        return user_id if isinstance(user_id, str) else None

    async def _listen(self, app: AsyncApp) -> None:
        cfg = self.config
        # Slack waits 3 s for our answer anyway, so a long shutdown grace is pointless.
        runner = web.AppRunner(app.web_app(path=cfg.path, port=cfg.listen_port), shutdown_timeout=3)
        self._runner = runner
        await runner.setup()
        site = web.TCPSite(runner, cfg.listen_host, cfg.listen_port)
        try:
            await site.start()
        except OSError as exc:
            raise AdapterError(
                f"slack cannot listen on {cfg.listen_host}:{cfg.listen_port}: {exc}"
            ) from exc
        self._site = site
        logger.info("slack: listening on http://%s:%d%s", cfg.listen_host, site.port, cfg.path)

    async def _connect(self, app: AsyncApp) -> None:
        assert self._app_token is not None  # checked by _missing_secrets
        # Validate the app token first: the SDK's connect() retries a failing
        # apps.connections.open forever, so a bad token would otherwise hang start().
        try:
            await app.client.apps_connections_open(app_token=self._app_token)
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(
                f"slack apps.connections.open failed: {describe_error(exc)}"
            ) from exc
        handler = AsyncSocketModeHandler(
            app, app_token=self._app_token, logger=logging.getLogger(SOCKET_LOGGER)
        )
        self._socket = handler
        # slack_sdk retries a failed websocket connection forever, logging a traceback each time;
        # at start one failure is enough to say, in one line, that Slack cannot be reached.
        self._watch = watch = ConnectionWatch(
            logger=SOCKET_LOGGER,
            prefix="Failed to connect",
            label="slack",
            target=lambda: f"the Socket Mode websocket at {_without_query(handler.client.wss_uri)}",
        )
        watch.install()
        connect = asyncio.create_task(handler.connect_async())  # type: ignore[no-untyped-call]
        failed = asyncio.create_task(watch.failed.wait())
        try:
            done, _ = await asyncio.wait(
                {connect, failed},
                timeout=self.config.connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            failed.cancel()
            if not connect.done():
                connect.cancel()
            await asyncio.gather(connect, failed, return_exceptions=True)
        if connect in done and connect.exception() is None:
            watch.connected = True
        elif watch.failed.is_set():
            raise AdapterError(watch.message())
        elif connect in done:
            error = connect.exception()
            raise AdapterError(f"slack socket mode failed to connect: {error}") from error
        else:
            raise AdapterError(
                f"slack socket mode did not connect within {self.config.connect_timeout:g}s"
            )
        logger.info("slack: connected in socket mode")

    async def stop(self) -> None:
        """Stop receiving, give in-flight commands a short grace, then cancel them. Idempotent."""
        runner, self._runner, self._site = self._runner, None, None
        socket, self._socket = self._socket, None
        app, self._app = self._app, None
        if runner is not None:
            await runner.cleanup()
        if socket is not None:
            await socket.close_async()  # type: ignore[no-untyped-call]
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.remove()
        tasks = set(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.drain_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if app is not None:
            logger.info("slack: stopped")

    # --- incoming ---

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        # Ack first and unconditionally: Slack shows the user a timeout after 3 s.
        await ack()
        message = slash_message(body, self.config.command)
        if message is None:
            logger.warning("slack: slash command without channel or user ignored")
            return
        response_url = body.get("response_url")
        self._spawn(message, response_url if isinstance(response_url, str) else None)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt has acked the event already (events are auto-acknowledged before listeners run).
        message = mention_message(event, body, self._bot_user_id, self.config.command_word)
        if message is not None:
            self._spawn(message, None)

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt's ignoring_self_events drops most of our own posts; text_message() drops the rest.
        message = text_message(event, body, self._bot_user_id)
        if message is not None:
            self._spawn(message, None)

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        # Ack at once: without it Slack shows the presser an error after 3 s.
        await ack()
        message = action_message(body)
        if message is None:
            logger.warning("slack: button press without channel, user or value ignored")
            return
        # The answer is a new message in the same channel/thread, not an edit of the card.
        self._spawn(message, None)

    def _spawn(self, message: IncomingMessage, response_url: str | None) -> None:
        # Our own task, not Bolt's listener future: stop() can wait for it and cancel it.
        task = asyncio.get_running_loop().create_task(self._process(message, response_url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, message: IncomingMessage, response_url: str | None) -> None:
        sink = self._sink
        if sink is None:
            return
        try:
            reply = await sink(message)
        except Exception:
            logger.exception("slack: command handler failed (delivery %s)", message.delivery_id)
            reply = Document.text(FAILURE_REPLY)
        if reply is None:
            return
        try:
            await self._sender.deliver(message.chat, reply, ReplyRoute(response_url), patient=True)
        except AdapterError as exc:
            logger.warning("slack: reply to delivery %s failed: %s", message.delivery_id, exc)

    # --- outgoing ---

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        """Post ``document`` to a channel (and thread): parts, buttons on the last, then files."""
        return await self._sender.deliver(chat, document, ReplyRoute(None), patient=False)

    async def edit(self, chat: ChatRef, message_id: str, document: Document) -> None:
        """Replace a posted message (chat.update); its ``message_id`` is the message's ts."""
        await self._sender.update(chat, message_id, document)

    def _running_app(self) -> AsyncApp:
        app = self._app
        if app is None:
            raise AdapterError("slack adapter is not started")
        return app


def _without_query(url: str | None) -> str:
    # Slack's websocket URL carries a one-time ticket in its query: never log it.
    return (url or "?").split("?", 1)[0]


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> SlackAdapter:
    """The ``kanban_gateway.adapters`` entry point: validate config, read secrets from env."""
    cfg = SlackConfig.from_section(config, "slack")
    return SlackAdapter(
        cfg,
        bot_token=environ.get(cfg.bot_token_env),
        signing_secret=environ.get(cfg.signing_secret_env) if cfg.mode == "http" else None,
        app_token=environ.get(cfg.app_token_env) if cfg.mode == "socket" else None,
    )


#: Checked by the type checker: ``create`` is an AdapterFactory, so SlackAdapter is a ChatAdapter.
_FACTORY: AdapterFactory = create
