"""Agent turns: each is one run of the workspace's task; follow-ups queue behind a running turn.

A turn is requested (pending, the task made ready), started by the worker supervisor when the
dispatcher hands it the task (bound to the run, HEADs recorded), and ended exactly once when
the run ends — by the supervisor, or by the gateway's settle pass when the supervisor died. On
success the session's next queued follow-up starts; on failure the queue pauses and the
workspace's chats are told, with buttons to run the next one or clear them (never dropped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_core.board import events
from kanban_core.board.domain import EventKind, RunId, TaskId
from kanban_core.board.exec_requests import workspace_elsewhere
from kanban_core.board.kanban import Kanban
from kanban_core.errors import KanbanError
from kanban_core.profiles import worker_prompt
from kanban_core.storage import Transaction
from kanban_core.workspaces.gitops.runner import GitOpError, run_git
from kanban_core.workspaces.interactive import store, tasklink
from kanban_core.workspaces.interactive.layout import new_id
from kanban_core.workspaces.interactive.records import (
    Session,
    Turn,
    TurnStatus,
    Workspace,
    WorkspaceStatus,
)

MAX_MESSAGE_CHARS = 20_000
_RESUMED_PROMPT = "(continue the task: it was made ready again from the board)"


class QueueFull(KanbanError):
    """The session already has the most follow-ups it may queue."""


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """What asking the agent something did: started a turn, or queued the message."""

    turn_id: str | None
    position: int | None  # place in the session's queue (1 = next)
    paused: bool  # the queue is paused: the message waits for /queue run
    duplicate: bool  # the same chat message was seen before


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What the supervisor needs to run a turn."""

    turn: Turn
    session: Session
    workspace: Workspace
    cwd: Path
    prompt: str
    env: dict[str, str]
    resume: bool
    notes: tuple[str, ...]


# -- requesting ------------------------------------------------------------------------------


def request(
    tx: Transaction,
    ws: Workspace,
    session: Session,
    *,
    text: str,
    principal: str,
    source_key: str | None,
    max_queue: int,
) -> TurnRequest:
    """Start a turn now, or queue the message behind the running one (durably)."""
    if source_key is not None:
        if (seen := store.turn_by_key(tx, source_key)) is not None:
            return TurnRequest(seen.id, None, False, True)
        if (queued := store.queued_by_key(tx, source_key)) is not None:
            return TurnRequest(None, queued.id, False, True)
    waiting = store.queued(tx, session.id)
    if store.active_turn(tx, ws.id) is not None or waiting or session.queue_paused:
        if len(waiting) >= max_queue:
            raise QueueFull(
                f"session {session.position} already has {len(waiting)} queued follow-ups "
                f"(the limit); wait, or /queue clear"
            )
        store.enqueue(tx, session.id, text, principal, source_key)
        return TurnRequest(None, len(waiting) + 1, session.queue_paused, False)
    turn_id = start(tx, ws, session, prompt=text, principal=principal, source_key=source_key)
    return TurnRequest(turn_id, None, False, False)


def start(
    tx: Transaction,
    ws: Workspace,
    session: Session,
    *,
    prompt: str,
    principal: str,
    source_key: str | None,
) -> str:
    """Record a pending turn and make the task ready for the dispatcher."""
    turn_id = new_id("proc")
    store.insert_turn(
        tx,
        turn_id=turn_id,
        ws=ws,
        session_id=session.id,
        prompt=prompt,
        requested_by=principal,
        source_key=source_key,
    )
    store.add_message(tx, session.id, "user", principal, prompt, turn_id)
    tasklink.reopen_for_turn(tx, ws.task_id, session.executor)
    store.set_status(tx, ws.id, WorkspaceStatus.RUNNING)
    return turn_id


def advance(tx: Transaction, ws: Workspace) -> str | None:
    """Start the oldest queued follow-up of an unpaused session if nothing is running."""
    if ws.archived or store.active_turn(tx, ws.id) is not None:
        return None
    sessions = {s.id: s for s in store.sessions(tx, ws.id)}
    for item in store.queued_in_workspace(tx, ws.id):
        session = sessions.get(item.session_id)
        if session is None or session.queue_paused:
            continue
        if not store.set_queued_state(tx, item.id, "started"):
            continue
        return start(tx, ws, session, prompt=item.text, principal=item.principal, source_key=None)
    return None


