"""Slack adapter: ``/kanban`` and ``@bot kanban …`` through slack-bolt, over HTTP or Socket Mode."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
from aiohttp import web
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from gateway import (
    AdapterError,
    AdapterFactory,
    AdapterRateLimited,
    AdapterRejected,
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

__all__ = ["SlackAdapter", "SlackConfig", "create", "render_parts"]

logger = logging.getLogger(__name__)

PLATFORM: Final = "slack"
MAX_MESSAGE_CHARS: Final = 4000
MAX_PARTS: Final = 5
DEFAULT_API_BASE_URL: Final = "https://slack.com/api/"
FENCE: Final = "```"
#: Web API errors that retrying cannot fix: the channel is gone or the bot is not in it.
REJECTED_ERRORS: Final = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
#: A command reply waits for at most this long on a 429 before giving up (the notifier, which
#: calls send() directly, has its own backoff and gets the AdapterRateLimited instead).
MAX_REPLY_RETRY_AFTER: Final = 30.0
FAILURE_REPLY: Final = "Sorry, that command failed; the details are in the gateway log."

Mode = Literal["http", "socket"]

_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>")
_AFTER_MENTION = re.compile(r"[\s:,]*(?P<word>[^\s:,]+)(?P<rest>(?:\s.*)?)$", re.DOTALL)
# Slack escapes these three in every text it sends us; the command parser wants them raw.
_UNESCAPES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


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


# --- rendering ---------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Escape Slack's three control characters and break any triple backtick.

    Backticks cannot be escaped in mrkdwn; a zero-width space keeps user text from opening or
    closing a code block, so the only fences in a rendered message are the ones we put there.
    """
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"``(?=`)", "``\u200b", text)


def render(document: Document) -> str:
    """The whole document as one mrkdwn string (before splitting)."""
    lines: list[str] = []
    for block in document.blocks:
        if isinstance(block, Heading):
            title = " ".join(block.text.split())
            if title:
                lines.append(f"*{escape(title)}*")
        elif isinstance(block, Preformatted):
            lines.extend((FENCE, escape(block.text.rstrip("\n")), FENCE))
        elif isinstance(block, Paragraph):
            lines.append(escape(block.text))
    return "\n".join(lines)


def render_parts(
    document: Document, limit: int = MAX_MESSAGE_CHARS, max_parts: int = MAX_PARTS
) -> list[str]:
    """Render and split: at most ``max_parts`` parts of at most ``limit`` chars, fences balanced."""
    text = render(document)
    footer = escape(document.overflow_footer)
    # Room for a reopening fence at the start and a closing one at the end of every part.
    room = limit - 2 * (len(FENCE) + 1)
    every = split_text(text, room, max_parts=sys.maxsize, footer=footer)
    if len(every) <= max_parts:
        return _balance_fences(every)
    kept = split_text(text, room, max_parts=max_parts, footer=footer)
    # split_text put the footer at the end of the last part; it may be inside a code block, so
    # take it off, balance, and put it back after the closing fence.
    kept[-1] = kept[-1][: -(len(footer) + 1)]
    parts = _balance_fences(kept)
    if parts:
        parts[-1] = f"{parts[-1]}\n{footer}"
    else:
        parts = [footer]
    return parts


def _balance_fences(parts: list[str]) -> list[str]:
    """Close a code block left open at the end of a part and reopen it in the next."""
    balanced: list[str] = []
    open_block = False
    for part in parts:
        lines = part.split("\n")
        if open_block:
            if lines[0] == FENCE:
                # The block closes right at the start: drop the fence we closed it with already.
                lines = lines[1:]
            else:
                lines.insert(0, FENCE)
        open_block = False
        for line in lines:
            if line == FENCE:
                open_block = not open_block
        if open_block:
            if lines and lines[-1] == FENCE:
                # A block opened on the last line: move the opener to the next part instead.
                lines.pop()
            else:
                lines.append(FENCE)
        body = "\n".join(lines)
        if body.strip():
            balanced.append(body)
    return balanced


# --- parsing -----------------------------------------------------------------------------------


def unescape(text: str) -> str:
    """Undo Slack's escaping of ``&``, ``<`` and ``>`` in text it sends us."""
    for entity, char in _UNESCAPES:
        text = text.replace(entity, char)
    return text


def mention_command(text: str, bot_user_id: str | None, word: str) -> str | None:
    """The text after ``<@BOT> kanban`` in a mention, or None if the mention is not a command."""
    for mention in _MENTION.finditer(text):
        if bot_user_id is not None and mention["user"] != bot_user_id:
            continue
        command = _AFTER_MENTION.match(text, mention.end())
        if command is not None and command["word"].lower() == word.lower():
            return unescape(command["rest"].strip())
    return None


# --- the adapter -------------------------------------------------------------------------------


