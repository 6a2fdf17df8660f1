"""Login links and browser sessions in the board's database; only hashes of secrets are kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from kanban_core.storage import Query, Transaction

_INSERT_LINK = Query(
    "web_insert_link",
    "INSERT INTO web_login_links (token_hash, principal, created_ms, expires_ms) "
    "VALUES (:hash, :principal, {now}, {now} + :ttl_ms)",
)
# Used and expired links are forgotten a day later (kept that long so a reuse reads as "used").
_FORGET_LINKS = Query(
    "web_forget_links", "DELETE FROM web_login_links WHERE expires_ms < {now} - 86400000"
)
# Single use in one statement: of two browsers racing with one link, one row update wins.
_CONSUME_LINK = Query(
    "web_consume_link",
    "UPDATE web_login_links SET used_ms = {now} WHERE token_hash = :hash AND used_ms IS NULL "
    "AND expires_ms > {now} RETURNING principal",
)
_INSERT_SESSION = Query(
    "web_insert_session",
    "INSERT INTO web_sessions (token_hash, principal, client, created_ms, expires_ms) "
    "VALUES (:hash, :principal, :client, {now}, {now} + :ttl_ms) "
    "RETURNING id, created_ms, expires_ms",
)
_SESSION_COLUMNS = "id, principal, client, created_ms, expires_ms, revoked_ms"
_LIVE_SESSION = Query(
    "web_live_session",
    f"SELECT {_SESSION_COLUMNS} FROM web_sessions WHERE token_hash = :hash "
    "AND revoked_ms IS NULL AND expires_ms > {now}",
)
_SESSIONS = Query(
    "web_sessions",
    f"SELECT {_SESSION_COLUMNS} FROM web_sessions WHERE revoked_ms IS NULL "
    "AND expires_ms > {now} ORDER BY id",
)
_REVOKE = Query(
    "web_revoke_session",
    "UPDATE web_sessions SET revoked_ms = {now} WHERE id = :id AND revoked_ms IS NULL "
    "AND expires_ms > {now}",
)
_REVOKE_TOKEN = Query(
    "web_revoke_token",
    "UPDATE web_sessions SET revoked_ms = {now} WHERE token_hash = :hash AND revoked_ms IS NULL",
)
_FORGET_SESSIONS = Query(
    "web_forget_sessions",
    "DELETE FROM web_sessions WHERE expires_ms < {now} - 86400000 OR revoked_ms < {now} - 86400000",
)
MAX_CLIENT = 200


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser: whose it is and until when."""

    id: int
    principal: str
    client: str | None
    created_ms: int
    expires_ms: int

    def to_json(self) -> dict[str, Any]:
        """The ``kanban web sessions --json`` row."""
        return {
            "id": self.id,
            "user": self.principal,
            "client": self.client,
            "created_at": self.created_ms // 1000,
            "expires_at": self.expires_ms // 1000,
        }


def hash_secret(token: str) -> str:
    """The stored form of a link or session secret."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(session_token: str) -> str:
    """The session's CSRF token: derived from its secret, so nothing more is stored and a copy
    of the database (which holds only the secret's hash) yields none."""
    digest = hmac.new(session_token.encode("utf-8"), b"kanban-web-csrf", hashlib.sha256)
    return digest.hexdigest()


def create_link(tx: Transaction, principal: str, *, ttl_s: int) -> str:
    """A new single-use login link's secret for ``principal``."""
    tx.execute(_FORGET_LINKS)
    token = secrets.token_urlsafe(32)
    tx.execute(
        _INSERT_LINK, {"hash": hash_secret(token), "principal": principal, "ttl_ms": ttl_s * 1000}
    )
    return token


def consume_link(tx: Transaction, token: str) -> str | None:
    """The principal the link signs in, marking it used; None when unknown, used or expired."""
    row = tx.fetchone(_CONSUME_LINK, {"hash": hash_secret(token)})
    return None if row is None else str(row[0])


def create_session(
    tx: Transaction, principal: str, *, ttl_s: int, client: str | None
) -> tuple[str, WebSession]:
    """A new session (a fresh random id: nothing a browser brought is reused)."""
    tx.execute(_FORGET_SESSIONS)
    token = secrets.token_urlsafe(32)
    kept = (client or "")[:MAX_CLIENT] or None
    params = {
        "hash": hash_secret(token),
        "principal": principal,
        "client": kept,
        "ttl_ms": ttl_s * 1000,
    }
    row = tx.fetchone(_INSERT_SESSION, params)
    assert row is not None  # RETURNING of an INSERT
    return token, WebSession(int(row[0]), principal, kept, int(row[1]), int(row[2]))


def live_session(tx: Transaction, token: str) -> WebSession | None:
    """The session a cookie names, if it is neither expired nor revoked."""
    row = tx.fetchone(_LIVE_SESSION, {"hash": hash_secret(token)})
    return None if row is None else _session(row)


def sessions(tx: Transaction) -> list[WebSession]:
    """Every live session, oldest first."""
    return [_session(row) for row in tx.fetchall(_SESSIONS)]


def revoke(tx: Transaction, session_id: int) -> bool:
    """End a live session at once; False when there is no such live session."""
    return bool(tx.execute(_REVOKE, {"id": session_id}))


def revoke_token(tx: Transaction, token: str) -> None:
    """End the session a cookie names (sign-out)."""
    tx.execute(_REVOKE_TOKEN, {"hash": hash_secret(token)})


def _session(row: Any) -> WebSession:
    return WebSession(int(row[0]), str(row[1]), row[2], int(row[3]), int(row[4]))
