"""The router: one chat command in, one reply out — deduplicated, authorised, audited."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping

from gateway.access import AccessPolicy, Role, required_role
from gateway.executor import KernelExecutor
from gateway.messages import Document, IncomingMessage
from gateway.rendering import result_document
from kanban_core import Actor, Kanban, KanbanError, format_task_id
from kanban_core.audit import AuditEntry
from kanban_core.commands import (
    CommandContext,
    CommandResult,
    build_parser,
    run_command,
    split_command_line,
)
from kanban_core.dispatcher import Dispatcher

log = logging.getLogger(__name__)

_DEDUPE_WINDOW = 10_000
#: Verbs whose success should wake the dispatcher at once rather than at the next tick.
_NUDGING = frozenset({"create", "complete", "unblock", "link", "unlink", "assign"})
_NOTIFY_VERBS = frozenset({"notify-subscribe", "notify-unsubscribe"})


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
    ) -> None:
        self.board = board
        self.dispatcher = dispatcher
        self.environ = dict(environ or {})
        self.access = access
        self.executor = executor
        self.nudge = nudge
        self._parser = build_parser(prog="/kanban", with_db_option=False, local_verbs=False)
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def handle(self, message: IncomingMessage) -> Document | None:
        """Run one command; None for a redelivery that was already handled."""
        key = (message.chat.platform, message.delivery_id)
        if key in self._seen:
            return None
        self._seen[key] = None
        if len(self._seen) > _DEDUPE_WINDOW:
            self._seen.popitem(last=False)
        role = self.access.role_of(message.user)
        if role is None:
            await self._audit(message, None, "refused", "unknown user")
            return Document.text(
                f"⚠ You are not allowed to use this board. Ask an admin to add "
                f"{message.user.key} to access.users in config.yaml."
            )
        try:
            argv = split_command_line(message.text)
        except KanbanError as exc:
            await self._audit(message, role, "refused", str(exc))
            return Document.text(f"⚠ {exc}")
        verb = next((word for word in argv if not word.startswith("-")), None)
        needed = required_role(verb)
        if needed is None or role < needed:
            why = (
                "not available from chat"
                if needed is None
                else f"needs the {needed.name.lower()} role"
            )
            await self._audit(message, role, "refused", why)
            return Document.text(f"⚠ /kanban {verb}: {why}.")
        argv, refusal = self._scope_notify(argv, verb, message, role)
        if refusal:
            await self._audit(message, role, "refused", refusal)
            return Document.text(f"⚠ {refusal}")
        try:
            result = await self.executor.run(self._run, argv, message)
        except Exception:
            log.exception("command failed", extra={"action": "command", "text": message.text})
            await self._audit(message, role, "error", "internal error")
            return Document.text("⚠ internal error; the gateway log has the details")
        await self._audit(message, role, "allowed", f"exit {result.exit_code}")
        if result.ok and verb in _NUDGING:
            self.nudge()
        document = result_document(result)
        if result.created and not result.as_json:
            refs = ", ".join(format_task_id(t) for t in result.created)
            document = Document(
                (
                    *document.blocks,
                    *Document.text(
                        f"(subscribed — this chat will hear when {refs} completes, blocks or fails)"
                    ).blocks,
                )
            )
        return document

    def _run(self, argv: list[str], message: IncomingMessage) -> CommandResult:
        actor = Actor(name=_actor_name(message))
        # The gateway's own dispatcher and environment: `/kanban dispatch` starts workers
        # exactly as the scheduled passes do (same profiles' environment, reaped by this process).
        ctx = CommandContext(
            actor=actor,
            open_board=lambda _url: self.board,
            interactive=False,
            environ=self.environ,
            dispatcher=self.dispatcher,
        )
        result = run_command(argv, ctx, parser=self._parser)
        if result.created and not result.as_json:
            for task_id in result.created:
                self.board.subscribe(
                    actor,
                    task_id,
                    platform=message.chat.platform,
                    chat_id=message.chat.chat_id,
                    thread_id=message.chat.thread_id,
                    user_id=message.user.user_id,
                )
        return result

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
        entry = AuditEntry(
            platform=message.chat.platform,
            chat_id=message.chat.chat_id,
            thread_id=message.chat.thread_id or "",
            user_id=message.user.user_id,
            user_name=message.user.display_name,
            role=role.name.lower() if role else None,
            text=message.text,
            outcome=outcome,
            detail=detail,
        )
        try:
            await self.executor.run(self.board.record_audit, entry)
        except KanbanError:
            log.exception("audit write failed", extra={"action": "audit"})


def _actor_name(message: IncomingMessage) -> str:
    user = message.user
    shown = user.display_name or user.user_id
    return f"{shown} ({user.key})"
