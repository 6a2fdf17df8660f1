"""Slack adapter: slash commands, mentions, messages and buttons via slack-bolt (HTTP/socket)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Literal

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack_render import (
    ACTION_PREFIX,
    MAX_MESSAGE_CHARS,
    MAX_PARTS,
    PLATFORM,
    action_message,
    buttons_fallback,
    describe_error,
    map_api_error,
    mention_message,
    render_parts,
    reply_blocks,
    slash_command_names,
    slash_message,
    text_message,
    too_large_line,
)
from gateway import (
    AdapterError,
    AdapterFactory,
    AdapterRateLimited,
    Capabilities,
    ChatRef,
    Document,
    IncomingMessage,
    MessageSink,
)
from gateway.messages import Attachment

__all__ = ["SlackAdapter", "SlackConfig", "create", "render_parts"]

logger = logging.getLogger(__name__)

DEFAULT_API_BASE_URL: Final = "https://slack.com/api/"
#: Slack takes files up to 1 GB; the gateway's own ceiling for chat attachments is 5 MB.
MAX_ATTACHMENT_BYTES: Final = 5 * 1024 * 1024
#: A command reply waits for at most this long on a 429 before giving up (the notifier, which
#: calls send() directly, has its own backoff and gets the AdapterRateLimited instead).
MAX_REPLY_RETRY_AFTER: Final = 30.0
#: Slack accepts this many posts to one slash command's response_url.
RESPONSE_URL_USES: Final = 5
FAILURE_REPLY: Final = "Sorry, that command failed; the details are in the gateway log."

Mode = Literal["http", "socket"]
Blocks = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class SlackConfig:
    """The adapter's section of config.yaml, validated; secrets are env var names, not values."""

    mode: Mode = "socket"
    # Names of environment variables, not secrets.
    bot_token_env: str = "SLACK_BOT_TOKEN"  # noqa: S105
    signing_secret_env: str = "SLACK_SIGNING_SECRET"  # noqa: S105
    app_token_env: str = "SLACK_APP_TOKEN"  # noqa: S105
    listen_host: str = "127.0.0.1"
    listen_port: int = 3000
    path: str = "/slack/events"
    api_base_url: str = DEFAULT_API_BASE_URL
    command: str = "/kanban"
    connect_timeout: float = 30.0
    drain_timeout: float = 5.0

    @property
    def command_word(self) -> str:
        """``kanban``: the word that must follow ``@bot`` in a mention."""
        return self.command.lstrip("/")

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> SlackConfig:
        """Validate a config section, naming every bad key at once."""
        problems = [f"slack.{key}: unknown key" for key in config if key not in _CHECKS]
        values: dict[str, Any] = {}
        for key, (check, requirement) in _CHECKS.items():
            if key not in config:
                continue
            value = check(config[key])
            if value is None:
                problems.append(f"slack.{key}: must be {requirement}, not {config[key]!r}")
            else:
                values[key] = value
        if problems:
            raise AdapterError("invalid slack configuration:\n  " + "\n  ".join(problems))
        # The SDK joins base_url and the method name, so the trailing slash is required.
        if not values.get("api_base_url", "/").endswith("/"):
            values["api_base_url"] += "/"
        if not values.get("command", "/").startswith("/"):
            values["command"] = "/" + values["command"]
        return cls(**values)