# -- running (in the worker supervisor) ------------------------------------------------------


def begin(board: Kanban, task_id: TaskId, run_id: RunId) -> TurnContext | None:
    """Bind the workspace's pending turn to this run; None when the task has no workspace."""
    from kanban_core.workspaces.interactive.repair import ensure_worktrees

    with board.db.transaction(write=False) as tx:
        ws = store.by_task(tx, task_id)
    if ws is None:
        return None
    try:
        notes = ensure_worktrees(board, ws)
    except KanbanError as exc:
        # The supervisor records this run's failure next, but the turn was never bound to the
        # run: end it here, or it stays pending for ever and the queue stalls behind it.
        with store.writing(board.db, ws.id) as tx:
            pending = store.active_turn(tx, ws.id)
            if pending is not None and pending.status is TurnStatus.PENDING:
                reason = f"the workspace could not be prepared: {exc}"
                if store.end_turn(tx, pending.id, TurnStatus.FAILED, reason, None):
                    text = f"(failed) {reason}"
                    store.add_message(
                        tx, pending.session_id, "assistant", "agent", text, pending.id
                    )
                    _after_failure(tx, ws, pending, TurnStatus.FAILED, reason, [])
        raise
    heads = _snapshot(ws)
    with store.writing(board.db, ws.id) as tx:
        current = tasklink.current_run(tx, task_id)
        if current is None or current.run_id != run_id:
            # A /stop (or a reclaim) ended the run between the claim and this start: no turn.
            raise KanbanError(f"run {run_id} of t{task_id} already ended; no turn started")
        turn = store.active_turn(tx, ws.id)
        if turn is None or turn.status is not TurnStatus.PENDING:
            # Made ready from the board (an unblock), not by a message: a person's queued
            # message goes first; only with none does the agent continue the task.
            turn = _unblocked_turn(tx, ws)
        if not store.start_turn(tx, turn.id, run_id, heads):
            raise KanbanError(f"turn {turn.id} is no longer pending")
        bound = store.session(tx, turn.session_id)
        assert bound is not None
        session = bound
        store.set_status(tx, ws.id, WorkspaceStatus.RUNNING)
        for note in notes:
            notify(tx, ws, note)
        # Resume only an agent session an earlier turn really started: a turn stopped while
        # pending, or whose agent failed to start, never reached it, and `--resume` of an
        # unknown session fails.
        resume = store.started_turns(tx, session.id) > 1
    return TurnContext(
        turn=turn,
        session=session,
        workspace=ws,
        cwd=_agent_cwd(ws),
        prompt=_prompt(board, ws, session, turn),
        env={
            "KANBAN_WORKSPACE_ID": ws.id,
            "KANBAN_WORKSPACE_BRANCH": ws.branch,
            "KANBAN_SESSION_ID": session.id,
            "KANBAN_AGENT_SESSION_ID": session.agent_session_id,
            "KANBAN_TURN_ID": turn.id,
            "KANBAN_RESUME": "1" if resume else "0",
        },
        resume=resume,
        notes=tuple(notes),
    )


#: The longest ACP session id kept (the agent chooses it; a longer one is not resumed).
MAX_ACP_SESSION_CHARS = 200


def remember_acp_session(board: Kanban, session: Session, acp_session_id: str) -> bool:
    """Keep the ACP agent's id of ``session`` for its next turn; False when it cannot be kept."""
    if not acp_session_id or len(acp_session_id) > MAX_ACP_SESSION_CHARS:
        return False
    with board.db.transaction(write=True) as tx:
        store.set_acp_session(tx, session.id, acp_session_id)
    return True


def finish(board: Kanban, run_id: RunId) -> bool:
    """End the turn of a run that ended; True when this call wrote its terminal state."""
    with board.db.transaction(write=False) as tx:
        turn = store.turn_by_run(tx, run_id)
        ws = None if turn is None else store.get(tx, turn.workspace_id)
    if turn is None or ws is None or turn.status is not TurnStatus.RUNNING:
        return False
    after = _snapshot(ws)
    alerts = _escapes(ws, turn.before_heads, after)
    with store.writing(board.db, ws.id) as tx:
        return settle_turn(tx, ws, turn, after, alerts)


