"""Discord adapter: the /kanban app command (and text command) on discord.py, as markdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, assert_never

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

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
_COMMAND: Final = "kanban"
_TEXT_COMMAND: Final = re.compile(r"/kanban(?:\s+(.*))?", re.DOTALL)
_FENCE: Final = "```"
# Room for reopening a fence at the start of a part and closing it at the end.
_FENCE_RESERVE: Final = 2 * (len(_FENCE) + 1)
# Discord shows at most 25 autocomplete choices.
_MAX_CHOICES: Final = 25
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


class DiscordAdapter:
    """One Discord bot: a discord.py Client and its app command tree, run in the gateway's loop."""

    name = "discord"
    capabilities = Capabilities(max_message_chars=MAX_MESSAGE_CHARS)

    def __init__(
        self,
        *,
        token: str | None,
        token_env: str,
        api_base_url: str | None = None,
        gateway_url: str | None = None,
        message_content: bool = False,
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
        """Log in, sync the /kanban command, open the gateway; return once the client is ready."""
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
        """Post ``document`` to the chat's thread if it has one, else to the chat itself."""
        client = self._client
        if client is None:
            raise AdapterError("discord: adapter not started")
        channel = client.get_partial_messageable(int(chat.thread_id or chat.chat_id))
        with _platform_errors():
            for part in self.render(document):
                await channel.send(part, allowed_mentions=_NO_MENTIONS)

    # -- rendering -------------------------------------------------------------------------------

    def render(self, document: Document) -> list[str]:
        """Discord markdown parts of at most 2000 chars, every code fence closed within its part."""
        text = "\n".join(_render_block(block) for block in document.blocks)
        limit = self.capabilities.max_message_chars - _FENCE_RESERVE
        footer = document.overflow_footer
        max_parts = self.capabilities.max_parts
        cut = len(split_text(text, limit, max_parts=sys.maxsize, footer=footer)) > max_parts
        parts = split_text(text, limit, max_parts=max_parts, footer=footer)
        return [part for part in _balance_fences(parts, footer if cut else None) if part.strip()]

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
            intents.guild_messages = intents.dm_messages = intents.message_content = True
        client = discord.Client(
            intents=intents,
            allowed_mentions=_NO_MENTIONS,
            max_ratelimit_timeout=_MAX_RATELIMIT_WAIT,
            guild_ready_timeout=self._guild_ready_timeout,
        )
        if self._message_content:

            async def on_message(message: discord.Message) -> None:
                await self._on_message(message)

            client.event(on_message)
        return client

    def _build_tree(self, client: discord.Client) -> app_commands.CommandTree[discord.Client]:
        tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)

        @app_commands.describe(args="what to run, e.g. list --all")
        async def kanban(interaction: discord.Interaction, args: str = "") -> None:
            await self._on_slash(interaction, args)

        command: app_commands.Command[Any, ..., None] = app_commands.Command(
            name=_COMMAND, description="Run a kanban board command", callback=kanban
        )

        async def complete_verb(
            _interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=verb, value=verb) for verb in self.suggest(current)]

        command.autocomplete("args")(complete_verb)
        tree.add_command(command)
        return tree

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

    async def _on_slash(self, interaction: discord.Interaction, args: str) -> None:
        # Defer first: Discord drops interactions not answered within 3 s, and commands can be slow.
        await interaction.response.defer(thinking=True)
        incoming = IncomingMessage(
            chat=_chat_ref(interaction.channel, interaction.channel_id),
            user=_chat_user(interaction.user),
            text=args.strip(),
            delivery_id=str(interaction.id),
        )
        parts = self.render(await self._run_sink(incoming) or Document(()))
        if not parts:
            # Nothing to say: remove the "thinking…" placeholder rather than leave it spinning.
            await interaction.delete_original_response()
            return
        for part in parts:
            await interaction.followup.send(part, allowed_mentions=_NO_MENTIONS)

    async def _on_message(self, message: discord.Message) -> None:
        if message.author.bot:  # never answer ourselves or other bots: no reply loops
            return
        match = _TEXT_COMMAND.fullmatch(message.content.strip())
        if match is None:
            return
        incoming = IncomingMessage(
            chat=_chat_ref(message.channel, message.channel.id),
            user=_chat_user(message.author),
            text=(match.group(1) or "").strip(),
            delivery_id=str(message.id),
        )
        document = await self._run_sink(incoming)
        if document is None:
            return
        # message.channel is the thread itself when the command was typed in one; the first part
        # answers the command as a reply, the rest follow it.
        parts = self.render(document)
        if not parts:
            return
        reference = message.to_reference(fail_if_not_exists=False)
        await message.channel.send(parts[0], allowed_mentions=_NO_MENTIONS, reference=reference)
        for part in parts[1:]:
            await message.channel.send(part, allowed_mentions=_NO_MENTIONS)

    async def _run_sink(self, incoming: IncomingMessage) -> Document | None:
        sink = self._sink
        if sink is None:
            return None
        try:
            return await sink(incoming)
        except Exception:
            # The router answers usage errors itself; anything else is a bug, but the user should
            # still get an answer instead of a spinner.
            log.exception("discord: the gateway failed on %r", incoming.text)
            return _FAILED_REPLY


