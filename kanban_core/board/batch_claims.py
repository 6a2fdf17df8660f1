"""Claims in batches: several ready tasks taken at once, each under its own run and token.

A dispatcher's pass claims its candidates (each with the assignee it was read with and that
assignee's cap), and a worker loop may take the next few ready tasks. On PostgreSQL a batch is
one call of ``kanban_claim_batch`` (one round trip and one commit for the lot); on SQLite it is
the single claim repeated inside one write transaction (the one writer keeps the caps exact).
Either way the caps, the placement and the events are the single claim's.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from kanban_core.board import claims, hosts
from kanban_core.board.domain import Claim, TaskId
from kanban_core.board.rows import TASK_COLUMNS, hash_token, task_from_row
from kanban_core.storage import Query, Transaction


@dataclass(frozen=True, slots=True)
class Candidate:
    """A ready task a caller wants claimed, as it read it: claimed only if its assignee is
    still this one, and only while that assignee runs fewer than ``cap`` tasks."""

    task_id: TaskId
    assignee: str | None
    cap: int | None = None


@dataclass(frozen=True, slots=True)
class Caps:
    """The board's cap on running tasks, and (for the next ready tasks) each assignee's."""

    max_running: int | None = None
    max_running_assignee: int | None = None


_PG_CLAIM_BATCH = Query(
    "pg_claim_batch",
    f"SELECT {TASK_COLUMNS} FROM kanban_claim_batch(CAST(:claimer AS TEXT), "
    "CAST(:ttl_ms AS BIGINT), CAST(:token_hashes AS TEXT[]), CAST(:ids AS BIGINT[]), "
    "CAST(:assignees AS TEXT[]), CAST(:caps AS INTEGER[]), CAST(:assignee AS TEXT), "
    "CAST(:max_running AS INTEGER), CAST(:max_running_assignee AS INTEGER), "
    "CAST(:host_id AS BIGINT), CAST(:host_secret AS TEXT))",
)
_ASSIGNEE_OF = Query("assignee_of", "SELECT assignee FROM tasks WHERE id = :id")


def claim_candidates(
    tx: Transaction,
    candidates: Sequence[Candidate],
    *,
    claimer: str,
    ttl_ms: int,
    max_running: int | None,
    host: hosts.HostIdentity | None,
) -> list[Claim]:
    """Claim what can be claimed of ``candidates``, in their order; the rest are left as they
    are (claimed by someone else, changed meanwhile, held, or over a cap)."""
    if not candidates:
        return []
    if tx.dialect == "postgresql":
        return _pg_batch(
            tx,
            len(candidates),
            claimer=claimer,
            ttl_ms=ttl_ms,
            given=candidates,
            assignee=None,
            caps=Caps(max_running),
            host=host,
        )
    claimed: list[Claim] = []
    for candidate in candidates:
        row = tx.fetchone(_ASSIGNEE_OF, {"id": candidate.task_id})
        if row is None or row[0] != candidate.assignee:
            continue  # gone, or reassigned since the caller read it
        claim = claims.claim(
            tx,
            claimer=claimer,
            ttl_ms=ttl_ms,
            task_id=candidate.task_id,
            max_running=max_running,
            max_running_assignee=candidate.cap,
            host=host,
        )
        if claim is not None:
            claimed.append(claim)
    return claimed


def claim_next(
    tx: Transaction,
    limit: int,
    *,
    claimer: str,
    ttl_ms: int,
    assignee: str | None,
    caps: Caps,
    host: hosts.HostIdentity | None,
) -> list[Claim]:
    """Claim up to ``limit`` of the next ready tasks by priority (of ``assignee`` if given)."""
    if limit <= 0:
        return []
    if tx.dialect == "postgresql":
        return _pg_batch(
            tx,
            limit,
            claimer=claimer,
            ttl_ms=ttl_ms,
            given=None,
            assignee=assignee,
            caps=caps,
            host=host,
        )
    claimed: list[Claim] = []
    while len(claimed) < limit:
        claim = claims.claim(
            tx,
            claimer=claimer,
            ttl_ms=ttl_ms,
            assignee=assignee,
            max_running=caps.max_running,
            max_running_assignee=caps.max_running_assignee,
            host=host,
        )
        if claim is None:
            break
        claimed.append(claim)
    return claimed


def _pg_batch(
    tx: Transaction,
    slots: int,
    *,
    claimer: str,
    ttl_ms: int,
    given: Sequence[Candidate] | None,
    assignee: str | None,
    caps: Caps,
    host: hosts.HostIdentity | None,
) -> list[Claim]:
    tokens = [secrets.token_urlsafe(24) for _ in range(slots)]
    rows = tx.fetchall(
        _PG_CLAIM_BATCH,
        {
            "claimer": claimer,
            "ttl_ms": ttl_ms,
            "token_hashes": [hash_token(token) for token in tokens],
            "ids": None if given is None else [c.task_id for c in given],
            "assignees": None if given is None else [c.assignee for c in given],
            "caps": None if given is None else [c.cap for c in given],
            "assignee": assignee,
            "max_running": caps.max_running,
            "max_running_assignee": caps.max_running_assignee,
            "host_id": None if host is None else host.host_id,
            "host_secret": None if host is None else host.secret_hash,
        },
    )
    claimed: list[Claim] = []
    # The function hands the k-th token's hash to the k-th task it returns.
    for row, token in zip(rows, tokens, strict=False):
        task = task_from_row(row)
        assert task.current_run_id is not None
        assert task.lease_expires_ms is not None
        claimed.append(
            Claim(task, task.current_run_id, task.attempts, token, task.lease_expires_ms)
        )
    return claimed