def settle_turn(
    tx: Transaction, ws: Workspace, turn: Turn, after: dict[str, str], alerts: list[str]
) -> bool:
    """Write the turn's end once, from its run's outcome; advance or pause the queue.

    The caller's transaction holds the workspace row lock (``store.writing``).
    """
    assert turn.run_id is not None
    ended = tasklink.run_end(tx, turn.run_id)
    if ended is None:
        return False  # the run is still open; its verdict comes later
    outcome, summary, error = ended
    status = {
        "completed": TurnStatus.COMPLETED,
        "cancelled": TurnStatus.CANCELLED,
    }.get(outcome or "", TurnStatus.FAILED)
    reason = None if status is TurnStatus.COMPLETED else (error or outcome or "failed")
    if outcome == "blocked":
        reason = f"the agent asked for help: {summary or error or 'see the task'}"
    if not store.end_turn(tx, turn.id, status, reason, after):
        return False
    reply = summary if status is TurnStatus.COMPLETED else f"({outcome}) {reason}"
    store.add_message(tx, turn.session_id, "assistant", "agent", reply or "(no summary)", turn.id)
    if status is TurnStatus.COMPLETED:
        store.set_status(tx, ws.id, WorkspaceStatus.READY)
        advance(tx, ws)
        for text in alerts:
            notify(tx, ws, text)
    else:
        _after_failure(tx, ws, turn, status, reason or "failed", alerts)
    return True


def _after_failure(
    tx: Transaction, ws: Workspace, turn: Turn, status: TurnStatus, reason: str, alerts: list[str]
) -> None:
    """A turn failed or was cancelled: the workspace says so and its queue waits for a person."""
    new = WorkspaceStatus.PAUSED if status is TurnStatus.CANCELLED else WorkspaceStatus.FAILED
    store.set_status(tx, ws.id, new, reason)
    notices = list(alerts)
    waiting = store.queued(tx, turn.session_id)
    if waiting:
        store.set_paused(tx, turn.session_id, f"turn {turn.id} {status.value}: {reason}")
        notices.append(
            f"{ws.id}: the agent's turn {status.value}; {len(waiting)} queued follow-up(s) "
            "paused — nothing runs until you choose."
        )
    for text in notices:
        notify(tx, ws, text, queue_buttons=True)


def notify(tx: Transaction, ws: Workspace, text: str, *, queue_buttons: bool = False) -> None:
    """Tell the workspace's chats something (through the durable notification outbox)."""
    payload: dict[str, Any] = {"text": text, "workspace": ws.id}
    if queue_buttons:
        payload["buttons"] = [
            ["Run next", f"k:queue run --ws {ws.id}"],
            ["Clear queue", f"k:queue clear --ws {ws.id}"],
        ]
    events.append(tx, ws.task_id, EventKind.WORKSPACE_NOTICE, payload)


def settle_all(board: Kanban, *, limit: int = 50) -> int:
    """Settle turns whose supervisor died, then start queued follow-ups that can run.

    A turn is settled by the gateway of its workspace's host (settling reads the worktree), or
    by any gateway once that host is revoked.
    """
    done = 0
    with board.db.transaction(write=False) as tx:
        orphaned = store.turns_with_ended_runs(tx, limit=limit)
        stranded = store.stranded_turns(tx, limit=limit)
        queued_ws = store.workspaces_with_queue(tx)
    for turn in stranded:
        with store.writing(board.db, turn.workspace_id) as tx:
            if (ws := store.get(tx, turn.workspace_id)) is None:
                continue
            reason = "its task left the ready queue before a worker started it"
            if store.end_turn(tx, turn.id, TurnStatus.FAILED, reason, None):
                _after_failure(tx, ws, turn, TurnStatus.FAILED, reason, [])
                done += 1
    for turn in orphaned:
        with board.db.transaction(write=False) as tx:
            ws = store.get(tx, turn.workspace_id)
            host = None if ws is None else workspace_elsewhere(tx, ws.task_id, board.host)
        if ws is None:
            continue
        if host is None:
            after = _snapshot(ws)
            alerts = _escapes(ws, turn.before_heads, after)
        elif host.revoked:
            # Its disk is out of reach for good: settle from the run alone, reading nothing
            # here (this machine's files at those paths are not what the agent left).
            after, alerts = {}, []
        else:
            continue  # the worktree is on that host's disk: its own gateway settles the turn
        with store.writing(board.db, ws.id) as tx:
            done += settle_turn(tx, ws, turn, after, alerts)
    for ws_id in queued_ws:
        with store.writing(board.db, ws_id) as tx:
            if (ws := store.get(tx, ws_id)) is None:
                continue
            done += advance(tx, ws) is not None
    return done


