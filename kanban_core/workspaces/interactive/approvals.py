"""Durable, single-use, expiring approvals and confirmations, and the workspace audit trail.

A button carries only ``ap:<id>:<nonce>``; everything else stays here. Deciding is one
conditional UPDATE (``WHERE status = 'pending'``), so a double click, a replayed callback or a
second approver finds the request already used. Expiry is by the database clock and means no.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from kanban_core.board.rows import dump_json
from kanban_core.errors import KanbanError
from kanban_core.storage import Query, Transaction
from kanban_core.workspaces.interactive.layout import new_id
from kanban_core.workspaces.interactive.records import (
    Approval,
    ApprovalKind,
    ApprovalStatus,
    ChatPlace,
)

_COLUMNS = (
    "id, kind, op, args, args_hash, nonce, workspace_id, summary, requested_by, requester_name, "
    "platform, chat_id, thread_id, status, created_ms, expires_ms, decided_by, decided_ms, result"
)
_INSERT = Query(
    "approval_insert",
    f"INSERT INTO approvals ({_COLUMNS}) VALUES (:id, :kind, :op, :args, :args_hash, :nonce, "
    ":ws, :summary, :requested_by, :requester_name, :platform, :chat_id, :thread_id, 'pending', "
    "{now}, {now} + :ttl_ms, NULL, NULL, NULL)",
)
_GET = Query("approval_get", f"SELECT {_COLUMNS} FROM approvals WHERE id = :id")
_DECIDE = Query(
    "approval_decide",
    "UPDATE approvals SET status = :status, decided_by = :decider, decided_ms = {now} "
    "WHERE id = :id AND status = 'pending' AND expires_ms > {now}",
)
_EXPIRE_ONE = Query(
    "approval_expire_one",
    "UPDATE approvals SET status = 'expired', decided_ms = {now} "
    "WHERE id = :id AND status = 'pending' AND expires_ms <= {now}",
)
_EXPIRED = Query(
    "approval_expired",
    f"SELECT {_COLUMNS} FROM approvals WHERE status = 'pending' AND expires_ms <= {{now}} "
    "LIMIT :limit",
)
_PENDING = Query(
    "approval_pending",
    f"SELECT {_COLUMNS} FROM approvals WHERE status = 'pending' AND workspace_id = :ws "
    "AND expires_ms > {now} ORDER BY created_ms",
)
_OPEN = Query(
    "approval_open",
    f"SELECT {_COLUMNS} FROM approvals WHERE status = 'pending' AND expires_ms > {{now}} "
    "ORDER BY created_ms",
)
_WITHDRAW = Query(
    "approval_withdraw",
    "UPDATE approvals SET status = 'expired', decided_ms = {now}, result = :why "
    "WHERE workspace_id = :ws AND status = 'pending'",
)
_RESULT = Query("approval_result", "UPDATE approvals SET result = :result WHERE id = :id")
_AUDIT = Query(
    "workspace_audit_insert",
    "INSERT INTO workspace_audit (created_ms, workspace_id, repo, op, principal, args, "
    "approval_id, outcome, detail, before_oid, after_oid) VALUES ({now}, :ws, :repo, :op, "
    ":principal, :args, :approval_id, :outcome, :detail, :before_oid, :after_oid)",
)
_AUDIT_COUNT = Query(
    "workspace_audit_count", "SELECT count(*) FROM workspace_audit WHERE workspace_id = :ws"
)
_AUDIT_LIST = Query(
    "workspace_audit_list",
    "SELECT created_ms, repo, op, principal, approval_id, outcome, detail FROM workspace_audit "
    "WHERE workspace_id = :ws ORDER BY id DESC LIMIT :limit",
)


class ApprovalRefused(KanbanError):
    """The request cannot be decided by this person now (used, expired, wrong person…)."""


def args_hash(op: str, args: Mapping[str, Any]) -> str:
    """A digest of exactly what was asked, checked again before executing."""
    return hashlib.sha256(f"{op}\0{dump_json(dict(args))}".encode()).hexdigest()


def request(
    tx: Transaction,
    *,
    kind: ApprovalKind,
    op: str,
    args: Mapping[str, Any],
    ws_id: str,
    summary: str,
    requester: str,
    requester_name: str,
    place: ChatPlace,
    ttl_s: int,
) -> Approval:
    """Store a pending request; the caller shows its summary with approve/deny buttons."""
    approval_id = new_id("ap")
    tx.execute(
        _INSERT,
        {
            "id": approval_id,
            "kind": kind.value,
            "op": op,
            "args": dump_json(dict(args)),
            "args_hash": args_hash(op, args),
            "nonce": secrets.token_hex(8),
            "ws": ws_id,
            "summary": summary,
            "requested_by": requester,
            "requester_name": requester_name,
            "platform": place.platform,
            "chat_id": place.chat_id,
            "thread_id": place.thread_id,
            "ttl_ms": ttl_s * 1000,
        },
    )
    found = get(tx, approval_id)
    assert found is not None
    return found


def get(tx: Transaction, approval_id: str) -> Approval | None:
    """One request."""
    row = tx.fetchone(_GET, {"id": approval_id})
    return None if row is None else _approval(row)


def pending(tx: Transaction, ws_id: str) -> list[Approval]:
    """A workspace's undecided, unexpired requests."""
    return [_approval(row) for row in tx.fetchall(_PENDING, {"ws": ws_id})]


