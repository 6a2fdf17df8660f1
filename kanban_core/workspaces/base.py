"""What every kind of workspace shares: its error, the record of a removal, and slugs for names."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from kanban_core.board.domain import TaskId
from kanban_core.errors import KanbanError

SLUG_MAX = 40


class WorkspaceError(KanbanError):
    """A workspace cannot be prepared or removed; nothing was left half-made."""


@dataclass(frozen=True, slots=True)
class Removal:
    """What cleaning one task's workspace did."""

    task_id: TaskId
    path: Path | None
    removed: bool
    reason: str


def slugify(text: str, *, limit: int = SLUG_MAX, fallback: str = "task") -> str:
    """D-05 slug: ASCII, lowercase, '-' between words, cut at a word boundary; never empty."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    if len(slug) > limit:
        cut = slug[: limit + 1]
        slug = (cut[: cut.rfind("-")] if "-" in cut else slug[:limit]).strip("-")
    return slug or fallback