def _string(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _mode(value: object) -> str | None:
    return value if value in ("http", "socket") else None


def _port(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535:
        return value
    return None


def _positive(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


_CHECKS: Final[dict[str, tuple[Callable[[object], object], str]]] = {
    "mode": (_mode, "'http' or 'socket'"),
    "bot_token_env": (_string, "an environment variable name"),
    "signing_secret_env": (_string, "an environment variable name"),
    "app_token_env": (_string, "an environment variable name"),
    "listen_host": (_string, "a host name or address"),
    "listen_port": (_port, "an integer 0-65535"),
    "path": (_string, "a URL path"),
    "api_base_url": (_string, "a URL"),
    "command": (_string, "a slash command name"),
    "connect_timeout": (_positive, "a positive number of seconds"),
    "drain_timeout": (_positive, "a positive number of seconds"),
}


# --- the adapter -------------------------------------------------------------------------------


class SlackAdapter:
    """Slack through a real slack-bolt ``AsyncApp``; one per workspace (single-team install)."""

    name = PLATFORM
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS,
        max_parts=MAX_PARTS,
        buttons=True,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._bot_user_id: str | None = None

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

    async def start(self, sink: MessageSink) -> None:
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
        app.client.base_url = cfg.api_base_url
        for command in slash_command_names(cfg.command):
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
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
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
        handler = AsyncSocketModeHandler(app, app_token=self._app_token)
        self._socket = handler
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await handler.connect_async()  # type: ignore[no-untyped-call]
        except TimeoutError as exc:
            raise AdapterError(
                f"slack socket mode did not connect within {self.config.connect_timeout:g}s"
            ) from exc
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
            await self._deliver(message.chat, reply, _Route(response_url), patient=True)
        except AdapterError as exc:
            logger.warning("slack: reply to delivery %s failed: %s", message.delivery_id, exc)

    async def _respond(self, response_url: str, text: str, blocks: Blocks | None) -> bool:
        try:
            response = await AsyncWebhookClient(response_url).send(
                text=text, blocks=blocks, response_type="in_channel"
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            # Not the exception text: it would log the response_url, a bearer capability.
            logger.warning(
                "slack: response_url failed (%s); using chat.postMessage", type(exc).__name__
            )
            return False
        if response.status_code != 200:
            logger.warning(
                "slack: response_url answered %d; using chat.postMessage", response.status_code
            )
            return False
        return True

    # --- outgoing ---

    async def send(self, chat: ChatRef, document: Document) -> None:
        """Post ``document`` to a channel (and thread): parts, buttons on the last, then files."""
        await self._deliver(chat, document, _Route(None), patient=False)

    async def _deliver(
        self, chat: ChatRef, document: Document, route: _Route, *, patient: bool
    ) -> None:
        messages: list[tuple[str, Blocks | None]] = [(p, None) for p in render_parts(document)]
        if document.buttons:
            if messages:
                last = messages[-1][0]
                messages[-1] = (last, reply_blocks(last, document.buttons))
            else:
                fallback = buttons_fallback(document.buttons)
                messages.append((fallback, reply_blocks("", document.buttons)))
        for text, blocks in messages:
            await self._say(chat, text, blocks, route, patient=patient)
        limit = self.capabilities.max_attachment_bytes
        for attachment in document.attachments:
            if len(attachment.content) > limit:
                line = too_large_line(attachment, limit)
                await self._say(chat, line, None, route, patient=patient)
            else:
                await _patiently(patient, partial(self._upload, chat, attachment))

    async def _say(
        self, chat: ChatRef, text: str, blocks: Blocks | None, route: _Route, *, patient: bool
    ) -> None:
        if route.response_url is not None and route.uses < RESPONSE_URL_USES:
            # response_url works even when the bot is not in the channel, but only 5 times;
            # whatever it refuses goes through chat.postMessage.
            if await self._respond(route.response_url, text, blocks):
                route.uses += 1
                return
            route.response_url = None
        await _patiently(patient, partial(self._post, chat, text, blocks))

    def _client_app(self) -> AsyncApp:
        app = self._app
        if app is None:
            raise AdapterError("slack adapter is not started")
        return app

    async def _post(self, chat: ChatRef, text: str, blocks: Blocks | None) -> None:
        app = self._client_app()
        try:
            await app.client.chat_postMessage(
                channel=chat.chat_id,
                # With blocks, Slack shows them and uses text for notifications and search.
                text=text,
                blocks=blocks,
                thread_ts=chat.thread_id,
                mrkdwn=True,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise map_api_error(exc, "chat.postMessage") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack chat.postMessage failed: {describe_error(exc)}") from exc

    async def _upload(self, chat: ChatRef, attachment: Attachment) -> None:
        app = self._client_app()
        try:
            # files.getUploadURLExternal, a POST of the bytes, files.completeUploadExternal.
            await app.client.files_upload_v2(
                filename=attachment.filename,
                title=attachment.filename,
                content=attachment.content,
                channel=chat.chat_id,
                thread_ts=chat.thread_id,
            )
        except SlackApiError as exc:
            raise map_api_error(exc, "file upload") from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack file upload failed: {describe_error(exc)}") from exc


@dataclass
class _Route:
    """How one reply goes out: through the slash command's response_url while it lasts."""

    response_url: str | None
    uses: int = field(default=0)


async def _patiently(patient: bool, call: Callable[[], Awaitable[None]]) -> None:
    """Run ``call``; when ``patient`` (a reply, which has no outbox), wait out one short 429."""
    try:
        await call()
    except AdapterRateLimited as exc:
        if not patient or exc.retry_after > MAX_REPLY_RETRY_AFTER:
            raise
        await asyncio.sleep(exc.retry_after)
        await call()


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> SlackAdapter:
    """The ``kanban_gateway.adapters`` entry point: validate config, read secrets from env."""
    cfg = SlackConfig.from_mapping(config)
    return SlackAdapter(
        cfg,
        bot_token=environ.get(cfg.bot_token_env),
        signing_secret=environ.get(cfg.signing_secret_env) if cfg.mode == "http" else None,
        app_token=environ.get(cfg.app_token_env) if cfg.mode == "socket" else None,
    )


#: Checked by the type checker: ``create`` is an AdapterFactory, so SlackAdapter is a ChatAdapter.
_FACTORY: AdapterFactory = create
