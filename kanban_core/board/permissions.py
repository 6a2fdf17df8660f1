"""Permission requests: an agent's run asks a person before using a tool; first answer wins.

A request is tied to the run that asked. It is answerable only while it is pending, not past its
expiry, and its run is still the task's current one; the answering UPDATE carries all three
conditions, so two people answering at once cannot both win. Expiry counts as a denial.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kanban_core.board import events
from kanban_core.board.domain import (
    EventKind,
    PermissionDecision,
    PermissionRequest,
    PermissionStatus,
    RunId,
    RunProof,
    TaskId,
    format_permission_ref,
    format_run_id,
    format_task_id,
)
from kanban_core.board.rows import hash_token
from kanban_core.errors import PermissionDenied, StaleRun, ValidationError
from kanban_core.storage import Query, Transaction

MAX_SUMMARY_CHARS = 500
MAX_DETAIL_CHARS = 4000
#: The event (and so the chat card) carries a shorter detail than the row keeps.
MAX_EVENT_DETAIL_CHARS = 1000
MAX_TOOL_CHARS = 200
MAX_PATHS = 50

_COLUMNS = (
    "id, task_id, run_id, tool_kind, tool_name, summary, detail, paths, status, decision, "
    "answered_by, reason, created_ms, expires_ms, answered_ms"
)
_CURRENT_RUN = (
    "EXISTS (SELECT 1 FROM tasks t WHERE t.id = permission_requests.task_id "
    "AND t.status = 'running' AND t.current_run_id = permission_requests.run_id)"
)
_INSERT = Query(
    "insert_permission_request",
    "INSERT INTO permission_requests (task_id, run_id, tool_kind, tool_name, summary, detail, "
    "paths, status, created_ms, expires_ms) SELECT t.id, r.id, :tool_kind, :tool_name, :summary, "
    ":detail, :paths, 'pending', {now}, {now} + :ttl_ms FROM tasks t "
    "JOIN task_runs r ON r.id = t.current_run_id "
    "WHERE t.id = :task_id AND t.status = 'running' AND t.current_run_id = :run_id "
    "AND r.token_hash = :token_hash AND r.ended_ms IS NULL "
    f"RETURNING {_COLUMNS}",
)
_ANSWER = Query(
    "answer_permission_request",
    "UPDATE permission_requests SET status = :status, decision = :decision, "
    "answered_by = :by, reason = :reason, answered_ms = {now} "
    "WHERE id = :id AND status = 'pending' AND expires_ms > {now} "
    f"AND {_CURRENT_RUN} RETURNING {_COLUMNS}",
)
_GET = Query(
    "get_permission_request",
    f"SELECT {_COLUMNS}, {{now}} FROM permission_requests WHERE id = :id",
)
_OPEN = Query(
    "open_permission_requests",
    f"SELECT {_COLUMNS} FROM permission_requests {{index:ix_permission_requests_pending}} "
    "WHERE status = 'pending' AND expires_ms > {now} ORDER BY id LIMIT :limit",
)
_OPEN_FOR_TASK = Query(
    "open_permission_requests_of_task",
    f"SELECT {_COLUMNS} FROM permission_requests WHERE task_id = :task_id "
    "AND status = 'pending' AND expires_ms > {now} ORDER BY id",
)
_GRANTS = Query(
    "permission_grants_of_run",
    "SELECT DISTINCT tool_kind, tool_name FROM permission_requests "
    "WHERE run_id = :run_id AND status = 'allowed' AND decision = 'allow_run' "
    "ORDER BY tool_kind, tool_name",
)
_EXPIRE = Query(
    "expire_permission_requests",
    "UPDATE permission_requests SET status = 'expired', answered_ms = {now} "
    "WHERE id IN (SELECT id FROM permission_requests {index:ix_permission_requests_pending} "
    "WHERE status = 'pending' AND expires_ms <= {now} ORDER BY expires_ms LIMIT :limit) "
    "AND status = 'pending' RETURNING id, task_id, run_id, tool_name, summary",
)
_EXPIRE_ONE = Query(
    "expire_permission_request",
    "UPDATE permission_requests SET status = 'expired', answered_ms = {now} "
    "WHERE id = :id AND status = 'pending' AND expires_ms <= {now} "
    "RETURNING task_id, run_id, tool_name, summary",
)
#: One indexed look a housekeeping pass makes before it opens a write transaction.
ANY_OVERDUE = Query(
    "any_overdue_permission_request",
    "SELECT 1 FROM permission_requests {index:ix_permission_requests_pending} "
    "WHERE status = 'pending' AND expires_ms <= {now} LIMIT 1",
)
_CANCEL_ONE = Query(
    "cancel_permission_request",
    "UPDATE permission_requests SET status = 'cancelled', answered_ms = {now} "
    "WHERE id = :id AND status = 'pending'",
)
_CANCEL_FOR_RUN = Query(
    "cancel_permission_requests_of_run",
    "UPDATE permission_requests SET status = 'cancelled', answered_ms = {now} "
    "WHERE run_id = :run_id AND status = 'pending'",
)
#: One indexed read over the pending rows, for ``list``'s marks (pending rows are few).
WAITING = Query(
    "tasks_waiting_permission",
    "SELECT task_id, id FROM permission_requests {index:ix_permission_requests_pending} "
    "WHERE status = 'pending' AND expires_ms > {now} ORDER BY id",
)

_PAST_TENSE = {
    PermissionDecision.ALLOW_ONCE: "allowed",
    PermissionDecision.ALLOW_RUN: "allowed for the rest of its run",
    PermissionDecision.DENY: "denied",
}


@dataclass(frozen=True, slots=True)
class NewRequest:
    """What a run asks for, already cleaned."""

    tool_kind: str
    tool_name: str
    summary: str
    detail: str | None
    paths: tuple[str, ...]
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class AnswerOutcome:
    """What answering did: the request as it now stands, and why the answer was refused."""

    request: PermissionRequest
    refusal: str | None = None


def bounded(text: str | None, limit: int) -> str | None:
    """Text made storable and displayable: no NUL or other control characters, at most ``limit``
    characters (cut with an ellipsis), blank → None. An agent's tool input is not refused for
    being long or odd; it is shown shortened."""
    if text is None:
        return None
    cleaned = "".join(
        ch if ch in "\n\t" or (ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF) else "\ufffd"
        for ch in text.replace("\r\n", "\n")
    ).strip()
    if not cleaned:
        return None
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def request(
    tx: Transaction, proof: RunProof, task_id: TaskId, new: NewRequest
) -> PermissionRequest:
    """Record a pending request of the task's current run, and tell the task's chats."""
    if proof.task_id != task_id:
        raise PermissionDenied(
            f"this worker is scoped to {format_task_id(proof.task_id)}; "
            f"refusing to ask for {format_task_id(task_id)}"
        )
    row = tx.fetchone(
        _INSERT,
        {
            "task_id": task_id,
            "run_id": proof.run_id,
            "token_hash": hash_token(proof.token),
            "tool_kind": new.tool_kind,
            "tool_name": new.tool_name,
            "summary": new.summary,
            "detail": new.detail,
            "paths": json.dumps(list(new.paths)) if new.paths else None,
            "ttl_ms": new.ttl_ms,
        },
    )
    if row is None:
        raise StaleRun(
            f"refused to ask for {format_task_id(task_id)}: run {format_run_id(proof.run_id)} is "
            "not its current attempt or its token does not match; nothing was recorded"
        )
    made = from_row(row)
    events.append(
        tx,
        task_id,
        EventKind.PERMISSION_REQUESTED,
        {
            "ref": made.ref,
            "tool": made.tool_name,
            "tool_kind": made.tool_kind,
            "summary": made.summary,
            "detail": bounded(made.detail, MAX_EVENT_DETAIL_CHARS),
            "expires_ms": made.expires_ms,
        },
        proof.run_id,
    )
    return made


def answer(
    tx: Transaction,
    request_id: int,
    decision: PermissionDecision,
    *,
    by: str,
    reason: str | None,
) -> AnswerOutcome:
    """The first answer wins; a later one, or one too late, is refused with what happened.

    A refusal is returned, not raised, so what it found out (an expiry, a cancellation) is
    recorded in the same transaction.
    """
    status = PermissionStatus.DENIED if decision is PermissionDecision.DENY else None
    row = tx.fetchone(
        _ANSWER,
        {
            "id": request_id,
            "status": (status or PermissionStatus.ALLOWED).value,
            "decision": decision.value,
            "by": by,
            "reason": reason,
        },
    )
    if row is not None:
        answered = from_row(row)
        events.append(
            tx,
            answered.task_id,
            EventKind.PERMISSION_ANSWERED,
            {
                "ref": answered.ref,
                "decision": decision.value,
                "by": by,
                "reason": reason,
                "tool": answered.tool_name,
                "summary": answered.summary,
            },
            answered.run_id,
        )
        return AnswerOutcome(answered)
    current, overdue = _get_with_clock(tx, request_id)
    ref = current.ref
    if current.status is PermissionStatus.PENDING and overdue:
        return AnswerOutcome(_expire_one(tx, current), f"{ref} expired unanswered")
    if current.status is PermissionStatus.PENDING:
        tx.execute(_CANCEL_ONE, {"id": request_id})
        return AnswerOutcome(
            get(tx, request_id), f"{ref} can no longer be answered: the run that asked has ended"
        )
    return AnswerOutcome(current, refusal_for(current))


def refusal_for(current: PermissionRequest) -> str:
    """Why a request that is no longer pending cannot be answered."""
    ref = current.ref
    if current.status is PermissionStatus.EXPIRED:
        return f"{ref} expired unanswered"
    if current.status is PermissionStatus.CANCELLED:
        return f"{ref} can no longer be answered: the run that asked has ended"
    assert current.decision is not None
    who = current.answered_by or "someone"
    return f"{ref} was already {_PAST_TENSE[current.decision]} by {_at(who)}"


def get(tx: Transaction, request_id: int) -> PermissionRequest:
    """One request, or a ValidationError naming the ref."""
    return _get_with_clock(tx, request_id)[0]


def look(tx: Transaction, request_id: int) -> tuple[PermissionRequest, int]:
    """A request and the database clock (epoch ms) it was read at."""
    row = tx.fetchone(_GET, {"id": request_id})
    if row is None:
        raise ValidationError(f"no such permission request: {format_permission_ref(request_id)}")
    return from_row(row), int(row[-1])


def open_requests(
    tx: Transaction, task_id: TaskId | None = None, *, limit: int = 200
) -> list[PermissionRequest]:
    """Pending requests not yet past their expiry, oldest first."""
    if task_id is not None:
        return [from_row(row) for row in tx.fetchall(_OPEN_FOR_TASK, {"task_id": task_id})]
    return [from_row(row) for row in tx.fetchall(_OPEN, {"limit": limit})]


def waiting_by_task(rows: Iterable[tuple[Any, ...]]) -> dict[TaskId, list[str]]:
    """The refs of answerable requests, by task, from ``WAITING``'s rows."""
    out: dict[TaskId, list[str]] = {}
    for task_id, request_id in rows:
        out.setdefault(TaskId(task_id), []).append(format_permission_ref(request_id))
    return out


