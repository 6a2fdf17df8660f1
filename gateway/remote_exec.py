"""Runs the execution requests other hosts sent to this one, each exactly once.

Woken by the change watch (a request is announced as an event) and by a timer, the loop claims
this host's pending requests (the claim spends each nonce), re-checks the requester against this
gateway's own access policy (deny by default), runs the typed command through the same command
tree with the requester's identity, and settles the row with the result; the answer reaches the
asking chat through the outbox, sent by whichever gateway runs that platform. The leader also
ends requests nobody will run (past expiry; host missing or revoked).

A request found running at start was cut off by this gateway's previous life: it is failed as
"interrupted", not run again — a commit, push or agent turn may already have happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor, wait_first
from gateway.messages import ChatUser
from gateway.remote_reply import reply_payload
from kanban_core import Actor, Kanban
from kanban_core.board import exec_requests
from kanban_core.board.exec_records import CLI_PLATFORM, ExecRequest, ExecState
from kanban_core.commands import CommandContext, CommandResult, build_parser, run_command
from kanban_core.commands.render import render_result
from kanban_core.commands.workspace_remote import to_argv
from kanban_core.dispatch.dispatcher import Dispatcher
from kanban_core.errors import KanbanError

log = logging.getLogger(__name__)
#: Without a wake-up, this often (seconds) the loop looks for requests anyway.
TICK_S = 1.0


class ExecLoop:
    """This host's side of execution requests (and, as leader, their expiry)."""

    def __init__(
        self,
        board: Kanban,
        access: AccessPolicy,
        executor: KernelExecutor,
        *,
        claimer: str,
        environ: Mapping[str, str],
        dispatcher: Dispatcher | None = None,
        leader: Callable[[], bool] = lambda: False,
        on_settled: Callable[[], None] = lambda: None,
        on_turn: Callable[[], None] = lambda: None,
    ) -> None:
        self.board = board
        self.access = access
        self.executor = executor
        self.claimer = claimer
        self.environ = dict(environ)
        self.dispatcher = dispatcher
        self.leader = leader
        self.on_settled = on_settled
        self.on_turn = on_turn
        self.tick_s = TICK_S
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._parser = build_parser(prog="/kanban", with_db_option=False, local_verbs=False)

    def nudge(self) -> None:
        """Look for requests now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Recover, then claim and run requests until ``stop``; waits for those in flight."""
        await self.recover()
        while not stop.is_set():
            try:
                await self.pass_once()
            except KanbanError as exc:
                log.error("execution requests: %s", exc, extra={"action": "exec"})
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wait_first(stop.wait(), self._wake.wait()), self.tick_s)
        await self.drain()

    async def recover(self) -> None:
        """At start: fail what this host was running when its gateway stopped."""
        if self.board.host is None:
            return
        failed = await self.executor.run(self._recover)
        if failed:
            log.warning("execution requests interrupted by the last stop: %s", failed)
            self.on_settled()

    async def drain(self) -> None:
        """Wait for the requests being run."""
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    def _recover(self) -> list[int]:
        assert self.board.host is not None
        with self.board.db.transaction(write=True) as tx:
            return exec_requests.recover_interrupted(
                tx, self.board.host.host_id, claimer=self.claimer
            )

    async def pass_once(self) -> None:
        """As leader, end what nobody will run; then claim this host's requests and start them."""
        if self.leader():
            ended = await self.executor.run(self._expire)
            if ended:
                log.info("execution requests ended unrun: %s", ended, extra={"action": "exec"})
                self.on_settled()
        if self.board.host is None:
            return
        for request in await self.executor.run(self._claim):
            task = asyncio.create_task(self._execute(request), name=f"exec:{request.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _expire(self) -> list[int]:
        with self.board.db.transaction(write=False) as tx:
            if not exec_requests.any_open(tx):
                return []
        with self.board.db.transaction(write=True) as tx:
            return exec_requests.expire_overdue(tx)

    def _claim(self) -> list[ExecRequest]:
        assert self.board.host is not None
        with self.board.db.transaction(write=False) as tx:
            if not exec_requests.any_pending(tx, self.board.host.host_id):
                return []
        with self.board.db.transaction(write=True) as tx:
            return exec_requests.claim(tx, self.board.host, claimer=self.claimer)

    async def _execute(self, request: ExecRequest) -> None:
        try:
            state, text, code, reply = await self.executor.run(self._run, request)
        except Exception as exc:
            # Whatever happened, the request ends failed and the asker hears it (never re-run).
            log.exception("execution request %s failed", request.id, extra={"action": "exec"})
            state, text, code, reply = ExecState.FAILED, f"⚠ failed on this host: {exc}", 1, None
        try:
            await self.executor.run(self._settle, request.id, state, text, code, reply)
        except KanbanError:
            log.exception("could not record request %s's result", request.id)
        self.on_settled()

    def _settle(
        self,
        request_id: int,
        state: ExecState,
        text: str,
        code: int | None,
        reply: dict[str, Any] | None,
    ) -> None:
        with self.board.db.transaction(write=True) as tx:
            exec_requests.settle(tx, request_id, state, text, exit_code=code, reply=reply)

    def _run(
        self, request: ExecRequest
    ) -> tuple[ExecState, str, int | None, dict[str, Any] | None]:
        """Authorise here, then run the command; (state, result text, exit code, chat reply)."""
        who = request.requester
        role = self._role(request)
        needed = self.access.needed("ws", request.command.value, None)
        if role is None or needed is None or role < needed:
            why = (
                f"refused on host {request.target_host}: {who.user_id} "
                f"{'is not allowed here' if role is None else 'lacks the role here'}"
            )
            log.warning("execution request %s %s", request.id, why, extra={"action": "exec"})
            return ExecState.REFUSED, why, None, None
        argv = to_argv(request.command, request.args, request.workspace_id)
        ctx = self._context(request, role)
        result = run_command(argv, ctx, parser=self._parser)
        if result.created and who.platform != CLI_PLATFORM:
            for task_id in result.created:
                self.board.subscribe(
                    ctx.actor,
                    task_id,
                    platform=who.platform,
                    chat_id=who.chat_id,
                    thread_id=who.thread_id or None,
                    user_id=who.user_id.partition(":")[2] or None,
                )
            self.on_turn()
        return ExecState.DONE, _text(result), result.exit_code, reply_payload(result)

    def _role(self, request: ExecRequest) -> Role | None:
        """The requester's role by this host's configuration; None: refused."""
        who = request.requester
        if who.platform == CLI_PLATFORM:
            # A terminal on another enrolled host already holds the database; it is trusted as
            # that host's operator only while that host is enrolled and not revoked.
            return Role.APPROVER if self._host_live(who.host_id) else None
        platform, _, user_id = who.user_id.partition(":")
        if not user_id:
            return None
        return self.access.role_of(ChatUser(platform, user_id, who.user_name))

    def _host_live(self, host_id: int | None) -> bool:
        from kanban_core.board import hosts

        with self.board.db.transaction(write=False) as tx:
            return any(h.host_id == host_id and h.revoked_ms is None for h in hosts.list_hosts(tx))

    def _context(self, request: ExecRequest, role: Role) -> CommandContext:
        who = request.requester
        chat = who.platform != CLI_PLATFORM
        principal = who.user_id
        budget = request.args.get("_budget")
        return CommandContext(
            actor=Actor(name=f"{who.user_name} ({principal})" if chat else who.user_name),
            open_board=lambda _url: self.board,
            interactive=False,
            environ=self.environ,
            dispatcher=self.dispatcher,
            principal=principal,
            place=(who.platform, who.chat_id, who.thread_id) if chat else None,
            source_key=f"exec:{request.nonce}",
            may_approve=role >= Role.APPROVER,
            chat_budget=int(budget) if isinstance(budget, int) else None,
            role=role.name.lower(),
            exec_request=request.id,
        )


def _text(result: CommandResult) -> str:
    out, err = render_result(result)
    return "\n".join(part.rstrip("\n") for part in (out, err) if part)
