"""The board as the web shows it: every card with its counts, in a handful of set-wise reads.

A 10,000-task board is one pass over ``tasks`` plus three grouped counts (comments, links,
children), read in one snapshot; nothing is read per card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kanban_core import Kanban
from kanban_core.board.domain import TaskStatus, format_task_id
from kanban_core.board.permissions import WAITING, waiting_by_task
from kanban_core.board.reads import MAX_EVENT
from kanban_core.storage import Query, Transaction

_COLUMNS = "id, title, priority, tenant, assignee, status, created_ms, block_kind"
# Open work in full; finished work (done, archived) only its newest cards: a month-old board
# is mostly done, and nobody scrolls through thousands of finished cards (filters find them).
_OPEN_CARDS = Query(
    "web_open_cards",
    f"SELECT {_COLUMNS} FROM tasks WHERE {{unindexed}}status <> 'done' "
    "AND {unindexed}status <> 'archived' ORDER BY priority DESC, created_ms, id",
)
_FINISHED_CARDS = Query(
    "web_finished_cards",
    f"SELECT {_COLUMNS} FROM tasks WHERE status = :status "
    # Newest first by id: a backwards walk of the primary key that stops at the limit (no
    # index holds finished tasks, and none should: every completion would pay for it).
    "ORDER BY id DESC LIMIT :limit",
)
_COUNTS = Query("web_status_counts", "SELECT status, count(*) FROM tasks GROUP BY status")
_FILTERED_COUNTS = {
    (True, False): Query(
        "web_counts_t", "SELECT status, count(*) FROM tasks WHERE tenant = :tenant GROUP BY status"
    ),
    (False, True): Query(
        "web_counts_a",
        "SELECT status, count(*) FROM tasks WHERE assignee = :assignee GROUP BY status",
    ),
    (True, True): Query(
        "web_counts_ta",
        "SELECT status, count(*) FROM tasks WHERE tenant = :tenant AND assignee = :assignee "
        "GROUP BY status",
    ),
}
# Each from its own index; archived tasks' names included (the filters may look for them).
_TENANTS = Query("web_tenants", "SELECT DISTINCT tenant FROM tasks WHERE tenant IS NOT NULL")
_ASSIGNEES = Query(
    "web_assignees", "SELECT DISTINCT assignee FROM tasks WHERE assignee IS NOT NULL"
)
_COMMENT_COUNTS = Query(
    "web_comment_counts", "SELECT task_id, count(*) FROM task_comments GROUP BY task_id"
)
_NOW = Query("web_now", "SELECT {now}")
#: Statuses a child counts as finished in a parent's N/M.
_FINISHED = frozenset({TaskStatus.DONE.value, TaskStatus.ARCHIVED.value})
_STATUS_ORDER = [s.value for s in TaskStatus]
_CHILD_STATUS = Query(
    "web_child_status",
    "SELECT l.parent_id, l.child_id, c.status FROM task_links l JOIN tasks c ON c.id = l.child_id",
)


#: Finished cards (done, archived) sent per column unless asked for more.
FINISHED_SHOWN = 200
MAX_FINISHED = 100_000


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """The board's filters (``GET /api/board``)."""

    tenant: str | None = None
    assignee: str | None = None
    text: str | None = None
    archived: bool = False
    finished_limit: int = FINISHED_SHOWN


def board(kanban: Kanban, query: BoardQuery) -> dict[str, Any]:
    """``GET /api/board``: columns by status with counts, the filter choices, the event cursor."""
    finished = [TaskStatus.DONE.value] + ([TaskStatus.ARCHIVED.value] if query.archived else [])
    # A search looks through every finished card; only the matches are sent.
    limit = MAX_FINISHED if query.text else query.finished_limit
    with kanban.db.transaction(write=False) as tx:
        latest = int(tx.scalar(MAX_EVENT) or 0)
        now_ms = int(tx.scalar(_NOW))
        rows = tx.fetchall(_OPEN_CARDS)
        for status in finished:
            rows += tx.fetchall(_FINISHED_CARDS, {"status": status, "limit": limit})
        tenants = sorted(str(r[0]) for r in tx.fetchall(_TENANTS))
        assignees = sorted(str(r[0]) for r in tx.fetchall(_ASSIGNEES))
        counts = _counts(tx, query)
        comments: dict[int, int] = dict(tx.fetchall(_COMMENT_COUNTS))
        links: dict[int, int] = {}
        children: dict[int, list[int]] = {}
        for parent, child, status in tx.fetchall(_CHILD_STATUS):
            links[parent] = links.get(parent, 0) + 1
            links[child] = links.get(child, 0) + 1
            tally = children.setdefault(parent, [0, 0])
            tally[1] += 1
            if status in _FINISHED:
                tally[0] += 1
        waiting = waiting_by_task(tx.fetchall(WAITING))
    needle = (query.text or "").strip().casefold()
    columns: dict[str, list[dict[str, Any]]] = {s: [] for s in _STATUS_ORDER}
    if not query.archived:
        del columns[TaskStatus.ARCHIVED.value]
    for row in rows:
        card = _card(row, now_ms, comments, links, children, waiting)
        if _matches(card, query, needle):
            columns[card["status"]].append(card)
    return {
        "columns": [_column(status, cards, counts, query) for status, cards in columns.items()],
        "tenants": tenants,
        "assignees": assignees,
        "latest_event_id": latest,
    }


