"""The workspace service: create, list, rename, pin, archive and delete; sessions and the queue.

Git and the filesystem are reached only through the worktree set and gitops modules; this
module owns the records and the order of steps (D-06: validate, persist intent, create with a
journal, then mark ready — a crash at any point is recoverable by replaying the journal).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_core.board import hosts, tasks
from kanban_core.board.domain import TaskId, WorkspaceKind
from kanban_core.board.kanban import Kanban
from kanban_core.board.rows import dump_json
from kanban_core.board.validation import WorkspaceSpec, clean_optional, clean_title
from kanban_core.config import KanbanConfig
from kanban_core.errors import KanbanError, ValidationError
from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.interactive import approvals, store, tasklink, turns
from kanban_core.workspaces.interactive.layout import (
    container_strays,
    managed_root,
    new_id,
    repo_slug,
)
from kanban_core.workspaces.interactive.records import (
    Caller,
    ChatPlace,
    Workspace,
    WorkspaceStatus,
)
from kanban_core.workspaces.interactive.removal import RemovalError
from kanban_core.workspaces.interactive.repair import checkout_of, ensure_worktrees
from kanban_core.workspaces.interactive.sessions import SessionOps
from kanban_core.workspaces.interactive.worktree_set import (
    RepoLoss,
    RepoSpec,
    create,
    loss_report,
    plan_create,
    remove,
)

MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Created:
    """What creating a workspace did."""

    workspace: Workspace
    created: bool
    warnings: tuple[str, ...]
    first_turn: turns.TurnRequest | None


class WorkspaceService(SessionOps):
    """Workspaces of one board, under one managed root."""

    def __init__(self, board: Kanban, config: KanbanConfig, *, allow_paths: bool = False) -> None:
        self.board = board
        self.config = config
        self.cfg = config.workspaces
        self.home = board.settings.home
        self.root = managed_root(self.cfg.managed_root, self.home)
        self.locks_dir = self.home / "locks"
        #: Whether a repository may be named by absolute path (the local CLI) instead of only by
        #: a configured name (chat: a chat user never points the server at arbitrary paths).
        self.allow_paths = allow_paths

    # -- lookups ----------------------------------------------------------------------------

    def resolve(self, ref: str | None, place: ChatPlace | None) -> Workspace:
        """The workspace named, or the chat's bound one, or the only active one."""
        if ref:
            # A task reference (t12, #12, 12); anything else ("t", "tomato") is a workspace id.
            digits = ref.removeprefix("t").removeprefix("#")
            if digits.isascii() and digits.isdigit():
                with self.board.db.transaction(write=False) as tx:
                    by_task = store.by_task(tx, TaskId(int(digits)))
                if by_task is not None:
                    return by_task
            return self.get(ref)
        with self.board.db.transaction(write=False) as tx:
            bound = store.bound(tx, place) if place else None
            if bound is None:
                active = store.listing(tx, archived=False, limit=2)
                if len(active) == 1:
                    return active[0]
                raise ValidationError(
                    "which workspace? name one with --ws <id> (or /ws use <id> in this chat)"
                )
        return self.get(bound)

    def listing(self, *, archived: bool = False) -> list[Workspace]:
        """Active (or archived) workspaces, pinned first."""
        with self.board.db.transaction(write=False) as tx:
            return store.listing(tx, archived=archived)

    # -- creation ---------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        *,
        title: str,
        body: str | None,
        repos: list[str],
        base: str | None = None,
        branch: str | None = None,
        executor: str | None = None,
        spec_id: str = "",
        task_number: str = "",
    ) -> Created:
        """Create the worktrees (all or none), then start the first session's first turn."""
        title = clean_title(title)
        body = clean_optional(body, field="body", max_bytes=MAX_BODY_BYTES)
        executor = executor or self.cfg.agent
        if executor not in self.config.assignees:
            known = ", ".join(sorted(self.config.assignees))
            raise ValidationError(f"no agent profile {executor!r} (configured: {known})")
        key = f"ws:{caller.source_key}" if caller.source_key else None
        if key is not None:
            with self.board.db.transaction(write=False) as tx:
                if (seen := store.by_key(tx, key)) is not None:
                    return Created(seen, False, (), None)
        specs = self._specs(repos, base)
        ws_id = new_id("ws")
        plan = plan_create(
            ws_id,
            specs,
            root=self.root,
            title=title,
            template=self.cfg.branch_template,
            custom_branch=branch,
            spec_id=spec_id,
            task_number=task_number,
        )
        session_id = new_id("sess")
        with self.board.db.transaction(write=True) as tx:
            task = tasks.create(
                tx,
                tasks.NewTask(
                    title=title,
                    created_by=caller.name,
                    body=body,
                    assignee=executor,
                    workspace=WorkspaceSpec(WorkspaceKind.WORKTREE),
                    triage=True,
                    repo=str(plan.repos[0].source),
                ),
            ).task
            if self.board.host is not None:
                # Its worktrees are on this machine's disk: its turns run here, and commands
                # that need the files are sent here from other hosts (README, Several hosts).
                hosts.place(tx, task.id, self.board.host.host_id, None)
            store.insert_workspace(
                tx,
                {
                    "id": ws_id,
                    "task_id": task.id,
                    "name": title,
                    "status": "initializing",
                    "container": str(plan.container),
                    "branch": plan.branch,
                    "executor": executor,
                    "active_repo": None,
                    "created_by": caller.principal,
                    "key": key,
                    "repos": [_repo_values(r) for r in plan.repos],
                },
            )
            store.insert_session(
                tx,
                session_id=session_id,
                ws_id=ws_id,
                name="main",
                executor=executor,
                agent_session_id=str(uuid.uuid4()),
            )
            store.set_field(tx, ws_id, "active_session_id", session_id)
        try:
            create(plan, root=self.root, locks_dir=self.locks_dir, journal=self._journal(ws_id))
        except KanbanError as exc:
            self._creation_failed(ws_id, task.id, caller, str(exc))
            raise
        with store.writing(self.board.db, ws_id) as tx:
            store.set_status(tx, ws_id, WorkspaceStatus.READY)
            store.set_field(tx, ws_id, "journal", None)
            store.bind(tx, caller.place, ws_id)
            approvals.audit(
                tx,
                ws_id=ws_id,
                op="create",
                principal=caller.principal,
                outcome="ok",
                detail=f"branch {plan.branch}",
                args={"repos": [r.slug for r in plan.repos]},
            )
            ws = store.get(tx, ws_id)
            assert ws is not None
            session = store.session(tx, session_id)
            assert session is not None
            first = turns.request(
                tx,
                ws,
                session,
                text=title + (f"\n\n{body}" if body else ""),
                principal=caller.name,
                source_key=None,
                max_queue=self.cfg.queue_max_per_session,
            )
            ws = store.get(tx, ws_id)
        assert ws is not None
        return Created(ws, True, plan.warnings, first)

    def _specs(self, names: list[str], base: str | None) -> list[RepoSpec]:
        if not names:
            known = ", ".join(sorted(self.cfg.repos)) or "none configured"
            raise ValidationError(f"name at least one repository with --repo ({known})")
        specs: list[RepoSpec] = []
        taken: set[str] = set()
        for name in names:
            configured = self.cfg.repos.get(name)
            if configured is not None:
                slug, source, repo_base = name, configured.path, base or configured.base
            elif self.allow_paths and Path(name).is_absolute():
                slug, source, repo_base = repo_slug(Path(name).name, taken), Path(name), base
            else:
                known = ", ".join(sorted(self.cfg.repos)) or "none configured"
                raise ValidationError(
                    f"unknown repository {name!r} (configured in workspaces.repos: {known})"
                )
            if slug in taken:
                raise ValidationError(f"repository {name!r} is named twice")
            taken.add(slug)
            specs.append(RepoSpec(slug=slug, source=source, base=repo_base))
        return specs

    def _journal(self, ws_id: str) -> Any:
        def record(step: str, info: Mapping[str, object]) -> None:
            with store.writing(self.board.db, ws_id) as tx:
                entries = store.journal(tx, ws_id)
                entries.append((step, dict(info)))
                store.set_field(tx, ws_id, "journal", dump_json(entries))

        return record

    def _creation_failed(self, ws_id: str, task_id: TaskId, caller: Caller, error: str) -> None:
        # The worktree set rolled itself back; no half-made workspace stays on the board.
        with store.writing(self.board.db, ws_id) as tx:
            store.delete(tx, ws_id)
            tasks.archive(tx, task_id)
            approvals.audit(
                tx,
                ws_id=ws_id,
                op="create",
                principal=caller.principal,
                outcome="failed",
                detail=error,
            )

    # -- lifecycle --------------------------------------------------------------------------

    def rename(self, ws: Workspace, name: str, caller: Caller) -> None:
        """Change the display name (never the branch or any path)."""
        name = clean_title(name)
        self._simple(ws, caller, "rename", lambda tx: store.set_field(tx, ws.id, "name", name))

    def pin(self, ws: Workspace, pinned: bool, caller: Caller) -> None:
        """Pin (listed first) or unpin."""
        op = "pin" if pinned else "unpin"
        self._simple(ws, caller, op, lambda tx: store.set_field(tx, ws.id, "pinned", int(pinned)))

    def archive(self, ws: Workspace, caller: Caller) -> None:
        """Hide from the active list; worktrees, branches, sessions and history stay."""
        self._refuse_running(ws, "archive")
        self._simple(ws, caller, "archive", lambda tx: store.set_archived(tx, ws.id, True))

    def unarchive(self, ws: Workspace, caller: Caller) -> list[str]:
        """Back to the active list, with any removed worktree recreated from its branch."""
        notes = ensure_worktrees(self.board, ws)
        self._simple(ws, caller, "unarchive", lambda tx: store.set_archived(tx, ws.id, False))
        return notes

    def use(self, ws: Workspace, caller: Caller) -> None:
        """Bind this chat (or thread) to the workspace."""
        with store.writing(self.board.db, ws.id) as tx:
            store.bind(tx, caller.place, ws.id)

    def set_active_repo(self, ws: Workspace, slug: str | None, caller: Caller) -> None:
        """Commands without --repo apply to this repository (None: to all)."""
        if slug is not None and ws.repo(slug) is None:
            raise ValidationError(
                f"{ws.id} has no repository {slug!r} ({', '.join(r.slug for r in ws.repos)})"
            )
        self._simple(
            ws,
            caller,
            "set-active-repo",
            lambda tx: store.set_field(tx, ws.id, "active_repo", slug),
        )

    def delete_preflight(self, ws: Workspace) -> DeletePlan:
        """D-09: what deleting would lose, per repository and beside them in the container."""
        self._refuse_running(ws, "delete")
        losses = tuple(loss_report(checkout_of(repo)) for repo in ws.repos)
        strays = container_strays(ws.container, self.root, ws.id, [r.slug for r in ws.repos])
        return DeletePlan(losses, tuple(strays))

    def delete(
        self,
        ws: Workspace,
        caller: Caller,
        *,
        discard: bool,
        delete_branch: bool,
        approval_id: str | None = None,
        strays: tuple[str, ...] = (),
    ) -> list[str]:
        """Remove the worktrees and container (managed paths only), then the records.

        What can be removed is removed even when something is refused; the workspace then
        says what is left, and the next /ws delete reports and finishes it.
        """
        self._refuse_running(ws, "delete")
        if delete_branch and not all(r.branch_created for r in ws.repos):
            raise WorkspaceError("--delete-branch refused: a branch was reused, not created by us")
        try:
            lines = remove(
                ws.id,
                ws.container,
                [checkout_of(r) for r in ws.repos],
                root=self.root,
                locks_dir=self.locks_dir,
                discard=discard,
                delete_branch=delete_branch,
                strays=strays,
            )
        except RemovalError as exc:
            self._delete_incomplete(ws, caller, exc, approval_id)
            done = "; ".join(exc.done) or "nothing removed"
            raise WorkspaceError(
                f"{ws.id} is partly deleted ({done}); left: {exc} — run /ws delete {ws.id} "
                "again to see what is left and finish"
            ) from None
        with store.writing(self.board.db, ws.id) as tx:
            store.delete(tx, ws.id)
            approvals.withdraw_pending(tx, ws.id, "the workspace was deleted")
            if tasklink.task_status(tx, ws.task_id) not in (None, "archived", "running"):
                tasks.archive(tx, ws.task_id)
            approvals.audit(
                tx,
                ws_id=ws.id,
                op="delete",
                principal=caller.principal,
                outcome="ok",
                detail="; ".join(lines),
                approval_id=approval_id,
                args={"discard": discard, "delete_branch": delete_branch},
            )
        return lines

    def _delete_incomplete(
        self, ws: Workspace, caller: Caller, exc: RemovalError, approval_id: str | None
    ) -> None:
        # The record stays (it is how the next delete finds the rest) and says what happened.
        with store.writing(self.board.db, ws.id) as tx:
            store.set_status(tx, ws.id, WorkspaceStatus.FAILED, f"delete incomplete: {exc}")
            approvals.audit(
                tx,
                ws_id=ws.id,
                op="delete",
                principal=caller.principal,
                outcome="partial",
                detail="; ".join([*exc.done, f"left: {exc}"]),
                approval_id=approval_id,
            )


@dataclass(frozen=True, slots=True)
class DeletePlan:
    """What deleting a workspace would lose: per repository, and stray entries beside them."""

    losses: tuple[RepoLoss, ...]
    strays: tuple[str, ...]

    def loses_work(self, *, delete_branch: bool) -> bool:
        """Whether anything would be lost (commits on a kept branch are not)."""
        return bool(self.strays) or any(
            loss.loses(delete_branch=delete_branch) for loss in self.losses
        )


def _repo_values(repo: Any) -> dict[str, Any]:
    return {
        "slug": repo.slug,
        "source": str(repo.source),
        "common": str(repo.common_dir),
        "worktree": str(repo.worktree),
        "branch": repo.branch,
        "base_ref": repo.base_ref,
        "base_oid": repo.base_oid,
        "created": int(repo.branch_created),
        "enabled": int(repo.enabled),
    }
