"""The notification outbox, seen from the sender: claim due deliveries, then mark each one.

One row per (terminal event, subscriber) is written in the event's own transaction (events.py).
A sender claims rows for the platforms it serves with a lease, sends, and marks them sent; a
failure puts the row back with a backoff, and after the last attempt it is dead (and loud). A
sender killed between claim and send leaves a lease that expires, so the row is sent again:
at least once, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from kanban_core.board.domain import TaskId
from kanban_core.storage import Query, Transaction

_RELEASE_EXPIRED = Query(
    "release_expired_deliveries",
    "UPDATE notify_deliveries SET status = 'pending', claimed_by = NULL, claim_expires_ms = NULL "
    "WHERE status = 'sending' AND claim_expires_ms < {now}",
)
_CLAIM = Query(
    "claim_deliveries",
    "UPDATE notify_deliveries SET status = 'sending', claimed_by = :claimer, "
    "claim_expires_ms = {now} + :lease_ms, attempts = attempts + 1 "
    "WHERE id IN (SELECT id FROM notify_deliveries WHERE status = 'pending' "
    "AND platform = :platform AND next_try_ms <= {now} ORDER BY id LIMIT :limit {skip_locked}) "
    "RETURNING id, event_id, task_id, platform, chat_id, thread_id, attempts",
)
_EVENT = Query(
    "delivery_event",
    "SELECT e.kind, e.payload, e.created_ms, t.title, t.assignee, t.status, t.workspace_kind, "
    "e.run_id "
    "FROM task_events e JOIN tasks t ON t.id = e.task_id WHERE e.id = :event_id",
)
_SENT = Query(
    "delivery_sent",
    "UPDATE notify_deliveries SET status = 'sent', sent_ms = {now}, claimed_by = NULL, "
    "claim_expires_ms = NULL WHERE id = :id AND status = 'sending' AND claimed_by = :claimer",
)
_RETRY = Query(
    "delivery_retry",
    "UPDATE notify_deliveries SET status = :status, next_try_ms = {now} + :delay_ms, "
    "last_error = :error, claimed_by = NULL, claim_expires_ms = NULL "
    "WHERE id = :id AND status = 'sending' AND claimed_by = :claimer",
)
# Held back (a chat's rate limit), not failed: the attempt the claim counted is given back.
_DEFER = Query(
    "delivery_defer",
    "UPDATE notify_deliveries SET status = 'pending', next_try_ms = {now} + :delay_ms, "
    "attempts = attempts - 1, claimed_by = NULL, claim_expires_ms = NULL "
    "WHERE id = :id AND status = 'sending' AND claimed_by = :claimer",
)
# Older progress of the same run to the same chat, not yet shown: the newer snapshot replaces it.
_SUPERSEDE = Query(
    "supersede_progress",
    "UPDATE notify_deliveries SET status = 'sent', sent_ms = {now}, claimed_by = NULL, "
    "claim_expires_ms = NULL, last_error = 'superseded' "
    "WHERE status = 'pending' AND id < :id AND platform = :platform AND chat_id = :chat_id "
    "AND thread_id = :thread_id AND event_id IN "
    "(SELECT e.id FROM task_events e WHERE e.kind = 'progress' AND e.run_id = :run_id)",
)
_NEWER_PROGRESS = Query(
    "newer_progress",
    "SELECT 1 FROM notify_deliveries WHERE status IN ('pending', 'sending') AND id > :id "
    "AND platform = :platform AND chat_id = :chat_id AND thread_id = :thread_id AND event_id IN "
    "(SELECT e.id FROM task_events e WHERE e.kind = 'progress' AND e.run_id = :run_id)",
)
_DEAD = Query(
    "dead_deliveries",
    "SELECT d.id, d.task_id, d.platform, d.chat_id, d.thread_id, d.attempts, d.last_error, "
    "e.kind FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id "
    "WHERE d.status = 'dead' ORDER BY d.id DESC LIMIT :limit",
)

# Due (or claimed) long ago and still not sent: no running sender serves its platform.
_UNSERVED = (
    "((status = 'pending' AND next_try_ms < {now} - :after_ms) "
    "OR (status = 'sending' AND claim_expires_ms < {now} - :after_ms))"
)
_OVERDUE = Query(
    "overdue_deliveries",
    f"SELECT id, platform FROM notify_deliveries WHERE {_UNSERVED} ORDER BY id LIMIT :limit",
)
_ABANDON = Query(
    "abandon_delivery",
    "UPDATE notify_deliveries SET status = 'dead', last_error = :error, claimed_by = NULL, "
    f"claim_expires_ms = NULL WHERE id = :id AND {_UNSERVED}",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One claimed notification, with what is needed to render it."""

    id: int
    event_id: int
    task_id: TaskId
    platform: str
    chat_id: str
    thread_id: str
    attempts: int
    kind: str
    payload: dict[str, Any]
    title: str
    assignee: str | None
    workspace_kind: str = "scratch"
    run_id: int | None = None


