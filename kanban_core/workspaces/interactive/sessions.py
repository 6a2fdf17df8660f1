"""Sessions and the queue: new conversations, follow-ups, /stop, and running or clearing the queue.

A mixin of :class:`~kanban_core.workspaces.interactive.service.WorkspaceService`; it uses the
service's board and configuration.
"""

from __future__ import annotations

import os
import signal
import uuid
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from kanban_core.board.validation import clean_optional
from kanban_core.errors import InvalidTransition, ValidationError
from kanban_core.workspaces.interactive import approvals, store, tasklink, turns
from kanban_core.workspaces.interactive.layout import new_id
from kanban_core.workspaces.interactive.records import (
    Caller,
    Session,
    SessionState,
    TurnStatus,
    Workspace,
    WorkspaceStatus,
)

if TYPE_CHECKING:
    from kanban_core.board.kanban import Kanban
    from kanban_core.config import KanbanConfig
    from kanban_core.workspaces.interactive.config import WorkspacesConfig

MAX_MESSAGE_BYTES = 64 * 1024


class SessionOps:
    """Conversations with the agent inside a workspace."""

    board: Kanban
    config: KanbanConfig
    cfg: WorkspacesConfig

    def get(self, ws_id: str) -> Workspace:
        """A workspace by id, or a one-line error."""
        with self.board.db.transaction(write=False) as tx:
            found = store.get(tx, ws_id)
        if found is None:
            raise ValidationError(f"no workspace {ws_id!r} (see /ws list)")
        return found

    # -- sessions and the queue -------------------------------------------------------------

    def new_session(
        self, ws: Workspace, caller: Caller, *, name: str | None, executor: str | None
    ) -> Session:
        """Open another conversation with the agent; it becomes the active session."""
        self._refuse_archived(ws)
        executor = executor or ws.executor
        if executor not in self.config.assignees:
            raise ValidationError(f"no agent profile {executor!r}")
        session_id = new_id("sess")
        with store.writing(self.board.db, ws.id) as tx:
            store.insert_session(
                tx,
                session_id=session_id,
                ws_id=ws.id,
                name=name,
                executor=executor,
                agent_session_id=str(uuid.uuid4()),
            )
            store.set_field(tx, ws.id, "active_session_id", session_id)
            approvals.audit(
                tx,
                ws_id=ws.id,
                op="new-session",
                principal=caller.principal,
                outcome="ok",
                detail=session_id,
            )
            found = store.session(tx, session_id)
        assert found is not None
        return found

    def sessions(self, ws: Workspace) -> list[tuple[Session, SessionState, int]]:
        """Each session with its derived state and message count."""
        with self.board.db.transaction(write=False) as tx:
            out = []
            for session in store.sessions(tx, ws.id):
                latest = store.session_turns(tx, session.id, limit=1)
                state = SessionState.IDLE
                if latest and latest[0].status in (TurnStatus.PENDING, TurnStatus.RUNNING):
                    state = SessionState.RUNNING
                elif any(a for a in approvals.pending(tx, ws.id)) or session.queue_paused:
                    state = SessionState.NEEDS_ATTENTION
                elif latest and latest[0].status is TurnStatus.FAILED:
                    state = SessionState.ERROR
                out.append((session, state, store.message_count(tx, session.id)))
            return out

    def session_of(self, ws: Workspace, ref: str | None) -> Session:
        """A session by position (1, 2 …) or id; the active one when not named."""
        with self.board.db.transaction(write=False) as tx:
            all_sessions = store.sessions(tx, ws.id)
        wanted = ref or ws.active_session_id
        for session in all_sessions:
            if wanted in (session.id, str(session.position)):
                return session
        raise ValidationError(f"{ws.id} has no session {ref!r} (see /sessions)")

    def use_session(self, ws: Workspace, ref: str) -> Session:
        """Make a session the active one (its history is untouched)."""
        session = self.session_of(ws, ref)
        with store.writing(self.board.db, ws.id) as tx:
            store.set_field(tx, ws.id, "active_session_id", session.id)
        return session

    def history(self, session: Session, *, limit: int = 20) -> list[Any]:
        """The latest lines of a session's conversation."""
        with self.board.db.transaction(write=False) as tx:
            return list(store.messages(tx, session.id, limit=limit))

    def follow_up(
        self, ws: Workspace, caller: Caller, text: str, *, executor: str | None = None
    ) -> turns.TurnRequest:
        """Send the agent a message in the active session: now, or queued behind its run."""
        self._refuse_archived(ws)
        text = clean_optional(text, field="message", max_bytes=MAX_MESSAGE_BYTES) or ""
        if not text.strip():
            raise ValidationError("the message is empty")
        if ws.status is WorkspaceStatus.INITIALIZING:
            raise InvalidTransition(f"{ws.id} is still being created")
        session = self.session_of(ws, None)
        if executor is not None and executor != session.executor:
            raise ValidationError(
                f"session {session.position} talks to {session.executor}, not {executor}; "
                f"start one with /new-session --executor {executor}"
            )
        with store.writing(self.board.db, ws.id) as tx:
            return turns.request(
                tx,
                ws,
                session,
                text=text,
                principal=caller.name,
                source_key=caller.source_key,
                max_queue=self.cfg.queue_max_per_session,
            )

    def stop(self, ws: Workspace, caller: Caller) -> str:
        """Stop the running (or waiting) turn; its queue pauses until someone chooses."""
        reason = f"stopped by {caller.name}"
        signal_pid: int | None = None
        here = self.board.host.host_id if self.board.host is not None else None
        with store.writing(self.board.db, ws.id) as tx:
            turn = store.active_turn(tx, ws.id)
            if turn is None:
                return f"{ws.id}: nothing is running"
            waiting = len(store.queued(tx, turn.session_id))
            notice = tasklink.stop_notice(reason, by=caller.name, ws_id=ws.id, queued=waiting)
            current = tasklink.current_run(tx, ws.task_id)
            if current is not None:
                tasklink.stop_run(tx, ws.task_id, current.run_id, notice)
                signal_pid = current.pid if current.signalable(here) else None
            else:
                tasklink.park(tx, ws.task_id, notice)
            store.end_turn(tx, turn.id, TurnStatus.CANCELLED, reason, None)
            store.add_message(tx, turn.session_id, "system", caller.name, reason, turn.id)
            store.set_status(tx, ws.id, WorkspaceStatus.PAUSED, reason)
            if waiting:
                store.set_paused(tx, turn.session_id, reason)
            approvals.audit(
                tx, ws_id=ws.id, op="stop", principal=caller.principal, outcome="ok", detail=turn.id
            )
        if signal_pid is not None:
            # The supervisor stops the agent's whole process group (SIGTERM, then SIGKILL
            # after the grace period); elsewhere its next heartbeat finds the run ended.
            with suppress(ProcessLookupError, PermissionError):
                os.kill(signal_pid, signal.SIGTERM)
        return f"{ws.id}: stopped turn {turn.id}"

    def queue(self, ws: Workspace) -> list[tuple[Session, list[Any]]]:
        """Each session with its queued follow-ups."""
        with self.board.db.transaction(write=False) as tx:
            return [(s, store.queued(tx, s.id)) for s in store.sessions(tx, ws.id)]

    def queue_run(self, ws: Workspace, caller: Caller) -> str | None:
        """Resume paused queues and start the next follow-up; returns the started turn."""
        with store.writing(self.board.db, ws.id) as tx:
            for session in store.sessions(tx, ws.id):
                store.set_paused(tx, session.id, None)
            fresh = store.get(tx, ws.id)
            assert fresh is not None
            approvals.audit(
                tx, ws_id=ws.id, op="queue-run", principal=caller.principal, outcome="ok"
            )
            return turns.advance(tx, fresh)

    def queue_clear(self, ws: Workspace, caller: Caller) -> int:
        """Cancel every queued follow-up (each was shown to the chat; none runs)."""
        cleared = 0
        with store.writing(self.board.db, ws.id) as tx:
            for session in store.sessions(tx, ws.id):
                for item in store.queued(tx, session.id):
                    cleared += store.set_queued_state(tx, item.id, "cancelled")
                store.set_paused(tx, session.id, None)
            approvals.audit(
                tx,
                ws_id=ws.id,
                op="queue-clear",
                principal=caller.principal,
                outcome="ok",
                detail=f"{cleared} cancelled",
            )
        return cleared

    # -- helpers ----------------------------------------------------------------------------

    def _simple(self, ws: Workspace, caller: Caller, op: str, change: Any) -> None:
        with store.writing(self.board.db, ws.id) as tx:
            change(tx)
            approvals.audit(tx, ws_id=ws.id, op=op, principal=caller.principal, outcome="ok")

    def _refuse_running(self, ws: Workspace, verb: str) -> None:
        with self.board.db.transaction(write=False) as tx:
            active = store.active_turn(tx, ws.id)
        if active is not None:
            raise InvalidTransition(
                f"{ws.id} is running turn {active.id}; /stop it first, then {verb}"
            )

    def _refuse_archived(self, ws: Workspace) -> None:
        if ws.archived:
            raise InvalidTransition(f"{ws.id} is archived; /ws unarchive {ws.id} first")