def run_grants(tx: Transaction, run_id: RunId) -> list[tuple[str, str]]:
    """The (tool kind, tool name) pairs a person allowed for the rest of this run."""
    return [(str(kind), str(name)) for kind, name in tx.fetchall(_GRANTS, {"run_id": run_id})]


def expire(tx: Transaction, *, limit: int = 100) -> list[int]:
    """Pending requests past their expiry become expired, each with an event; returns their ids."""
    rows = tx.fetchall(_EXPIRE, {"limit": limit})
    for request_id, task_id, run_id, tool, summary in rows:
        _expired_event(tx, request_id, TaskId(task_id), RunId(run_id), tool, summary)
    return [int(row[0]) for row in rows]


def expire_one(tx: Transaction, request_id: int) -> PermissionRequest:
    """Record this request's expiry if it is pending and past it; returns it as it now stands."""
    return _expire_one(tx, get(tx, request_id))


def cancel_for_run(tx: Transaction, run_id: RunId) -> int:
    """A run ended: its pending requests can no longer be answered. Returns how many."""
    return tx.execute(_CANCEL_FOR_RUN, {"run_id": run_id})


def from_row(row: tuple[Any, ...]) -> PermissionRequest:
    """A request from its columns (``_COLUMNS`` order)."""
    return PermissionRequest(
        id=int(row[0]),
        task_id=TaskId(row[1]),
        run_id=RunId(row[2]),
        tool_kind=row[3],
        tool_name=row[4],
        summary=row[5],
        detail=row[6],
        paths=tuple(json.loads(row[7])) if row[7] else (),
        status=PermissionStatus(row[8]),
        decision=PermissionDecision(row[9]) if row[9] else None,
        answered_by=row[10],
        reason=row[11],
        created_ms=int(row[12]),
        expires_ms=int(row[13]),
        answered_ms=None if row[14] is None else int(row[14]),
    )


def _get_with_clock(tx: Transaction, request_id: int) -> tuple[PermissionRequest, bool]:
    current, now = look(tx, request_id)
    return current, now >= current.expires_ms


def _expire_one(tx: Transaction, current: PermissionRequest) -> PermissionRequest:
    row = tx.fetchone(_EXPIRE_ONE, {"id": current.id})
    if row is not None:
        _expired_event(tx, current.id, TaskId(row[0]), RunId(row[1]), row[2], row[3])
    return get(tx, current.id)


def _expired_event(
    tx: Transaction, request_id: int, task_id: TaskId, run_id: RunId, tool: str, summary: str
) -> None:
    # What was asked rides along: the card, edited in place, still says it.
    ref = format_permission_ref(request_id)
    payload = {"ref": ref, "tool": tool, "summary": summary}
    events.append(tx, task_id, EventKind.PERMISSION_EXPIRED, payload, run_id)


def _at(name: str) -> str:
    return name if name.startswith("@") or ":" in name else f"@{name}"