def claim(
    tx: Transaction, *, platform: str, claimer: str, lease_ms: int, limit: int = 20
) -> list[Delivery]:
    """Claim due deliveries for one platform (expired claims are released first)."""
    tx.execute(_RELEASE_EXPIRED)
    rows = tx.fetchall(
        _CLAIM, {"platform": platform, "claimer": claimer, "lease_ms": lease_ms, "limit": limit}
    )
    claimed = []
    for row in sorted(rows):
        event = tx.fetchone(_EVENT, {"event_id": row[1]})
        if event is None:
            continue
        claimed.append(
            Delivery(
                id=row[0],
                event_id=row[1],
                task_id=TaskId(row[2]),
                platform=row[3],
                chat_id=row[4],
                thread_id=row[5],
                attempts=row[6],
                kind=event[0],
                payload=json.loads(event[1]) if event[1] else {},
                title=event[3],
                assignee=event[4],
                workspace_kind=event[6],
                run_id=event[7],
            )
        )
    return claimed


def mark_sent(tx: Transaction, delivery_id: int, *, claimer: str) -> bool:
    """Record a successful send; False if the claim was lost meanwhile."""
    return bool(tx.execute(_SENT, {"id": delivery_id, "claimer": claimer}))


def mark_failed(
    tx: Transaction, delivery_id: int, *, claimer: str, error: str, delay_ms: int, dead: bool
) -> None:
    """Put a delivery back for a later try, or mark it dead."""
    tx.execute(
        _RETRY,
        {
            "id": delivery_id,
            "claimer": claimer,
            "status": "dead" if dead else "pending",
            "delay_ms": delay_ms,
            "error": error[:500],
        },
    )


def expire_unserved(
    tx: Transaction, *, served: Collection[str], after_ms: int, limit: int = 500
) -> list[tuple[int, str]]:
    """Mark dead what no sender has taken for ``after_ms``; returns (id, platform) of each.

    A pending delivery is claimed within a poll by any sender serving its platform, so one due
    for longer has none: its platform is not enabled in any running gateway. Platforms in
    ``served`` are left alone (the caller sends those itself, late or not).
    """
    expired = []
    for delivery_id, platform in tx.fetchall(_OVERDUE, {"after_ms": after_ms, "limit": limit}):
        if platform in served:
            continue
        error = (
            f"no running gateway delivers to {platform} (not configured or not enabled) "
            f"for {after_ms // 60_000} min"
        )
        params = {"id": delivery_id, "after_ms": after_ms, "error": error}
        if tx.execute(_ABANDON, params):
            expired.append((int(delivery_id), str(platform)))
    return expired


def dead_letters(tx: Transaction, *, limit: int = 20) -> list[dict[str, Any]]:
    """The newest undeliverable notifications."""
    return [
        {
            "id": r[0],
            "task_id": f"t{r[1]}",
            "platform": r[2],
            "chat_id": r[3],
            "thread_id": r[4] or None,
            "attempts": r[5],
            "last_error": r[6],
            "kind": r[7],
        }
        for r in tx.fetchall(_DEAD, {"limit": limit})
    ]


def defer(tx: Transaction, delivery_id: int, *, claimer: str, delay_ms: int) -> None:
    """Put a claimed delivery back untried, due in ``delay_ms``."""
    tx.execute(_DEFER, {"id": delivery_id, "claimer": claimer, "delay_ms": delay_ms})


def supersede_progress(tx: Transaction, delivery: Delivery) -> bool:
    """Mark older pending progress of the same run and chat sent (never shown).

    Returns whether ``delivery`` is the newest: when a newer one waits, it is superseded too.
    """
    params = {
        "id": delivery.id,
        "platform": delivery.platform,
        "chat_id": delivery.chat_id,
        "thread_id": delivery.thread_id,
        "run_id": delivery.run_id,
    }
    tx.execute(_SUPERSEDE, params)
    return tx.fetchone(_NEWER_PROGRESS, params) is None
