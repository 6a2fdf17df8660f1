"""The router: one chat message in, one reply out — deduplicated, authorised, audited.

Commands (``/kanban …``, ``/ws …``, ``/diff`` …), plain messages in a chat bound to a workspace
(follow-ups to its agent) and button presses all become an argv of the one command tree, run in
a thread with the sender's identity taken from the platform, never from the text.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from gateway.access import QUEUE_WRITES, AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.messages import Attachment, Button, Document, IncomingMessage, MessageKind
from gateway.rendering import result_document
from gateway.routing import Routed, action_argv, command_argv, split_line, text_argv
from gateway.slash import normalize_word

if TYPE_CHECKING:
    from gateway.surfaces import ChatCommand
from kanban_core import Actor, Kanban, KanbanError, format_task_id
from kanban_core.board.audit import AuditEntry, claim_delivery
from kanban_core.commands import (
    CommandContext,
    CommandResult,
    build_parser,
    run_command,
)
from kanban_core.dispatch.dispatcher import Dispatcher
from kanban_core.workspaces.interactive import store
from kanban_core.workspaces.interactive.records import ChatPlace

log = logging.getLogger(__name__)

#: How long a delivery's key is kept: a redelivery within this window runs nothing. Telegram
#: keeps unconfirmed updates for 24 hours and Slack retries for minutes; past the window a key is
#: forgotten (and a delivery that old would run again).
DEDUPE_KEEP_HOURS = 48
#: Verbs whose success should wake the dispatcher at once rather than at the next tick.
_NUDGING = frozenset({"create", "complete", "unblock", "accept", "link", "unlink", "assign"})
_NOTIFY_VERBS = frozenset({"notify-subscribe", "notify-unsubscribe", "progress"})
#: Inline diff budget when an adapter does not say (characters).
DEFAULT_BUDGET = 3000
_INTERNAL_ERROR = "⚠ internal error; the gateway log has the details"


class Router:
    """Turns IncomingMessages into replies through the shared command tree."""

    def __init__(
        self,
        board: Kanban,
        access: AccessPolicy,
        executor: KernelExecutor,
        *,
        nudge: Callable[[], None] = lambda: None,
        dispatcher: Dispatcher | None = None,
        environ: Mapping[str, str] | None = None,
        budgets: Mapping[str, int] | None = None,
        chat_commands: Mapping[str, ChatCommand] | None = None,
    ) -> None:
        self.board = board
        self.dispatcher = dispatcher
        self.environ = dict(environ or {})
        self.access = access
        self.executor = executor
        self.nudge = nudge
        self.budgets = dict(budgets or {})
        self.chat_commands = dict(chat_commands or {})
        self._parser = build_parser(prog="/kanban", with_db_option=False, local_verbs=False)
        self.dedupe_keep_ms = DEDUPE_KEEP_HOURS * 3600 * 1000

    async def handle(self, message: IncomingMessage) -> Document | None:
        """Run one message; None for a redelivery, or for chatter in an unbound chat."""
        if message.kind is not MessageKind.TEXT and not await self._first_delivery(message):
            return None
        role = self.access.role_of(message.user)
        try:
            return await self._answer(message, role)
        except KanbanError as exc:  # the database is unreachable, say
            log.error("message failed: %s", exc, extra={"action": "message"})
            await self._audit(message, role, "error", str(exc))
            return Document.text(f"⚠ {exc}")
        except Exception:
            # One message must never end an adapter's reader, whatever it contained.
            log.exception("message failed", extra={"action": "message"})
            await self._audit(message, role, "error", "internal error")
            return Document.text(_INTERNAL_ERROR)

    async def _answer(self, message: IncomingMessage, role: Role | None) -> Document | None:
        if message.kind is MessageKind.TEXT:
            # Plain chatter is only ever a follow-up in a bound chat, and only from a known
            # user; everything else is ignored silently (the bot must not answer every line).
            if role is None or await self._bound_repos(message) is None:
                return None
            # Claimed only now: chatter the bot ignores costs no write.
            if not await self._first_delivery(message):
                return None
            routed = text_argv(message.text)
        else:
            if role is None:
                await self._audit(message, None, "refused", "unknown user")
                return Document.text(
                    f"⚠ You are not allowed to use this board. Ask an admin to add "
                    f"{message.user.key} to access.users in config.yaml."
                )
            surface = self._surface_command(message)
            if surface is not None:
                reply = await surface(message, role)
                await self._audit(message, role, "allowed", f"/{normalize_word(message.command)}")
                return reply
            try:
                routed = await self._route(message)
            except KanbanError as exc:
                await self._audit(message, role, "refused", str(exc))
                return Document.text(f"⚠ {exc}")
        if routed.refusal:
            await self._audit(message, role, "refused", routed.refusal)
            return Document.text(f"⚠ {routed.refusal}")
        return await self._run_routed(message, role, routed.argv)

    def _surface_command(self, message: IncomingMessage) -> ChatCommand | None:
        """A surface's own command (``/web``), typed bare; with words after it, the word may be
        a repository slug (``/web diff``) and routes as usual."""
        if message.kind is not MessageKind.COMMAND or message.text.strip():
            return None
        return self.chat_commands.get(normalize_word(message.command))

    async def _first_delivery(self, message: IncomingMessage) -> bool:
        """Claim the delivery's key in the database; False for a redelivery.

        Durable and shared: a platform redelivering after a gateway restart, or to a second
        gateway on the same board, is dropped too. The key is claimed before the command runs,
        so a retry arriving while the first copy is still running is dropped as well.
        """

        def claim() -> bool:
            with self.board.db.transaction(write=True) as tx:
                return claim_delivery(
                    tx, message.chat.platform, message.delivery_id, keep_ms=self.dedupe_keep_ms
                )

        try:
            return await self.executor.run(claim)
        except KanbanError:
            # The command itself will meet the same database and report it to the user.
            log.exception("delivery dedupe failed", extra={"action": "dedupe"})
            return True

    async def _route(self, message: IncomingMessage) -> Routed:
        # Splitting is CPU work that grows with the line (bounded by routing.split_line): it
        # runs in a thread so the loop keeps serving every other chat meanwhile.
        if message.kind is MessageKind.ACTION:
            repos = await self._bound_repos(message) or ()
            return await asyncio.to_thread(action_argv, message.text, repos)
        if message.command == "kanban":
            return Routed(await asyncio.to_thread(split_line, message.text))
        repos = await self._bound_repos(message) or ()
        return await asyncio.to_thread(command_argv, message.command, message.text, repos)

    async def _run_routed(self, message: IncomingMessage, role: Role, argv: list[str]) -> Document:
        verb = next((word for word in argv if not word.startswith("-")), None)
        sub = _ws_subcommand(argv) if verb == "ws" else None
        needed = self.access.needed(verb, sub, _word_after(argv, sub) if sub else None, argv)
        if needed is None or role < needed:
            why = (
                "not available from chat"
                if needed is None
                else f"needs the {needed.name.lower()} role"
            )
            await self._audit(message, role, "refused", why)
            shown = f"/kanban {verb}" if verb != "ws" else f"/ws {sub or ''}".rstrip()
            return Document.text(f"⚠ {shown}: {why}.")
        argv, refusal = self._scope_notify(argv, verb, message, role)
        if refusal:
            await self._audit(message, role, "refused", refusal)
            return Document.text(f"⚠ {refusal}")
        try:
            result = await self.executor.run(self._run, argv, message, role)
        except Exception:
            log.exception("command failed", extra={"action": "command", "verb": verb})
            await self._audit(message, role, "error", "internal error")
            return Document.text(_INTERNAL_ERROR)
        await self._audit(message, role, "allowed", f"exit {result.exit_code}")
        # A workspace command wakes the dispatcher only when it started an agent turn.
        if result.ok and (verb in _NUDGING or (verb == "ws" and result.created)):
            self.nudge()
        return _document(result, verb)

    def _run(self, argv: list[str], message: IncomingMessage, role: Role) -> CommandResult:
        actor = Actor(name=_actor_name(message))
        chat = message.chat
        # The gateway's own dispatcher and environment: `/kanban dispatch` starts workers
        # exactly as the scheduled passes do (same profiles' environment, reaped by this process).
        ctx = CommandContext(
            actor=actor,
            open_board=lambda _url: self.board,
            interactive=False,
            environ=self.environ,
            dispatcher=self.dispatcher,
            principal=message.user.key,
            place=(chat.platform, chat.chat_id, chat.thread_id or ""),
            source_key=f"{chat.platform}:{message.delivery_id}",
            may_approve=role >= Role.APPROVER,
            role=role.name.lower(),
            chat_budget=self.budgets.get(chat.platform, DEFAULT_BUDGET),
        )
        result = run_command(argv, ctx, parser=self._parser)
        if result.created and not result.as_json:
            for task_id in result.created:
                self.board.subscribe(
                    actor,
                    task_id,
                    platform=chat.platform,
                    chat_id=chat.chat_id,
                    thread_id=chat.thread_id,
                    user_id=message.user.user_id,
                )
        return result

    async def _bound_repos(self, message: IncomingMessage) -> tuple[str, ...] | None:
        """The repository slugs of the chat's workspace, or None when the chat has none."""
        chat = message.chat
        place = ChatPlace(chat.platform, chat.chat_id, chat.thread_id or "")

        def lookup() -> tuple[str, ...] | None:
            with self.board.db.transaction(write=False) as tx:
                ws_id = store.bound(tx, place)
                ws = store.get(tx, ws_id) if ws_id else None
            return None if ws is None else tuple(r.slug for r in ws.repos)

        return await self.executor.run(lookup)

    def _scope_notify(
        self, argv: list[str], verb: str | None, message: IncomingMessage, role: Role
    ) -> tuple[list[str], str | None]:
        """In chat, subscriptions default to this chat; naming another chat needs admin."""
        if verb not in _NOTIFY_VERBS:
            return argv, None
        chat = message.chat
        named = {flag for flag in ("--platform", "--chat-id") if flag in argv}
        if not named:
            extra = ["--platform", chat.platform, "--chat-id", chat.chat_id]
            if chat.thread_id and "--thread-id" not in argv:
                extra += ["--thread-id", chat.thread_id]
            return argv + extra, None
        if role < Role.ADMIN:
            return argv, "managing another chat's subscriptions needs the admin role"
        return argv, None

    async def _audit(
        self, message: IncomingMessage, role: Role | None, outcome: str, detail: str
    ) -> None:
        text = message.text if message.kind is not MessageKind.ACTION else "(button)"
        if message.kind is MessageKind.COMMAND and message.command != "kanban":
            text = f"/{message.command} {text}".rstrip()
        entry = AuditEntry(
            platform=message.chat.platform,
            chat_id=message.chat.chat_id,
            thread_id=message.chat.thread_id or "",
            user_id=message.user.user_id,
            user_name=message.user.display_name,
            role=role.name.lower() if role else None,
            text=text,
            outcome=outcome,
            detail=detail,
        )
        try:
            await self.executor.run(self.board.record_audit, entry)
        except Exception:
            # The audit must not turn a command's answer into a failure; the log says why.
            log.exception("audit write failed", extra={"action": "audit"})