def _chat_ref(channel: object, channel_id: int | None) -> ChatRef:
    if isinstance(channel, discord.Thread):
        return ChatRef("discord", str(channel.parent_id), str(channel.id))
    if isinstance(channel, discord.PartialMessageable) and channel.type in _THREAD_TYPES:
        # An uncached thread: its parent is unknown, but replies only need the thread id.
        return ChatRef("discord", str(channel.id), str(channel.id))
    return ChatRef("discord", str(channel_id))


def _chat_user(user: discord.User | discord.Member) -> ChatUser:
    return ChatUser("discord", str(user.id), user.display_name)


def _render_block(block: Block) -> str:
    match block:
        case Heading():
            return f"**{discord.utils.escape_markdown(block.text)}**"
        case Paragraph():
            return discord.utils.escape_markdown(block.text)
        case Preformatted():
            # A zero-width space keeps a literal ``` in the text from closing our fence early.
            body = block.text.replace(_FENCE, "``\u200b`")
            return f"{_FENCE}\n{body}\n{_FENCE}"
        case _:
            assert_never(block)


def _balance_fences(parts: list[str], footer: str | None) -> Iterator[str]:
    """Close a code fence left open at the end of a part and reopen it at the next one."""
    inside = False
    for index, part in enumerate(parts):
        body, tail = part, ""
        if footer is not None and index == len(parts) - 1 and part.endswith(footer):
            # The cut footer belongs after the closing fence, not inside the code block.
            body, tail = part[: -len(footer)].rstrip("\n"), footer
        opened = inside
        for line in body.split("\n"):
            if line.startswith(_FENCE):
                inside = not inside
        text = f"{_FENCE}\n{body}" if opened else body
        if inside:
            text = f"{text}\n{_FENCE}"
        if tail:
            text = f"{text}\n{tail}" if text else tail
        yield text


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
    ``message_content`` (the privileged intent is granted: also accept ``/kanban …`` typed as a
    message), ``verbs`` (autocomplete suggestions), ``guild_ready_timeout`` (seconds).
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
        message_content=_flag(config, "message_content"),
        verbs=[str(verb) for verb in verbs],
        guild_ready_timeout=_seconds(config, "guild_ready_timeout", 2.0),
    )


def _optional_str(config: Mapping[str, object], key: str) -> str | None:
    value = config.get(key)
    if value is None or isinstance(value, str):
        return value or None
    raise AdapterError(f"discord: config key {key} must be a string")


def _flag(config: Mapping[str, object], key: str) -> bool:
    value = config.get(key, False)
    if isinstance(value, bool):
        return value
    raise AdapterError(f"discord: config key {key} must be true or false")


def _seconds(config: Mapping[str, object], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise AdapterError(f"discord: config key {key} must be a number of seconds")
