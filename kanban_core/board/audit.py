"""The audit log: every chat command, allowed or refused, with who sent it and where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kanban_core.storage import Query, Transaction

_INSERT = Query(
    "insert_audit",
    "INSERT INTO audit_log (created_ms, platform, chat_id, thread_id, user_id, user_name, role, "
    "text, outcome, detail) VALUES ({now}, :platform, :chat_id, :thread_id, :user_id, "
    ":user_name, :role, :text, :outcome, :detail)",
)
_RECENT = Query(
    "recent_audit",
    "SELECT id, created_ms, platform, chat_id, thread_id, user_id, user_name, role, text, "
    "outcome, detail FROM audit_log ORDER BY id DESC LIMIT :limit",
)
_FORGET_DELIVERIES = Query(
    "forget_chat_deliveries",
    "DELETE FROM chat_deliveries WHERE created_ms < {now} - :keep_ms",
)
_CLAIM_DELIVERY = Query(
    "claim_chat_delivery",
    "INSERT INTO chat_deliveries (platform, delivery_id, created_ms) "
    "VALUES (:platform, :delivery_id, {now}) ON CONFLICT (platform, delivery_id) DO NOTHING",
)
MAX_TEXT = 4000
#: Longer platform delivery ids are cut to the column's width (real ones are far shorter).
MAX_DELIVERY_ID = 200


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One chat command as it was received and judged."""

    platform: str
    chat_id: str
    thread_id: str
    user_id: str
    user_name: str | None
    role: str | None
    text: str
    outcome: str  # allowed | refused | error
    detail: str | None = None
    id: int = 0
    created_ms: int = 0

    def to_json(self) -> dict[str, Any]:
        """The ``audit --json`` row."""
        return {
            "id": self.id,
            "at": self.created_ms // 1000,
            "platform": self.platform,
            "chat_id": self.chat_id,
            "thread_id": self.thread_id or None,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "role": self.role,
            "text": self.text,
            "outcome": self.outcome,
            "detail": self.detail,
        }


def record(tx: Transaction, entry: AuditEntry) -> None:
    """Append an entry (the text is capped; the rest is kept as received)."""
    tx.execute(
        _INSERT,
        {
            "platform": entry.platform,
            "chat_id": entry.chat_id,
            "thread_id": entry.thread_id,
            "user_id": entry.user_id,
            "user_name": entry.user_name,
            "role": entry.role,
            "text": entry.text[:MAX_TEXT],
            "outcome": entry.outcome,
            "detail": entry.detail,
        },
    )


def claim_delivery(tx: Transaction, platform: str, delivery_id: str, *, keep_ms: int) -> bool:
    """Record a chat delivery as handled; False when it already was (a redelivery).

    Keys older than ``keep_ms`` are forgotten first, so a delivery redelivered later than that
    would run again: the window must outlast every platform's redelivery horizon.
    """
    tx.execute(_FORGET_DELIVERIES, {"keep_ms": keep_ms})
    params = {"platform": platform, "delivery_id": delivery_id[:MAX_DELIVERY_ID]}
    return bool(tx.execute(_CLAIM_DELIVERY, params))


def recent(tx: Transaction, *, limit: int) -> list[AuditEntry]:
    """The newest entries, newest first."""
    return [
        AuditEntry(
            id=r[0],
            created_ms=r[1],
            platform=r[2],
            chat_id=r[3],
            thread_id=r[4],
            user_id=r[5],
            user_name=r[6],
            role=r[7],
            text=r[8],
            outcome=r[9],
            detail=r[10],
        )
        for r in tx.fetchall(_RECENT, {"limit": limit})
    ]