def _document(result: CommandResult, verb: str | None) -> Document:
    document = result_document(result)
    blocks = document.blocks
    if verb == "create" and result.created and not result.as_json:
        refs = ", ".join(format_task_id(t) for t in result.created)
        note = f"(subscribed — this chat will hear when {refs} completes, blocks or fails)"
        blocks = (*blocks, *Document.text(note).blocks)
    return Document(
        blocks,
        buttons=tuple(Button(a.label, a.action) for a in result.actions),
        attachments=tuple(Attachment(f.filename, f.content, f.mime) for f in result.files),
    )


def _ws_subcommand(argv: list[str]) -> str | None:
    after = argv[argv.index("ws") + 1 :]
    return next((word for word in after if not word.startswith("-")), None)


def _word_after(argv: list[str], word: str) -> str | None:
    """The action word after ``word`` (``queue`` → ``run``): a mutating one wherever it stands
    (``queue --ws ws-1 run``), else the first non-option word."""
    after = argv[argv.index(word) + 1 :] if word in argv else []
    writes = [w for w in after if w in QUEUE_WRITES]
    return writes[0] if writes else next((w for w in after if not w.startswith("-")), None)


def _actor_name(message: IncomingMessage) -> str:
    user = message.user
    shown = user.display_name or user.user_id
    return f"{shown} ({user.key})"
