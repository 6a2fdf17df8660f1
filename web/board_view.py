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
from kanban_core.storage import Query

_CARDS = Query(
    "web_cards",
    "SELECT id, title, priority, tenant, assignee, status, created_ms, block_kind FROM tasks "
    "ORDER BY priority DESC, created_ms, id",
)
_LIVE_CARDS = Query(
    "web_live_cards",
    "SELECT id, title, priority, tenant, assignee, status, created_ms, block_kind FROM tasks "
    "WHERE status <> 'archived' ORDER BY priority DESC, created_ms, id",
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


@dataclass(frozen=True, slots=True)
class BoardQuery:
    """The board's filters (``GET /api/board``)."""

    tenant: str | None = None
    assignee: str | None = None
    text: str | None = None
    archived: bool = False


def board(kanban: Kanban, query: BoardQuery) -> dict[str, Any]:
    """``GET /api/board``: columns by status with counts, the filter choices, the event cursor."""
    with kanban.db.transaction(write=False) as tx:
        latest = int(tx.scalar(MAX_EVENT) or 0)
        now_ms = int(tx.scalar(_NOW))
        rows = tx.fetchall(_CARDS if query.archived else _LIVE_CARDS)
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
    tenants = sorted({r[3] for r in rows if r[3]})
    assignees = sorted({r[4] for r in rows if r[4]})
    needle = (query.text or "").strip().casefold()
    columns: dict[str, list[dict[str, Any]]] = {s: [] for s in _STATUS_ORDER}
    if not query.archived:
        del columns[TaskStatus.ARCHIVED.value]
    for row in rows:
        task_id, title, priority, tenant, assignee, status, created_ms = row[:7]
        if query.tenant is not None and tenant != query.tenant:
            continue
        if query.assignee is not None and assignee != query.assignee:
            continue
        ref = format_task_id(task_id)
        if needle and needle not in title.casefold() and needle != ref:
            continue
        done, total = children.get(task_id, (0, 0))
        columns[status].append(
            {
                "id": ref,
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
                "age_seconds": max(0, (now_ms - created_ms) // 1000),
                "running": status == TaskStatus.RUNNING.value,
                "waiting_permission": bool(waiting.get(task_id)),
            }
        )
    return {
        "columns": [
            {"status": status, "count": len(cards), "tasks": cards}
            for status, cards in columns.items()
        ],
        "tenants": tenants,
        "assignees": assignees,
        "latest_event_id": latest,
    }