def _column(
    status: str, cards: list[dict[str, Any]], counts: dict[str, int], query: BoardQuery
) -> dict[str, Any]:
    """One column; ``count`` is every matching task, ``tasks`` may hold only the newest."""
    if query.text:
        return {"status": status, "count": len(cards), "tasks": cards, "truncated": False}
    total = max(counts.get(status, 0), len(cards))
    return {"status": status, "count": total, "tasks": cards, "truncated": total > len(cards)}


def _counts(tx: Transaction, query: BoardQuery) -> dict[str, int]:
    """Tasks per status, under the board's tenant and assignee filters."""
    shape = (query.tenant is not None, query.assignee is not None)
    counted = (
        tx.fetchall(_FILTERED_COUNTS[shape], {"tenant": query.tenant, "assignee": query.assignee})
        if any(shape)
        else tx.fetchall(_COUNTS)
    )
    return {str(status): int(n) for status, n in counted}


def _matches(card: dict[str, Any], query: BoardQuery, needle: str) -> bool:
    """Whether the board's filters let this card show."""
    if query.tenant is not None and card["tenant"] != query.tenant:
        return False
    if query.assignee is not None and card["assignee"] != query.assignee:
        return False
    return not needle or needle in card["title"].casefold() or needle == card["id"]


def _card(
    row: Any,
    now_ms: int,
    comments: dict[int, int],
    links: dict[int, int],
    children: dict[int, list[int]],
    waiting: dict[Any, list[str]],
) -> dict[str, Any]:
    """One card as the board shows it."""
    task_id, title, priority, tenant, assignee, status, created_ms = row[:7]
    done, total = children.get(task_id, (0, 0))
    return {
        "id": format_task_id(task_id),
        "title": title,
        "priority": priority,
        "tenant": tenant,
        "assignee": assignee,
        "status": status,
        "block_kind": row[7],
        "comment_count": comments.get(task_id, 0),
        "link_count": links.get(task_id, 0),
        "children_done": done,
        "children_total": total,
        "created_at": created_ms // 1000,
        # The board's order within a column (priority first), so a page can place a changed card.
        "created_ms": created_ms,
        "age_seconds": max(0, (now_ms - created_ms) // 1000),
        "running": status == TaskStatus.RUNNING.value,
        "waiting_permission": bool(waiting.get(task_id)),
    }


_CARD = Query("web_card", f"SELECT {_COLUMNS} FROM tasks WHERE id = :id")
_CARD_COMMENTS = Query(
    "web_card_comments", "SELECT count(*) FROM task_comments WHERE task_id = :id"
)
_CARD_LINKS = Query(
    "web_card_links",
    "SELECT l.parent_id, l.child_id, c.status FROM task_links l JOIN tasks c ON c.id = l.child_id "
    "WHERE l.parent_id = :id OR l.child_id = :id",
)
#: Cards one ``GET /api/cards`` may ask for (a page asks for the few an event burst touched).
MAX_CARDS = 100


def cards(kanban: Kanban, task_ids: list[int], query: BoardQuery) -> dict[str, Any]:
    """``GET /api/cards``: the named cards (and their parents, whose N/M may have moved) as the
    board shows them, the column counts and the event cursor; a live page patches these in
    instead of reloading a whole board for one changed task."""
    wanted = list(dict.fromkeys(task_ids))
    asked = len(wanted)
    found: list[dict[str, Any]] = []
    gone: list[str] = []
    with kanban.db.transaction(write=False) as tx:
        latest = int(tx.scalar(MAX_EVENT) or 0)
        now_ms = int(tx.scalar(_NOW))
        waiting = waiting_by_task(tx.fetchall(WAITING))
        index = 0
        while index < len(wanted):
            task_id = wanted[index]
            index += 1
            row = tx.fetchone(_CARD, {"id": task_id})
            if row is None:
                gone.append(format_task_id(task_id))
                continue
            links: dict[int, int] = {}
            children: dict[int, list[int]] = {}
            for parent, _child, status in tx.fetchall(_CARD_LINKS, {"id": task_id}):
                links[task_id] = links.get(task_id, 0) + 1
                if parent == task_id:
                    tally = children.setdefault(task_id, [0, 0])
                    tally[1] += 1
                    tally[0] += status in _FINISHED
                elif index <= asked and parent not in wanted:
                    wanted.append(parent)  # one level: a parent's N/M counts this child
            comments = {task_id: int(tx.scalar(_CARD_COMMENTS, {"id": task_id}) or 0)}
            found.append(_card(row, now_ms, comments, links, children, waiting))
        counts = _counts(tx, query)
    needle = (query.text or "").strip().casefold()
    return {
        "cards": [dict(card, shown=_matches(card, query, needle)) for card in found],
        "gone": gone,
        "counts": counts,
        "latest_event_id": latest,
    }