class SlackAdapter:
    """Slack through a real slack-bolt ``AsyncApp``; one per workspace (single-team install)."""

    name = PLATFORM
    capabilities = Capabilities(max_message_chars=MAX_MESSAGE_CHARS, max_parts=MAX_PARTS)

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
        app.command(cfg.command)(self._on_command)
        app.event("app_mention")(self._on_mention)
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
            raise AdapterError(f"slack auth.test failed: {_describe(exc)}") from exc
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
            raise AdapterError(f"slack apps.connections.open failed: {_describe(exc)}") from exc
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
        channel = str(body.get("channel_id", ""))
        user_id = str(body.get("user_id", ""))
        if not channel or not user_id:
            logger.warning("slack: slash command without channel or user ignored")
            return
        response_url = body.get("response_url")
        message = IncomingMessage(
            chat=ChatRef(PLATFORM, channel),
            user=ChatUser(PLATFORM, user_id, _str_or_none(body.get("user_name"))),
            text=unescape(str(body.get("text", ""))).strip(),
            delivery_id=_slash_delivery_id(body),
        )
        self._spawn(message, response_url if isinstance(response_url, str) else None)

    async def _on_mention(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        # Bolt has acked the event already (events are auto-acknowledged before listeners run).
        bot_user_id = self._bot_user_id
        text = mention_command(str(event.get("text", "")), bot_user_id, self.config.command_word)
        channel, user_id, ts = event.get("channel"), event.get("user"), event.get("ts")
        if text is None or not isinstance(channel, str) or not isinstance(user_id, str):
            return
        thread = event.get("thread_ts") or ts
        event_id = body.get("event_id")
        message = IncomingMessage(
            chat=ChatRef(PLATFORM, channel, thread if isinstance(thread, str) else None),
            user=ChatUser(PLATFORM, user_id),
            text=text,
            # A Slack retry carries the same event_id, so the router drops it as a redelivery.
            delivery_id=str(event_id) if event_id else f"{channel}:{ts}",
        )
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
            await self._reply(message.chat, reply, response_url)
        except AdapterError as exc:
            logger.warning("slack: reply to delivery %s failed: %s", message.delivery_id, exc)

    async def _reply(self, chat: ChatRef, document: Document, response_url: str | None) -> None:
        parts = render_parts(document)
        index = 0
        if response_url is not None:
            # response_url works even when the bot is not in the channel, and takes 5 posts,
            # exactly MAX_PARTS; fall back to chat.postMessage for whatever it refuses.
            while index < len(parts) and await self._respond(response_url, parts[index]):
                index += 1
        for part in parts[index:]:
            try:
                await self._post(chat, part)
            except AdapterRateLimited as exc:
                if exc.retry_after > MAX_REPLY_RETRY_AFTER:
                    raise
                # Slack told us how long to wait; the reply has no outbox to retry it later.
                await asyncio.sleep(exc.retry_after)
                await self._post(chat, part)

    async def _respond(self, response_url: str, text: str) -> bool:
        try:
            response = await AsyncWebhookClient(response_url).send(
                text=text, response_type="in_channel"
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
        """Post ``document`` to a channel (and thread) with chat.postMessage, part by part."""
        for part in render_parts(document):
            await self._post(chat, part)

    async def _post(self, chat: ChatRef, text: str) -> None:
        app = self._app
        if app is None:
            raise AdapterError("slack adapter is not started")
        try:
            await app.client.chat_postMessage(
                channel=chat.chat_id,
                text=text,
                thread_ts=chat.thread_id,
                mrkdwn=True,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            raise _map_api_error(exc) from exc
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as exc:
            raise AdapterError(f"slack chat.postMessage failed: {_describe(exc)}") from exc


def _map_api_error(exc: SlackApiError) -> AdapterError:
    response = exc.response
    status = getattr(response, "status_code", None)
    data = getattr(response, "data", None)
    error = data.get("error") if isinstance(data, dict) else None
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        retry_after = next(
            (value for key, value in headers.items() if str(key).lower() == "retry-after"), None
        )
        return AdapterRateLimited(_seconds(retry_after), "slack chat.postMessage rate limited")
    if error in REJECTED_ERRORS:
        return AdapterRejected(f"slack refused chat.postMessage: {error}")
    return AdapterError(f"slack chat.postMessage failed: {error or f'HTTP {status}'}")


def _seconds(value: object) -> float:
    try:
        seconds = float(str(value))
    except ValueError:
        return 1.0
    return seconds if seconds >= 0 else 1.0


def _describe(exc: BaseException) -> str:
    # SlackApiError's str() embeds the whole response; the error code is what a human needs.
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        if isinstance(data, dict) and data.get("error"):
            return str(data["error"])
        return f"HTTP {getattr(exc.response, 'status_code', '?')}"
    return str(exc) or type(exc).__name__


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _slash_delivery_id(body: Mapping[str, Any]) -> str:
    trigger_id = body.get("trigger_id")
    if isinstance(trigger_id, str) and trigger_id:
        return trigger_id
    # No trigger_id (never seen in practice): the response_url is unique per invocation too.
    seed = "|".join(str(body.get(key, "")) for key in ("team_id", "channel_id", "response_url"))
    return "slash-" + hashlib.sha256(seed.encode()).hexdigest()[:32]


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
