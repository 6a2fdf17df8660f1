"""Discord adapter: every slash command as an app command, plain text and buttons, on discord.py."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Final

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.connection_watch import ConnectionWatch, describe
from adapters.discord_commands import DEFAULT_VERBS, command_tree, suggest_verbs
from adapters.discord_config import DiscordSettings
from adapters.discord_errors import platform_errors
from adapters.discord_inbound import button_press, slash_message, typed_message
from adapters.discord_logs import connection_watch, drop_voice_warnings
from adapters.discord_render import Outgoing, outgoing, render
from gateway import (
    AdapterError,
    AdapterRejected,
    Capabilities,
    ChatRef,
    Document,
    IncomingMessage,
    MessageGone,
    MessageSink,
)
from gateway.slash import SLASH_COMMANDS, SlashCommand

__all__ = ["DEFAULT_VERBS", "DiscordAdapter", "create"]

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS: Final = 2000
# Discord takes 8 MB (more on boosted servers); the gateway caps every platform at 5 MB.
MAX_ATTACHMENT_BYTES: Final = 5_000_000
# discord.py sleeps through shorter 429s itself; 30 s is the smallest cap it accepts. Longer waits
# raise RateLimited, which we turn into AdapterRateLimited so the notifier backs off instead.
_MAX_RATELIMIT_WAIT: Final = 30.0
_START_TIMEOUT: Final = 60.0
_STOP_TIMEOUT: Final = 10.0
_NO_MENTIONS: Final = discord.AllowedMentions.none()
_FAILED_REPLY: Final = Document.text("Sorry, that command failed; the gateway logged the error.")

Post = Callable[..., Awaitable[object]]


class DiscordAdapter:
    """One Discord bot: a discord.py Client and its app command tree, run in the gateway's loop."""

    name = "discord"
    capabilities = Capabilities(
        max_message_chars=MAX_MESSAGE_CHARS,
        buttons=True,
        max_attachment_bytes=MAX_ATTACHMENT_BYTES,
        edits=True,
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
        self._watch: ConnectionWatch | None = None
        self._sink: MessageSink | None = None
        self._private: frozenset[str] = frozenset()  # commands answered to the sender alone

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(
        self, sink: MessageSink, *, menu: Sequence[SlashCommand] = SLASH_COMMANDS
    ) -> None:
        """Log in, sync the app commands, open the gateway; return once the client is ready."""
        if self._client is not None:
            raise AdapterError("discord: adapter already started")
        if not self._token:
            raise AdapterRejected(
                f"discord: no bot token; set the environment variable {self._token_env}"
            )
        self._apply_endpoint_overrides()
        drop_voice_warnings()
        self._sink = sink
        client = self._build_client()
        tree = command_tree(client, menu, on_slash=self._on_slash, suggest=self.suggest)
        self._private = frozenset(command.name for command in menu if command.private)
        self._client = client
        # The URL discord.py opens first; reconnects may go to the resume URL Discord hands out.
        self._watch = watch = connection_watch(str(DiscordWebSocket.DEFAULT_GATEWAY))
        watch.install()
        try:
            with platform_errors():
                try:
                    await client.login(self._token)
                except discord.LoginFailure as exc:
                    raise AdapterRejected(f"discord: the bot token was refused: {exc}") from exc
                except (aiohttp.ClientConnectionError, OSError) as exc:
                    raise AdapterError(
                        f"discord: cannot reach the API at {Route.BASE}: {describe(exc)}"
                    ) from exc
                await tree.sync()
            # discord.py retries a lost connection with backoff by itself once it has connected;
            # a first connection that fails is caught by the watch and fails start instead.
            self._connect_task = task = asyncio.create_task(
                client.connect(reconnect=True), name="discord-connect"
            )
            await self._wait_until_ready(client, task, watch)
            watch.connected = True
            task.add_done_callback(self._connection_ended)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Close the client and end its connection task; a second call does nothing, never raises
        because the connection had died."""
        client, task, watch = self._client, self._connect_task, self._watch
        self._client = self._connect_task = self._watch = None
        self._sink = None
        if client is None:
            return
        try:
            await client.close()
            if task is not None:
                await _end(task, grace=_STOP_TIMEOUT if client.is_ready() else 0.0)
        finally:
            if watch is not None:
                watch.remove()

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        # discord.py gives up only on errors retrying cannot fix (token revoked, intents
        # withdrawn); say so once, loudly, rather than sit deaf until someone notices.
        if task is not self._connect_task or task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error(
                "discord: the gateway connection ended for good (%s); restart the gateway",
                describe(error),
            )

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        """Post ``document`` (buttons, then files) to the chat's thread if any, else the chat."""
        channel = self._messageable(chat)
        last: str | None = None
        with platform_errors():
            for message in self.outgoing(document):
                last = str((await channel.send(**message.kwargs())).id)
        return last

    async def edit(self, chat: ChatRef, message_id: str, document: Document) -> None:
        """Replace a sent message's content with the document's first part (message edit)."""
        channel = self._messageable(chat)
        if not message_id.isdigit():
            raise MessageGone(f"discord: {message_id!r} is not a message id")
        first = self.outgoing(document)[0]
        try:
            with platform_errors():
                # view=None clears the buttons: a settled permission card has none left.
                await channel.get_partial_message(int(message_id)).edit(
                    content=first.content,
                    allowed_mentions=discord.AllowedMentions.none(),
                    view=first.view,
                )
        except AdapterRejected as exc:
            if isinstance(exc.__cause__, discord.NotFound):
                raise MessageGone(f"discord: message {message_id} is gone") from exc
            raise

    def _messageable(self, chat: ChatRef) -> discord.PartialMessageable:
        client = self._client
        if client is None:
            raise AdapterError("discord: adapter not started")
        target = chat.thread_id or chat.chat_id
        if not target.isdigit():
            # A subscription row can outlive a hand edit or a config change: say so once, for
            # good, instead of retrying a send that cannot work.
            raise AdapterRejected(f"discord: {target!r} is not a channel or thread id")
        return client.get_partial_messageable(int(target))

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

    def suggest(self, current: str) -> list[str]:
        """Verbs starting with what the user typed, while the first word is being typed."""
        return suggest_verbs(self._verbs, current)

    async def _wait_until_ready(
        self, client: discord.Client, task: asyncio.Task[None], watch: ConnectionWatch
    ) -> None:
        ready = asyncio.create_task(client.wait_until_ready())
        failed = asyncio.create_task(watch.failed.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, failed, task}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
            failed.cancel()
        if ready in done:
            return
        if failed in done or (task in done and watch.failed.is_set()):
            raise AdapterError(watch.message())
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
        raise AdapterError(
            f"discord: the gateway connection ended before ready: {describe(exc)}"
        ) from exc

    # -- incoming --------------------------------------------------------------------------------

    async def _on_slash(self, interaction: discord.Interaction, word: str, args: str) -> None:
        # Defer first: Discord drops interactions not answered within 3 s, and commands can be slow.
        # A private command (/web) is answered ephemerally: only the sender ever sees it.
        private = word in self._private
        await interaction.response.defer(thinking=True, ephemeral=private)
        incoming = slash_message(interaction, word, args)
        messages = self.outgoing(await self._run_sink(incoming) or Document(()))
        if not messages:
            # Nothing to say: remove the "thinking…" placeholder rather than leave it spinning.
            await interaction.delete_original_response()
            return
        post = interaction.followup.send
        await _post_all(functools.partial(post, ephemeral=True) if private else post, messages)

    async def _on_interaction(self, interaction: discord.Interaction) -> None:
        """A button press: acknowledge it, hand its opaque custom_id on, post the reply."""
        incoming = button_press(interaction)
        if incoming is None:
            return
        # A deferred update (type 6) within Discord's 3 s: the pressed message stays as it is and
        # the press does not show "interaction failed" while the gateway works.
        await interaction.response.defer()
        document = await self._run_sink(incoming)
        if document is not None:
            await _post_all(interaction.followup.send, self.outgoing(document))

    async def _on_message(self, message: discord.Message) -> None:
        incoming = typed_message(message)
        if incoming is None:
            return
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


async def _end(task: asyncio.Task[None], *, grace: float) -> None:
    """Let the connection task finish within ``grace`` seconds, then cancel it; never raise."""
    if grace > 0:
        await asyncio.wait({task}, timeout=grace)
    if not task.done():
        # Still in a backoff sleep or a handshake: nothing left to wait for.
        task.cancel()
    results = await asyncio.gather(task, return_exceptions=True)
    if isinstance(results[0], BaseException) and not isinstance(results[0], asyncio.CancelledError):
        # Already reported by start() or logged as the connection ended.
        log.debug("discord connection ended with %r", results[0])


async def _post_all(post: Post, messages: Sequence[Outgoing]) -> None:
    for message in messages:
        await post(**message.kwargs())


def create(config: Mapping[str, object], environ: Mapping[str, str]) -> DiscordAdapter:
    """The ``kanban_gateway.adapters`` entry point: build the adapter from its config section.

    The keys are declared in ``adapters.discord_config``; the token is read from ``environ``.
    """
    settings = DiscordSettings.from_section(config, "discord")
    return DiscordAdapter(
        token=environ.get(settings.token_env, "").strip() or None,
        token_env=settings.token_env,
        api_base_url=settings.rest_url,
        gateway_url=settings.gateway_url,
        message_content=settings.message_content,
        verbs=list(DEFAULT_VERBS if settings.verbs is None else settings.verbs),
        guild_ready_timeout=settings.guild_ready_timeout,
    )
