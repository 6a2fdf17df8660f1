"""Discord adapter: every slash command as an app command, plain text and buttons, on discord.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord_render import Outgoing, outgoing, render
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

__all__ = ["DEFAULT_VERBS", "DiscordAdapter", "create"]

log = logging.getLogger(__name__)

DEFAULT_VERBS: Final[tuple[str, ...]] = (
    "list",
    "show",
    "create",
    "comment",
    "block",
    "unblock",
    "complete",
    "assign",
    "stats",
    "runs",
    "tail",
    "status",
    "dispatch",
    "archive",
    "context",
    "log",
)
MAX_MESSAGE_CHARS: Final = 2000
# Discord takes 8 MB (more on boosted servers); the gateway caps every platform at 5 MB.
MAX_ATTACHMENT_BYTES: Final = 5_000_000
_KANBAN: Final = "kanban"
# "/word rest": the word may be a command, an alias or a repository slug (the router decides);
# a "@BotName" suffix is dropped. Anything else starting with "/" (a path) is not for us.
_TEXT_COMMAND: Final = re.compile(r"/([\w.:-]+)(?:@\S*)?(?:\s+(.*))?", re.DOTALL)
# Messages people type; joins, pins, thread starters and other system messages are not.
_USER_MESSAGES: Final = frozenset({discord.MessageType.default, discord.MessageType.reply})
# Discord shows at most 25 autocomplete choices and 100-character descriptions.
_MAX_CHOICES: Final = 25
_MAX_DESCRIPTION: Final = 100
# discord.py sleeps through shorter 429s itself; 30 s is the smallest cap it accepts. Longer waits
# raise RateLimited, which we turn into AdapterRateLimited so the notifier backs off instead.
_MAX_RATELIMIT_WAIT: Final = 30.0
_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 10.0
_NO_MENTIONS: Final = discord.AllowedMentions.none()
_FAILED_REPLY: Final = Document.text("Sorry, that command failed; the gateway logged the error.")
_THREAD_TYPES: Final = frozenset(
    {
        discord.ChannelType.public_thread,
        discord.ChannelType.private_thread,
        discord.ChannelType.news_thread,
    }
)

Post = Callable[..., Awaitable[object]]


class DiscordAdapter:
    """One Discord bot: a discord.py Client and its app command tree, run in the gateway's loop."""

    name = "discord"
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS, buttons=True, max_attachment_bytes=MAX_ATTACHMENT_BYTES
    )

    def __init__(
        self,
        *,
        token: str | None,
        token_env: str,
        api_base_url: str | None = None,
        gateway_url: str | None = None,
        message_content: bool = True,
        verbs: Sequence[str] = DEFAULT_VERBS,
        guild_ready_timeout: float = 2.0,
    ) -> None:
        self._token = token
        self._token_env = token_env
        self._api_base_url = api_base_url.rstrip("/") if api_base_url else None
        self._gateway_url = gateway_url
        self._message_content = message_content
        self._verbs = tuple(verbs)
        self._guild_ready_timeout = guild_ready_timeout
        self._client: discord.Client | None = None
        self._connect_task: asyncio.Task[None] | None = None
        self._sink: MessageSink | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, sink: MessageSink) -> None:
        """Log in, sync the app commands, open the gateway; return once the client is ready."""
        if self._client is not None:
            raise AdapterError("discord: adapter already started")
        if not self._token:
            raise AdapterRejected(
                f"discord: no bot token; set the environment variable {self._token_env}"
            )
        self._apply_endpoint_overrides()
        self._sink = sink
        client = self._build_client()
        tree = self._build_tree(client)
        self._client = client
        try:
            with _platform_errors():
                try:
                    await client.login(self._token)
                except discord.LoginFailure as exc:
                    raise AdapterRejected(f"discord: the bot token was refused: {exc}") from exc
                await tree.sync()
            self._connect_task = asyncio.create_task(
                client.connect(reconnect=True), name="discord-connect"
            )
            await self._wait_until_ready(client, self._connect_task)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the client and wait for its connection task; a second call does nothing."""
        client, task = self._client, self._connect_task
        self._client = self._connect_task = None
        self._sink = None
        if client is None:
            return
        await client.close()
        if task is None:
            return
        try:
            await asyncio.wait_for(task, _STOP_TIMEOUT)
        except (discord.DiscordException, OSError, aiohttp.ClientError, TimeoutError):
            # The failure was already reported by start() or logged by discord.py; stopping must
            # not raise because the connection had died.
            log.debug("discord connection ended with an error", exc_info=True)

    async def send(self, chat: ChatRef, document: Document) -> None:
        """Post ``document`` (buttons, then files) to the chat's thread if any, else the chat."""
        client = self._client
        if client is None:
            raise AdapterError("discord: adapter not started")
        channel = client.get_partial_messageable(int(chat.thread_id or chat.chat_id))
        with _platform_errors():
            for message in self.outgoing(document):
                await channel.send(**message.kwargs())

    # -- rendering -------------------------------------------------------------------------------

    def render(self, document: Document) -> list[str]:
        """Discord markdown parts of at most 2000 chars, every code fence closed within its part."""
        caps = self.capabilities
        return render(document, caps.max_message_chars, caps.max_parts)

    def outgoing(self, document: Document) -> list[Outgoing]:
        """The messages ``document`` becomes: text parts (buttons on the last), then files."""
        caps = self.capabilities
        return outgoing(
            document,
            max_chars=caps.max_message_chars,
            max_parts=caps.max_parts,
            max_file_bytes=caps.max_attachment_bytes,
        )

    # -- discord.py wiring -----------------------------------------------------------------------

    def _apply_endpoint_overrides(self) -> None:
        # discord.py reads these class attributes for every request and connection, so they are
        # process-wide: one Discord adapter per process (the gateway runs at most one).
        if self._api_base_url:
            Route.BASE = self._api_base_url
        if self._gateway_url:
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self._gateway_url)

    def _build_client(self) -> discord.Client:
        intents = discord.Intents.none()
        intents.guilds = True  # channel and thread cache: tells a thread from its parent channel
        if self._message_content:
            # Plain messages (follow-ups in a bound channel, "/command …" typed as text) need the
            # privileged Message Content intent: switch on "Message Content Intent" for the bot in
            # the developer portal (Bot → Privileged Gateway Intents), or the gateway closes with
            # 4014. message_content: false runs with app commands and buttons only.
            intents.guild_messages = intents.dm_messages = intents.message_content = True
        client = discord.Client(
            intents=intents,
            allowed_mentions=_NO_MENTIONS,
            max_ratelimit_timeout=_MAX_RATELIMIT_WAIT,
            guild_ready_timeout=self._guild_ready_timeout,
        )

        async def on_interaction(interaction: discord.Interaction) -> None:
            await self._on_interaction(interaction)

        client.event(on_interaction)
        if self._message_content:

            async def on_message(message: discord.Message) -> None:
                await self._on_message(message)

            client.event(on_message)
        return client

    def _build_tree(self, client: discord.Client) -> app_commands.CommandTree[discord.Client]:
        tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
        for slash in SLASH_COMMANDS:
            tree.add_command(self._app_command(slash.name, slash.description))
            for alias in slash.aliases:
                about = f"Same as /{slash.name}: {slash.description}"
                tree.add_command(self._app_command(alias, about))
        return tree

    def _app_command(self, word: str, description: str) -> app_commands.Command[Any, ..., None]:
        """``/word args:…``: the interaction arrives as command ``word`` with ``args`` as text."""
        hint = "what to run, e.g. list --all" if word == _KANBAN else "the rest of the command"

        @app_commands.describe(args=hint)
        async def callback(interaction: discord.Interaction, args: str = "") -> None:
            await self._on_slash(interaction, word, args)

        command: app_commands.Command[Any, ..., None] = app_commands.Command(
            name=word, description=description[:_MAX_DESCRIPTION], callback=callback
        )
        if word == _KANBAN:

            async def complete_verb(
                _interaction: discord.Interaction, current: str
            ) -> list[app_commands.Choice[str]]:
                return [app_commands.Choice(name=v, value=v) for v in self.suggest(current)]

            command.autocomplete("args")(complete_verb)
        return command

    def suggest(self, current: str) -> list[str]:
        """Verbs starting with what the user typed, while the first word is being typed."""
        typed = current.lstrip()
        if any(ch.isspace() for ch in typed):
            return []
        prefix = typed.lower()
        return [verb for verb in self._verbs if verb.startswith(prefix)][:_MAX_CHOICES]

    async def _wait_until_ready(self, client: discord.Client, task: asyncio.Task[None]) -> None:
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            done, _ = await asyncio.wait(
                {ready, task}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
        if ready in done:
            return
        if task not in done:
            raise AdapterError(f"discord: not ready after {_START_TIMEOUT:g}s")
        exc = task.exception()
        if isinstance(exc, discord.PrivilegedIntentsRequired):
            raise AdapterRejected(
                "discord: the Message Content intent is not enabled for this bot in the developer "
                "portal; enable it or set message_content: false"
            ) from exc
        if isinstance(exc, discord.ConnectionClosed) and exc.code == 4004:
            raise AdapterRejected("discord: the gateway refused the bot token") from exc
        raise AdapterError(f"discord: the gateway connection ended before ready: {exc!r}") from exc

    # -- incoming --------------------------------------------------------------------------------

    async def _on_slash(self, interaction: discord.Interaction, word: str, args: str) -> None:
        # Defer first: Discord drops interactions not answered within 3 s, and commands can be slow.
        await interaction.response.defer(thinking=True)
        incoming = IncomingMessage(
            chat=_chat_ref(interaction.channel, interaction.channel_id),
            user=_chat_user(interaction.user),
            text=args.strip(),
            delivery_id=str(interaction.id),
            command=word,
        )
        messages = self.outgoing(await self._run_sink(incoming) or Document(()))
        if not messages:
            # Nothing to say: remove the "thinking…" placeholder rather than leave it spinning.
            await interaction.delete_original_response()
            return
        await _post_all(interaction.followup.send, messages)

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """A button press: acknowledge it, hand its opaque custom_id on, post the reply."""
        if interaction.type is not discord.InteractionType.component:
            return  # app commands and autocomplete are the CommandTree's
        data: Mapping[str, object] = interaction.data or {}
        action = data.get("custom_id")
        if data.get("component_type") != discord.ComponentType.button.value:
            return  # we only ever send buttons
        if not isinstance(action, str) or not action:
            return
        # A deferred update (type 6) within Discord's 3 s: the pressed message stays as it is and
        # the press does not show "interaction failed" while the gateway works.
        await interaction.response.defer()
        incoming = IncomingMessage(
            chat=_chat_ref(interaction.channel, interaction.channel_id),
            user=_chat_user(interaction.user),
            text=action,
            delivery_id=str(interaction.id),
            command="",
            kind=MessageKind.ACTION,
        )
        document = await self._run_sink(incoming)
        if document is not None:
            await _post_all(interaction.followup.send, self.outgoing(document))

    async def _on_message(self, message: discord.Message) -> None:
        if message.author.bot or message.webhook_id is not None:
            return  # never answer ourselves, other bots or webhooks: no reply loops
        if message.type not in _USER_MESSAGES:
            return
        content = message.content.strip()
        if not content:
            return  # only stickers or files, or content we may not read
        if content.startswith("/"):
            match = _TEXT_COMMAND.fullmatch(content)
            if match is None:
                return  # "/usr/bin …" is neither a command nor a plain message
            word, text, kind = match.group(1), (match.group(2) or "").strip(), MessageKind.COMMAND
        else:
            word, text, kind = "", message.content, MessageKind.TEXT
        incoming = IncomingMessage(
            chat=_chat_ref(message.channel, message.channel.id),
            user=_chat_user(message.author),
            text=text,
            delivery_id=str(message.id),
            command=word,
            kind=kind,
        )
        document = await self._run_sink(incoming)
        if document is None:
            return
        # message.channel is the thread itself when the message was typed in one; the first
        # message answers as a reply, the rest follow it.
        messages = self.outgoing(document)
        if not messages:
            return
        reference = message.to_reference(fail_if_not_exists=False)
        await message.channel.send(**messages[0].kwargs(), reference=reference)
        await _post_all(message.channel.send, messages[1:])

    async def _run_sink(self, incoming: IncomingMessage) -> Document | None:
        sink = self._sink
        if sink is None:
            return None
        try:
            return await sink(incoming)
        except Exception:
            # The router answers usage errors itself; anything else is a bug, but the user should
            # still get an answer instead of a spinner. The text may be a private message or an
            # opaque button payload, so only its kind is logged.
            log.exception("discord: the gateway failed on a %s", incoming.kind.value)
            return _FAILED_REPLY


async def _post_all(post: Post, messages: Sequence[Outgoing]) -> None:
    for message in messages:
        await post(**message.kwargs())


def _chat_ref(channel: object, channel_id: int | None) -> ChatRef:
    if isinstance(channel, discord.Thread):
        return ChatRef("discord", str(channel.parent_id), str(channel.id))
    if isinstance(channel, discord.PartialMessageable) and channel.type in _THREAD_TYPES:
        # An uncached thread: its parent is unknown, but replies only need the thread id.
        return ChatRef("discord", str(channel.id), str(channel.id))
    return ChatRef("discord", str(channel_id))


def _chat_user(user: discord.User | discord.Member) -> ChatUser:
    return ChatUser("discord", str(user.id), user.display_name)


@contextlib.contextmanager
def _platform_errors() -> Iterator[None]:
    """Translate discord.py and network failures into the gateway's AdapterError family."""
    try:
        yield
    except discord.RateLimited as exc:
        raise AdapterRateLimited(exc.retry_after, "discord rate limit") from exc
    except (discord.Forbidden, discord.NotFound) as exc:
        raise AdapterRejected(f"discord refused: {exc}") from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            # No Via header: Cloudflare, not Discord, is throttling us; discord.py does not retry.
            raise AdapterRateLimited(_retry_after(exc), "discord rate limit") from exc
        raise AdapterError(f"discord: {exc}") from exc
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        raise AdapterError(f"discord: network error: {exc!r}") from exc


def _retry_after(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After")
    try:
        return float(header) if header else 60.0
    except ValueError:
        return 60.0


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> DiscordAdapter:
    """The ``kanban_gateway.adapters`` entry point: build the adapter from its config section.

    Keys: ``token_env`` (required: the variable holding the bot token), ``api_base_url`` and
    ``gateway_url`` (send discord.py to another REST base / gateway, e.g. a proxy or a test fake),
    ``message_content`` (default true: the bot has the privileged Message Content intent, switched
    on in the developer portal, so plain messages and ``/command …`` typed as text reach the
    gateway; false: app commands and buttons only), ``verbs`` (autocomplete suggestions),
    ``guild_ready_timeout`` (seconds).
    """
    token_env = config.get("token_env")
    if not isinstance(token_env, str) or not token_env:
        raise AdapterError(
            "discord: config key token_env (the variable holding the bot token) is required"
        )
    verbs = config.get("verbs", DEFAULT_VERBS)
    if not isinstance(verbs, list | tuple) or not all(isinstance(v, str) for v in verbs):
        raise AdapterError("discord: config key verbs must be a list of strings")
    return DiscordAdapter(
        token=environ.get(token_env, "").strip() or None,
        token_env=token_env,
        api_base_url=_optional_str(config, "api_base_url"),
        gateway_url=_optional_str(config, "gateway_url"),
        message_content=_flag(config, "message_content", default=True),
        verbs=[str(verb) for verb in verbs],
        guild_ready_timeout=_seconds(config, "guild_ready_timeout", 2.0),
    )


def _optional_str(config: Mapping[str, object], key: str) -> str | None:
    value = config.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise AdapterError(f"discord: config key {key} must be a string")


def _flag(config: Mapping[str, object], key: str, *, default: bool) -> bool:
    value = config.get(key, default)
    if isinstance(value, bool):
        return value
    raise AdapterError(f"discord: config key {key} must be true or false")


def _seconds(config: Mapping[str, object], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise AdapterError(f"discord: config key {key} must be a number of seconds")
