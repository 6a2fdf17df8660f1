"""Every web write as a command of the one tree, authorised and audited like a chat command."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence

from gateway.access import AccessPolicy, Role, required_role
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from kanban_core.board.audit import AuditEntry
from kanban_core.commands import CommandContext, CommandResult, build_parser, run_command
from kanban_core.dispatch.dispatcher import Dispatcher
from web.http import ApiError
from web.identity import WebUser

log = logging.getLogger(__name__)
#: The audit's platform for the web board; the chat id is the session.
PLATFORM = "web"
#: Verbs whose success should wake the dispatcher at once rather than at the next tick.
_NUDGING = frozenset(
    {"create", "complete", "unblock", "accept", "link", "unlink", "assign", "dispatch"}
)


class CommandBridge:
    """Runs argv through the shared tree as the web user, after the same role check as chat."""

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
        self.access = access
        self.executor = executor
        self.nudge = nudge
        self.dispatcher = dispatcher
        self.environ = dict(environ or {})
        self._parser = build_parser(prog="kanban", with_db_option=False, local_verbs=False)

    async def run(self, user: WebUser, argv: Sequence[str]) -> CommandResult:
        """Run one command; a role too low is a 403 (audited as refused)."""
        words = list(argv)
        verb = next((w for w in words if not w.startswith("-")), None)
        sub = _ws_subcommand(words) if verb == "ws" else None
        needed = (
            self.access.answer_role
            if verb in ("allow", "deny")
            else required_role(verb, sub, None, words)
        )
        if needed is None or user.role < needed:
            why = "not available" if needed is None else f"needs the {needed.name.lower()} role"
            await self.audit(user, words, "refused", why)
            raise ApiError(403, f"{verb}: {why}")
        try:
            result = await self.executor.run(self._run, user, words)
        except Exception:
            log.exception("web command failed", extra={"action": "command", "verb": verb})
            await self.audit(user, words, "error", "internal error")
            raise ApiError(500, "internal error; the server log has the details") from None
        await self.audit(user, words, "allowed", f"exit {result.exit_code}")
        if result.ok and (verb in _NUDGING or (verb == "ws" and result.created)):
            self.nudge()
        return result

    async def read(self, user: WebUser, argv: Sequence[str]) -> CommandResult:
        """Run a read verb (``show --json``) as the user: same shapes as the CLI, not audited."""
        verb = argv[0]
        needed = required_role(verb)
        if needed is None or user.role < needed:
            raise ApiError(403, f"{verb}: not available")
        return await self.executor.run(self._run, user, list(argv))

    def _run(self, user: WebUser, argv: list[str]) -> CommandResult:
        ctx = CommandContext(
            actor=user.actor,
            open_board=lambda _url: self.board,
            interactive=False,
            environ=self.environ,
            dispatcher=self.dispatcher,
            principal=user.principal,
            # A place, so the tree treats the browser like a chat: no server paths shown, no
            # dir: workspaces outside the configured ones.
            place=(PLATFORM, f"session-{user.session_id}", ""),
            source_key=f"{PLATFORM}:{uuid.uuid4().hex}",
            may_approve=user.role >= Role.APPROVER,
            role=user.role_name,
        )
        return run_command(argv, ctx, parser=self._parser)

    async def audit(self, user: WebUser, argv: Sequence[str], outcome: str, detail: str) -> None:
        """Append to the audit log (the same one chat commands go to)."""
        import shlex

        entry = AuditEntry(
            platform=PLATFORM,
            chat_id=f"session-{user.session_id}",
            thread_id="",
            user_id=user.principal,
            user_name=None,
            role=user.role_name,
            text=shlex.join(argv),
            outcome=outcome,
            detail=detail,
        )
        try:
            await self.executor.run(self.board.record_audit, entry)
        except Exception:
            # The audit must not turn an answer into a failure; the log says why.
            log.exception("audit write failed", extra={"action": "audit"})


def _ws_subcommand(argv: list[str]) -> str | None:
    after = argv[argv.index("ws") + 1 :]
    return next((word for word in after if not word.startswith("-")), None)


def failed(result: CommandResult, *, status: int = 409) -> ApiError:
    """A failed command as an API error: usage problems are 400, refusals ``status``."""
    message = "; ".join(e.strip().splitlines()[-1] for e in result.errors) or "refused"
    message = message.removeprefix("usage error: ")
    return ApiError(400 if result.exit_code == 2 else status, message)
