"""Recovery on start and housekeeping on every tick: nothing half-made, nothing silently lost.

On start (D-10): creations a crash interrupted are rolled back from their journal; turns whose
run ended while nobody watched are settled once; expired approvals are closed (expiry = no);
marker-bearing directories the store does not know are quarantined, never deleted — and
nothing at all is moved when the store looks untrustworthy (safe mode). Each tick repeats the
cheap parts: settle turns, start queued follow-ups, expire approvals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kanban_core.board import tasks
from kanban_core.board.domain import TaskId
from kanban_core.board.exec_requests import workspace_elsewhere
from kanban_core.board.kanban import Kanban
from kanban_core.storage import Query
from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.interactive import approvals, store, turns
from kanban_core.workspaces.interactive.config import WorkspacesConfig
from kanban_core.workspaces.interactive.layout import managed_root
from kanban_core.workspaces.interactive.orphans import reconcile_disk
from kanban_core.workspaces.interactive.removal import remove_clean_worktree
from kanban_core.workspaces.interactive.repair import checkout_of
from kanban_core.workspaces.interactive.worktree_set import rollback

log = logging.getLogger(__name__)

_ARCHIVED_BEFORE = Query(
    "ws_archived_before",
    "SELECT id FROM workspaces WHERE archived = 1 AND archived_ms <= {now} - :after_ms "
    "ORDER BY archived_ms LIMIT :limit",
)
#: The retention sweep looks at most this often, and at this many workspaces (oldest first).
SWEEP_EVERY_S = 300.0
SWEEP_BUDGET = 20


@dataclass(slots=True)
class ReconcileReport:
    """What a start-up reconciliation did."""

    rolled_back: list[str] = field(default_factory=list)
    settled: int = 0
    expired: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    safe_mode: str | None = None
    notes: list[str] = field(default_factory=list)


def on_start(board: Kanban, config: WorkspacesConfig) -> ReconcileReport:
    """Run once before the gateway accepts commands."""
    report = ReconcileReport()
    home = board.settings.home
    try:
        root = managed_root(config.managed_root, home)
    except WorkspaceError as exc:
        report.notes.append(f"workspaces disabled: {exc}")
        return report
    locks = home / "locks"
    with board.db.transaction(write=False) as tx:
        stuck = store.initializing(tx)
    for ws_id in stuck:
        with board.db.transaction(write=False) as tx:
            ws = store.get(tx, ws_id)
            journal = store.journal(tx, ws_id)
        if ws is None or _elsewhere(board, ws.task_id):
            continue  # another host is making it, on its own disk
        try:
            done = rollback(journal, root=root, locks_dir=locks)
        except WorkspaceError as exc:
            report.notes.append(f"{ws_id}: rollback incomplete, left for a person: {exc}")
            continue
        with store.writing(board.db, ws_id) as tx:
            store.delete(tx, ws_id)
            tasks.archive(tx, ws.task_id)
            approvals.audit(
                tx,
                ws_id=ws_id,
                op="create",
                principal="gateway",
                outcome="failed",
                detail="interrupted; rolled back: " + ("; ".join(done) or "nothing to undo"),
            )
        report.rolled_back.append(ws_id)
    report.settled, report.expired = housekeeping(board)
    with board.db.transaction(write=False) as tx:
        known = store.all_ids(tx)
    orphans = reconcile_disk(root, known)
    report.quarantined = list(orphans.quarantined)
    report.safe_mode = orphans.safe_mode
    report.notes += [n for n in orphans.notes if "moved" in n or "could not" in n]
    return report


def housekeeping(board: Kanban, *, expire: bool = True) -> tuple[int, list[str]]:
    """Settle turns, start queued follow-ups, expire approvals (each a short transaction);
    ``expire=False`` leaves the approvals to the leader of several gateways."""
    settled = turns.settle_all(board)
    if not expire:
        return settled, []
    with board.db.transaction(write=False) as tx:
        if not approvals.any_due(tx):
            return settled, []
    with board.db.transaction(write=True) as tx:
        expired = approvals.expire_due(tx)
        for approval in expired:
            approvals.audit(
                tx,
                ws_id=approval.workspace_id,
                op=approval.op,
                principal=approval.requested_by,
                outcome="expired",
                approval_id=approval.id,
                detail="nobody decided in time: cancelled",
            )
    return settled, [a.id for a in expired]


def _elsewhere(board: Kanban, task_id: TaskId) -> bool:
    """Whether a workspace's files are on another enrolled host's disk (not this machine's)."""
    with board.db.transaction(write=False) as tx:
        return workspace_elsewhere(tx, task_id, board.host) is not None


class Housekeeper:
    """Housekeeping for the gateway's ticks, with the retention sweep rate-limited."""

    def __init__(
        self,
        board: Kanban,
        config: WorkspacesConfig,
        *,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self.board = board
        self.config = config
        self.leader = leader
        self._next_sweep = 0.0

    def __call__(self) -> None:
        """One tick."""
        housekeeping(self.board, expire=self.leader())
        after = self.config.remove_clean_worktree_after_seconds
        if after is not None and time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
            for line in sweep_archived(self.board, after_s=after):
                log.info("archive retention: %s", line, extra={"action": "sweep"})


def sweep_archived(board: Kanban, *, after_s: int, budget: int = SWEEP_BUDGET) -> list[str]:
    """Remove clean worktrees of workspaces archived longer than ``after_s``; keep dirty ones."""
    locks = board.settings.home / "locks"
    with board.db.transaction(write=False) as tx:
        ids = [
            str(r[0])
            for r in tx.fetchall(_ARCHIVED_BEFORE, {"after_ms": after_s * 1000, "limit": budget})
        ]
        found = [store.get(tx, ws_id) for ws_id in ids]
    lines: list[str] = []
    for ws in found:
        if ws is None or not ws.archived or _elsewhere(board, ws.task_id):
            continue
        for repo in ws.repos:
            try:
                line = remove_clean_worktree(checkout_of(repo), locks_dir=locks)
            except WorkspaceError as exc:
                line = f"{repo.slug}: kept ({exc})"
            if line:
                lines.append(f"{ws.id} {line}")
    return lines
