"""Where each permission card was shown, so it is edited in place once the request is settled."""

from __future__ import annotations

from kanban_core.storage import Query, Transaction

_KEY = (
    "request_id = :request_id AND platform = :platform AND chat_id = :chat_id "
    "AND thread_id = :thread_id"
)
_MESSAGE = Query("card_message", f"SELECT message_id FROM permission_cards WHERE {_KEY}")
_FORGET = Query("forget_card", f"DELETE FROM permission_cards WHERE {_KEY}")
_REMEMBER = Query(
    "remember_card",
    "INSERT INTO permission_cards (request_id, platform, chat_id, thread_id, message_id, "
    "created_ms) VALUES (:request_id, :platform, :chat_id, :thread_id, :message_id, {now})",
)


def card_message(
    tx: Transaction, *, request_id: int, platform: str, chat_id: str, thread_id: str
) -> str | None:
    """The id of the message showing this request's card in this chat, if one was sent."""
    key = {"request_id": request_id, "platform": platform, "chat_id": chat_id}
    row = tx.fetchone(_MESSAGE, key | {"thread_id": thread_id})
    return None if row is None else str(row[0])


def remember_card(
    tx: Transaction,
    *,
    request_id: int,
    platform: str,
    chat_id: str,
    thread_id: str,
    message_id: str,
) -> None:
    """Record the message of a card (a card sent again after a crash replaces the first)."""
    key = {"request_id": request_id, "platform": platform, "chat_id": chat_id}
    key |= {"thread_id": thread_id}
    tx.execute(_FORGET, key)
    tx.execute(_REMEMBER, key | {"message_id": message_id})


def forget_card(
    tx: Transaction, *, request_id: int, platform: str, chat_id: str, thread_id: str
) -> None:
    """The card was settled (edited): nothing edits it again."""
    key = {"request_id": request_id, "platform": platform, "chat_id": chat_id}
    tx.execute(_FORGET, key | {"thread_id": thread_id})
