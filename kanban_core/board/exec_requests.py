"""Execution requests: a workspace command sent to the enrolled host that holds its files.

A row carries a typed command (``ExecCommand``) with JSON arguments — never a shell string —,
the target host, who asked (platform, user, chat, role) and from which host, a random nonce and
an idempotency key, and its state: pending → running → done | failed, or expired / refused.
Times are the database's clock. The target host claims its own pending rows (proving itself
with its secret, as a task claim does) and spends each nonce in the same transaction, so a
request is run at most once: a row set back to pending, or re-inserted after it was purged,
finds its nonce spent and is refused (and audited). A running row is never claimed again;
after the executor's restart it is reported failed ("interrupted") instead (see the README).

A claim checks a request's expiry before its nonce, so a nonce matters only while a request
carrying it could still be unexpired: gc forgets nonces spent longer ago than the longest
expiry (plus a margin), and finished requests older than the event retention.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from kanban_core.board import events
from kanban_core.board.audit import AuditEntry, record
from kanban_core.board.domain import EventKind, TaskId
from kanban_core.board.exec_records import (
    CLI_PLATFORM,
    FINAL_STATES,
    MAX_REQUEST_EXPIRY_S,
    ExecCommand,
    ExecRequest,
    ExecState,
    Requester,
    WorkspaceHost,
)
from kanban_core.board.hosts import MISSING_AFTER_MS, HostIdentity
from kanban_core.errors import ValidationError
from kanban_core.storage import Query, Transaction

#: The most a request's arguments may weigh (they are chat text, bounded far below this).
MAX_ARGS_BYTES = 64 * 1024
#: Result text kept on the row (the chat reply carries its own, bounded by the platform).
MAX_RESULT_CHARS = 200_000
#: How long gc keeps a spent nonce: a request is claimed before its expiry, at most
#: ``MAX_REQUEST_EXPIRY_S`` after it was made, so once that has passed since the nonce was spent
#: any copy of the request is refused as expired before its nonce is looked at. The margin covers
#: a database clock that steps back.
NONCE_KEEP_MS = (MAX_REQUEST_EXPIRY_S + 86_400) * 1000


_COLUMNS = (
    "r.id, r.command, r.args, r.workspace_id, r.task_id, r.target_host_id, h.name, "
    "r.platform, r.user_id, r.user_name, r.chat_id, r.thread_id, r.role, r.requester_host_id, "
    "r.nonce, r.state, r.result, r.exit_code, r.claimed_by, r.created_ms, r.expires_ms"
)
_FROM = "FROM exec_requests r JOIN hosts h ON h.id = r.target_host_id"
_WS_HOST = Query(
    "exec_ws_host",
    "SELECT h.id, h.name, h.revoked_ms FROM tasks t JOIN hosts h ON h.id = t.host_id "
    "WHERE t.id = :task_id",
)
_INSERT = Query(
    "exec_insert",
    "INSERT INTO exec_requests (command, args, workspace_id, task_id, target_host_id, "
    "requester_host_id, platform, user_id, user_name, chat_id, thread_id, role, nonce, "
    "idempotency_key, state, created_ms, expires_ms) VALUES (:command, :args, :ws, :task_id, "
    ":host_id, :requester_host_id, :platform, :user_id, :user_name, :chat_id, :thread_id, :role, "
    ":nonce, :key, 'pending', {now}, {now} + :ttl_ms) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
)
_BY_KEY = Query("exec_by_key", "SELECT id FROM exec_requests WHERE idempotency_key = :key")
_GET = Query("exec_get", f"SELECT {_COLUMNS} {_FROM} WHERE r.id = :id")
_PENDING = Query(
    "exec_pending",
    "SELECT id, nonce, expires_ms <= {now} FROM exec_requests WHERE target_host_id = :host_id "
    "AND state = 'pending' AND EXISTS (SELECT 1 FROM hosts h WHERE h.id = :host_id "
    "AND h.secret_hash = :secret_hash AND h.revoked_ms IS NULL) "
    "ORDER BY id LIMIT :limit {skip_locked}",
)
_SPEND = Query(
    "exec_spend_nonce",
    "INSERT INTO exec_nonces (nonce, request_id, used_ms) VALUES (:nonce, :id, {now}) "
    "ON CONFLICT (nonce) DO NOTHING",
)
_SPENT_BY = Query("exec_spent_by", "SELECT request_id FROM exec_nonces WHERE nonce = :nonce")
_START = Query(
    "exec_start",
    "UPDATE exec_requests SET state = 'running', claimed_by = :claimer, claimed_ms = {now} "
    "WHERE id = :id AND state = 'pending'",
)
_SETTLE = Query(
    "exec_settle",
    "UPDATE exec_requests SET state = :state, result = :result, exit_code = :exit_code, "
    "reply = :reply, finished_ms = {now} WHERE id = :id AND state = :from_state",
)
_INTERRUPTED = Query(
    "exec_interrupted",
    "SELECT id FROM exec_requests WHERE target_host_id = :host_id AND state = 'running' "
    "AND claimed_by <> :claimer",
)
_OVERDUE = Query(
    "exec_overdue",
    "SELECT r.id, r.state, h.last_seen_ms, h.revoked_ms, {now} FROM exec_requests r "
    "JOIN hosts h ON h.id = r.target_host_id WHERE (r.state = 'pending' AND r.expires_ms <= {now}) "
    "OR (r.state = 'running' AND r.expires_ms <= {now} AND (h.revoked_ms IS NOT NULL "
    "OR h.last_seen_ms IS NULL OR h.last_seen_ms < {now} - :missing_ms)) "
    "ORDER BY r.id LIMIT :limit",
)


_PURGE_NONCES = Query(
    "exec_purge_nonces", "DELETE FROM exec_nonces WHERE used_ms < {now} - :keep_ms"
)
_PURGE_FINISHED = Query(
    "exec_purge_finished",
    "DELETE FROM exec_requests WHERE state IN ('done', 'failed', 'expired', 'refused') "
    "AND finished_ms < :cutoff",
)


_ANY_PENDING = Query(
    "exec_any_pending",
    "SELECT 1 FROM exec_requests WHERE target_host_id = :host_id AND state = 'pending' LIMIT 1",
)
_ANY_OPEN = Query(
    "exec_any_open", "SELECT 1 FROM exec_requests WHERE state IN ('pending', 'running') LIMIT 1"
)


def any_pending(tx: Transaction, host_id: int) -> bool:
    """Whether a request waits for this host (a read, so an idle tick writes nothing)."""
    return tx.fetchone(_ANY_PENDING, {"host_id": host_id}) is not None


def any_open(tx: Transaction) -> bool:
    """Whether any request is pending or running anywhere (the leader's cheap first look)."""
    return tx.fetchone(_ANY_OPEN) is not None


def workspace_host(tx: Transaction, task_id: TaskId) -> WorkspaceHost | None:
    """The host a workspace (by its task) is bound to; None for the implicit host."""
    row = tx.fetchone(_WS_HOST, {"task_id": task_id})
    return None if row is None else WorkspaceHost(int(row[0]), str(row[1]), row[2] is not None)


def workspace_elsewhere(
    tx: Transaction, task_id: TaskId, here: HostIdentity | None
) -> WorkspaceHost | None:
    """The enrolled host holding a workspace's files when that is not ``here`` (this machine's
    enrollment; None: the implicit host); None when its files are on this machine."""
    host = workspace_host(tx, task_id)
    mine = None if here is None else here.host_id
    return None if host is None or host.host_id == mine else host


def create(
    tx: Transaction,
    *,
    command: ExecCommand,
    args: dict[str, Any],
    workspace_id: str,
    task_id: TaskId,
    host: WorkspaceHost,
    requester: Requester,
    key: str,
    ttl_ms: int,
) -> tuple[int, bool]:
    """Queue a request for ``host``; (its id, whether it already existed under ``key``).

    A revoked host is refused at once: nothing would ever take the request.
    """
    if not 0 <= ttl_ms <= MAX_REQUEST_EXPIRY_S * 1000:
        raise ValidationError(
            f"a request's expiry must be between 0 and {MAX_REQUEST_EXPIRY_S} seconds"
        )
    if host.revoked:
        raise ValidationError(
            f"host {host.name!r} was revoked; workspace {workspace_id} lives on its disk and "
            "cannot be reached (an admin may re-enroll it with --readmit)"
        )
    encoded = json.dumps(args, sort_keys=True)
    if len(encoded.encode()) > MAX_ARGS_BYTES:
        raise ValidationError(f"the command's arguments exceed {MAX_ARGS_BYTES // 1024} KiB")
    params = {
        "command": command.value,
        "args": encoded,
        "ws": workspace_id,
        "task_id": task_id,
        "host_id": host.host_id,
        "requester_host_id": requester.host_id,
        "platform": requester.platform,
        "user_id": requester.user_id,
        "user_name": requester.user_name,
        "chat_id": requester.chat_id,
        "thread_id": requester.thread_id,
        "role": requester.role,
        "nonce": secrets.token_hex(16),
        "key": key,
        "ttl_ms": ttl_ms,
    }
    made = tx.fetchone(_INSERT, params)
    if made is not None:
        # The event announces it (PostgreSQL NOTIFY; SQLite's probe): the target wakes at once.
        note = {"request": int(made[0]), "command": command.value, "host": host.name}
        events.append(tx, task_id, EventKind.EXEC_REQUESTED, note, fan_out=False)
        return int(made[0]), False
    return int(tx.scalar(_BY_KEY, {"key": key})), True


def get(tx: Transaction, request_id: int) -> ExecRequest | None:
    """One request, or None."""
    row = tx.fetchone(_GET, {"id": request_id})
    return None if row is None else _request(row)


def claim(
    tx: Transaction, identity: HostIdentity, *, claimer: str, limit: int = 10
) -> list[ExecRequest]:
    """Take this host's pending requests to run: each is returned once, ever.

    Expired ones are marked expired (never run); one whose nonce is already spent is a replay:
    refused and audited.
    """
    params = {"host_id": identity.host_id, "secret_hash": identity.secret_hash, "limit": limit}
    taken = []
    for request_id, nonce, expired in tx.fetchall(_PENDING, params):
        if expired:
            settle(tx, int(request_id), ExecState.EXPIRED, _expired_text(int(request_id), None))
            continue
        if not tx.execute(_SPEND, {"nonce": nonce, "id": request_id}):
            _refuse_replay(tx, int(request_id), nonce)
            continue
        tx.execute(_START, {"id": request_id, "claimer": claimer})
        request = get(tx, int(request_id))
        if request is not None:
            taken.append(request)
    return taken


def settle(
    tx: Transaction,
    request_id: int,
    state: ExecState,
    result: str,
    *,
    exit_code: int | None = None,
    reply: dict[str, Any] | None = None,
) -> bool:
    """Record a request's end and queue its answer to the asking chat; False if already ended.

    ``reply`` is what the chat shows (the surface's own form); without it, the result text.
    """
    assert state in FINAL_STATES
    request = get(tx, request_id)
    if request is None or request.state in FINAL_STATES:
        return False
    body = reply or {"text": result}
    params = {
        "id": request_id,
        "state": state.value,
        "result": result[:MAX_RESULT_CHARS],
        "exit_code": exit_code,
        "reply": json.dumps(body),
        "from_state": request.state.value,
    }
    if not tx.execute(_SETTLE, params):
        return False
    _audit(tx, request, state, result)
    if request.requester.platform != CLI_PLATFORM:
        _enqueue_reply(tx, request, state, body)
    return True


_OUTCOMES = {ExecState.DONE: "allowed", ExecState.REFUSED: "refused"}


def _audit(tx: Transaction, request: ExecRequest, state: ExecState, result: str) -> None:
    """Every request's end is in the audit log: who asked what, from where, run where, and how
    it ended (the row itself keeps the whole result)."""
    who = request.requester
    first = result.strip().splitlines()[0] if result.strip() else ""
    record(
        tx,
        AuditEntry(
            platform=who.platform,
            chat_id=who.chat_id,
            thread_id=who.thread_id,
            user_id=who.user_id,
            user_name=who.user_name,
            role=who.role,
            text=f"/ws {request.command.value} (request {request.id})",
            outcome=_OUTCOMES.get(state, "error"),
            detail=f"{state.value} on host {request.target_host}: {first[:300]}",
        ),
    )


def recover_interrupted(tx: Transaction, host_id: int, *, claimer: str) -> list[int]:
    """Fail the requests this host was running when its gateway stopped (never run twice)."""
    failed = []
    for (request_id,) in tx.fetchall(_INTERRUPTED, {"host_id": host_id, "claimer": claimer}):
        text = (
            f"request {request_id} was interrupted: the gateway running it stopped; it was not "
            "run again because it may have partly happened — check /ws status, then ask again"
        )
        if settle(tx, int(request_id), ExecState.FAILED, text):
            failed.append(int(request_id))
    return failed


def collect(tx: Transaction, *, finished_before_ms: int) -> tuple[int, int]:
    """gc: delete requests finished before the cutoff, and nonces no request can still use.

    Returns (requests, nonces) removed. Pending and running requests are never touched; the
    audit log keeps every request's end after its row is gone.
    """
    requests = tx.execute(_PURGE_FINISHED, {"cutoff": finished_before_ms})
    nonces = tx.execute(_PURGE_NONCES, {"keep_ms": NONCE_KEEP_MS})
    return requests, nonces


def expire_overdue(tx: Transaction, *, limit: int = 100) -> list[int]:
    """Settle requests past their expiry that no host will finish: pending ones (never run),
    and running ones whose host went missing or was revoked. Returns their ids."""
    ended = []
    params = {"missing_ms": MISSING_AFTER_MS, "limit": limit}
    for request_id, state, seen, revoked, now in tx.fetchall(_OVERDUE, params):
        why = _host_condition(seen, revoked, int(now))
        if state == ExecState.PENDING.value:
            outcome, text = ExecState.EXPIRED, _expired_text(int(request_id), why)
        else:
            outcome = ExecState.FAILED
            text = f"request {request_id} is lost: its host {why or 'stopped'} while running it"
        if settle(tx, int(request_id), outcome, text):
            ended.append(int(request_id))
    return ended


def _host_condition(seen: int | None, revoked: int | None, now: int) -> str | None:
    if revoked is not None:
        return "was revoked"
    if seen is None or now - int(seen) > MISSING_AFTER_MS:
        ago = "never" if seen is None else f"{(now - int(seen)) // 1000} s ago"
        return f"is missing (last seen {ago})"
    return None


def _expired_text(request_id: int, why: str | None) -> str:
    cause = f": the host {why}" if why else ": the host did not take it in time"
    return f"request {request_id} expired unrun{cause}"


def _refuse_replay(tx: Transaction, request_id: int, nonce: str) -> None:
    spent_by = tx.scalar(_SPENT_BY, {"nonce": nonce})
    detail = (
        f"exec request {request_id} refused: replay (its nonce was spent by request {spent_by})"
    )
    settle(tx, request_id, ExecState.REFUSED, detail)  # audited there, and the asker told


_DELIVER = Query(
    "exec_reply_delivery",
    "INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status, "
    "attempts, next_try_ms, created_ms) VALUES (:event_id, :task_id, :platform, :chat_id, "
    ":thread_id, 'pending', 0, {now}, {now})",
)


def _enqueue_reply(
    tx: Transaction, request: ExecRequest, state: ExecState, body: dict[str, Any]
) -> None:
    """The answer goes through the outbox: any gateway running the platform sends it."""
    payload = {
        "request": request.id,
        "host": request.target_host,
        "command": request.command.value,
        "state": state.value,
        **body,
    }
    event_id = events.append(tx, request.task_id, EventKind.EXEC_REPLY, payload, fan_out=False)
    who = request.requester
    tx.execute(
        _DELIVER,
        {
            "event_id": event_id,
            "task_id": request.task_id,
            "platform": who.platform,
            "chat_id": who.chat_id,
            "thread_id": who.thread_id,
        },
    )


def _args(raw: str) -> dict[str, Any]:
    """A row's arguments; unreadable ones become one the target refuses (never a crash)."""
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_unreadable": True}
    return value if isinstance(value, dict) else {"_unreadable": True}


def _request(row: Any) -> ExecRequest:
    return ExecRequest(
        id=int(row[0]),
        command=ExecCommand(row[1]),  # the table's CHECK admits only these
        args=_args(row[2]),
        workspace_id=str(row[3]),
        task_id=TaskId(int(row[4])),
        target_host_id=int(row[5]),
        target_host=str(row[6]),
        requester=Requester(
            platform=row[7],
            user_id=row[8],
            user_name=row[9],
            chat_id=row[10],
            thread_id=row[11],
            role=row[12],
            host_id=None if row[13] is None else int(row[13]),
        ),
        nonce=str(row[14]),
        state=ExecState(row[15]),
        result=row[16],
        exit_code=None if row[17] is None else int(row[17]),
        claimed_by=row[18],
        created_ms=int(row[19]),
        expires_ms=int(row[20]),
    )