def open_requests(tx: Transaction, place: ChatPlace | None) -> list[Approval]:
    """Undecided, unexpired requests asked in one chat (or thread); every one for None."""
    found = [_approval(row) for row in tx.fetchall(_OPEN)]
    if place is None:
        return found
    return [
        a
        for a in found
        if (a.platform, a.chat_id, a.thread_id) == (place.platform, place.chat_id, place.thread_id)
    ]


def decide(
    tx: Transaction,
    approval_id: str,
    *,
    nonce: str | None,
    decider: str,
    approve: bool,
    may_approve: bool,
    four_eyes: bool,
) -> Approval:
    """Approve or deny once. Raises ApprovalRefused, leaving the request as it was."""
    found = get(tx, approval_id)
    if found is None:
        raise ApprovalRefused(f"no such request {approval_id}")
    if nonce is not None and not hmac.compare_digest(nonce, found.nonce):
        raise ApprovalRefused("this button does not belong to that request")
    if found.status is not ApprovalStatus.PENDING:
        raise ApprovalRefused(f"request {approval_id} was already used ({found.status.value})")
    if tx.execute(_EXPIRE_ONE, {"id": approval_id}):
        raise ApprovalRefused(f"request {approval_id} has expired; ask again")
    if found.kind is ApprovalKind.CONFIRM:
        # Only the person who asked confirms their own push or PR; anyone may cancel it if
        # they could approve it.
        if decider != found.requested_by and (approve or not may_approve):
            raise ApprovalRefused("only the person who asked can confirm this")
    else:
        # The requester may always withdraw their own request; deciding otherwise is an
        # approver's job.
        withdrawing = not approve and decider == found.requested_by
        if not may_approve and not withdrawing:
            raise ApprovalRefused("deciding this needs the approver role")
        if approve and four_eyes and decider == found.requested_by:
            raise ApprovalRefused("four-eyes mode: someone else must approve your request")
    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.DENIED
    params = {"id": approval_id, "status": status.value, "decider": decider}
    if not tx.execute(_DECIDE, params):
        raise ApprovalRefused(f"request {approval_id} was already used")
    decided = get(tx, approval_id)
    assert decided is not None
    return decided


def any_due(tx: Transaction) -> bool:
    """Whether some request waits to be expired (a read, so idle ticks take no write lock)."""
    return tx.fetchone(_EXPIRED, {"limit": 1}) is not None


def expire_due(tx: Transaction, *, limit: int = 100) -> list[Approval]:
    """Mark requests past their TTL expired (= denied); returns them."""
    due = [_approval(row) for row in tx.fetchall(_EXPIRED, {"limit": limit})]
    return [a for a in due if tx.execute(_EXPIRE_ONE, {"id": a.id})]


def withdraw_pending(tx: Transaction, ws_id: str, why: str) -> int:
    """Close a workspace's undecided requests (it is gone); returns how many."""
    return tx.execute(_WITHDRAW, {"ws": ws_id, "why": why})


def set_result(tx: Transaction, approval_id: str, result: str) -> None:
    """Record what executing an approved request did."""
    tx.execute(_RESULT, {"id": approval_id, "result": result[:2000]})


def audit(
    tx: Transaction,
    *,
    ws_id: str,
    op: str,
    principal: str,
    outcome: str,
    detail: str | None = None,
    repo: str | None = None,
    args: Mapping[str, Any] | None = None,
    approval_id: str | None = None,
    before_oid: str | None = None,
    after_oid: str | None = None,
) -> None:
    """Append one row to the workspace audit trail (kept after the workspace is deleted)."""
    tx.execute(
        _AUDIT,
        {
            "ws": ws_id,
            "repo": repo,
            "op": op,
            "principal": principal,
            "args": dump_json(dict(args)) if args else None,
            "approval_id": approval_id,
            "outcome": outcome,
            "detail": (detail or "")[:2000] or None,
            "before_oid": before_oid,
            "after_oid": after_oid,
        },
    )


def audit_rows(tx: Transaction, ws_id: str, *, limit: int = 20) -> list[tuple[Any, ...]]:
    """The newest audit rows of a workspace."""
    return [tuple(row) for row in tx.fetchall(_AUDIT_LIST, {"ws": ws_id, "limit": limit})]


def audit_count(tx: Transaction, ws_id: str) -> int:
    """How many audit rows a workspace has."""
    return int(tx.scalar(_AUDIT_COUNT, {"ws": ws_id}))


def _approval(row: Sequence[Any]) -> Approval:
    return Approval(
        id=row[0],
        kind=ApprovalKind(row[1]),
        op=row[2],
        args=json.loads(row[3]),
        args_hash=row[4],
        nonce=row[5],
        workspace_id=row[6],
        summary=row[7],
        requested_by=row[8],
        requester_name=row[9],
        platform=row[10],
        chat_id=row[11],
        thread_id=row[12],
        status=ApprovalStatus(row[13]),
        created_ms=int(row[14]),
        expires_ms=int(row[15]),
        decided_by=row[16],
        decided_ms=row[17],
        result=row[18],
    )