# -- helpers ---------------------------------------------------------------------------------


def _unblocked_turn(tx: Transaction, ws: Workspace) -> Turn:
    """The turn for a task made ready from the board: the oldest queued message, else a resume.

    Unblocking is a person choosing to go on, so a queue paused by a stop or a failure resumes
    with what they asked for; a synthetic prompt never jumps ahead of it.
    """
    sessions = {s.id: s for s in store.sessions(tx, ws.id)}
    for item in store.queued_in_workspace(tx, ws.id):
        session = sessions.get(item.session_id)
        if session is None or not store.set_queued_state(tx, item.id, "started"):
            continue
        store.set_paused(tx, session.id, None)
        prompt, principal, session_id, asked = item.text, item.principal, session.id, True
        break
    else:
        prompt, principal, session_id = _RESUMED_PROMPT, "board", _active_session(tx, ws).id
        asked = False
    turn_id = new_id("proc")
    store.insert_turn(
        tx,
        turn_id=turn_id,
        ws=ws,
        session_id=session_id,
        prompt=prompt,
        requested_by=principal,
        source_key=None,
    )
    if asked:
        store.add_message(tx, session_id, "user", principal, prompt, turn_id)
    turn = store.turn(tx, turn_id)
    assert turn is not None
    return turn


def _active_session(tx: Transaction, ws: Workspace) -> Session:
    sessions = store.sessions(tx, ws.id)
    return next((s for s in sessions if s.id == ws.active_session_id), sessions[-1])


def _agent_cwd(ws: Workspace) -> Path:
    # One repository: the agent works in it. Several: in the container holding all of them.
    return ws.repos[0].worktree if len(ws.repos) == 1 else ws.container


def _prompt(board: Kanban, ws: Workspace, session: Session, turn: Turn) -> str:
    task = board.get(ws.task_id)
    repos = ", ".join(
        f"{r.slug}/ (branch {r.branch}{'' if r.enabled else ', READ-ONLY: do not change it'})"
        for r in ws.repos
    )
    where = (
        f"You are in workspace {ws.id}; the repositories are the directories {repos}."
        if len(ws.repos) > 1
        else f"You are in workspace {ws.id}, a git worktree on branch {ws.branch}."
    )
    return (
        f"{worker_prompt(task)}\n\n{where} Do not commit, push or open pull requests: the "
        f"person reviews and does that from chat.\n\nSession {session.position} "
        f"({session.name or 'unnamed'}), message from {turn.requested_by}:\n{turn.prompt}"
    )


def _snapshot(ws: Workspace) -> dict[str, str]:
    """Per repo: the worktree's HEAD, a digest of the source checkout, the branch's remote refs."""
    heads: dict[str, str] = {}
    for repo in ws.repos:
        heads[repo.slug] = _git_text(repo.worktree, "rev-parse", "--verify", "-q", "HEAD")
        source = _git_text(repo.source, "status", "--porcelain=v2", "-z", "--untracked-files=all")
        source += _git_text(repo.source, "rev-parse", "HEAD")
        heads[f"{repo.slug}:source"] = hashlib.sha256(source.encode()).hexdigest()
        heads[f"{repo.slug}:remote"] = _git_text(
            repo.source,
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            f"refs/remotes/*/{repo.branch}",
        )
    return heads


def _escapes(ws: Workspace, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Alerts for what an agent must not do: touch the source checkout, push by itself."""
    alerts = []
    for repo in ws.repos:
        key = f"{repo.slug}:source"
        if key in before and before[key] != after.get(key):
            changed = _git_text(repo.source, "status", "--porcelain", "--untracked-files=all")
            alerts.append(
                f"⚠ {ws.id}: the agent changed your own checkout of {repo.slug} at "
                f"{repo.source} (not the workspace): {changed.strip()[:500] or 'HEAD moved'}"
            )
        key = f"{repo.slug}:remote"
        if key in before and before[key] != after.get(key):
            alerts.append(
                f"⚠ {ws.id}: the remote branch {repo.branch} of {repo.slug} changed during the "
                "agent's turn — did the agent push by itself?"
            )
    return alerts


def _git_text(where: Path, *args: str) -> str:
    try:
        return run_git(where, *args, check=False).text.strip()
    except GitOpError:
        return ""
