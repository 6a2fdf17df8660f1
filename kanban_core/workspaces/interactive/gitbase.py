"""What the git flows share: targets, preflights, the PR host, cards, audit rows."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_core.errors import KanbanError, ValidationError
from kanban_core.workspaces.gitops import commits, github, push
from kanban_core.workspaces.gitops.runner import run_git
from kanban_core.workspaces.gitops.status import RepoStatus, repo_status
from kanban_core.workspaces.interactive import approvals, store
from kanban_core.workspaces.interactive.records import (
    Approval,
    ApprovalKind,
    Caller,
    Workspace,
    WorkspaceRepo,
)
from kanban_core.workspaces.interactive.service import WorkspaceService

OUTPUT_CHARS = 3000


class WhichRepo(KanbanError):
    """A write command in a multi-repo workspace with no active repo: the person must choose."""

    def __init__(self, ws: Workspace, verb: str) -> None:
        names = ", ".join(r.slug for r in ws.repos)
        super().__init__(f"{ws.id} has several repositories ({names}); say which: --repo <name>")
        self.choices = tuple(r.slug for r in ws.repos)
        self.verb = verb


@dataclass(frozen=True, slots=True)
class Card:
    """A pending request to show with approve/deny buttons."""

    approval: Approval
    lines: list[str]


class GitBase:
    """The workspace service, its settings and the caller's environment (tokens live there)."""

    def __init__(self, service: WorkspaceService, environ: Mapping[str, str]) -> None:
        self.svc = service
        self.cfg = service.cfg
        self.environ = environ

    def targets(
        self, ws: Workspace, repo: str | None, *, write: bool, verb: str
    ) -> list[WorkspaceRepo]:
        """The repositories a command applies to: named, else active, else all (reads) or ask."""
        if repo:
            found = ws.repo(repo)
            if found is None:
                names = ", ".join(r.slug for r in ws.repos)
                raise ValidationError(f"{ws.id} has no repository {repo!r} ({names})")
            return [found]
        if ws.active_repo and (active := ws.repo(ws.active_repo)) is not None:
            return [active]
        if len(ws.repos) == 1:
            return list(ws.repos)
        if write:
            raise WhichRepo(ws, verb)
        return [r for r in ws.repos if r.enabled]

    # -- helpers ----------------------------------------------------------------------------

    def _card(
        self,
        ws: Workspace,
        caller: Caller,
        op: str,
        args: dict[str, Any],
        lines: list[str],
        kind: ApprovalKind,
    ) -> Card:
        with store.writing(self.svc.board.db, ws.id) as tx:
            approval = approvals.request(
                tx,
                kind=kind,
                op=op,
                args=args,
                ws_id=ws.id,
                summary="\n".join(lines),
                requester=caller.principal,
                requester_name=caller.name,
                place=caller.place,
                ttl_s=self.cfg.approval_ttl_seconds,
            )
            approvals.audit(
                tx,
                ws_id=ws.id,
                op=op,
                principal=caller.principal,
                outcome="requested",
                args=args,
                approval_id=approval.id,
            )
        return Card(approval, lines)

    def _committable(
        self, target: WorkspaceRepo, *, allow_clean: bool = False, verb: str = "commit"
    ) -> RepoStatus:
        state = repo_status(
            target.worktree, base_ref=target.base_oid, expected_branch=target.branch
        )
        if state.branch_mismatch:
            raise ValidationError(
                f"{target.slug}: the worktree is on {state.branch or 'a detached HEAD'}, not "
                f"{target.branch}; switch back (git switch {target.branch}) before /{verb}"
            )
        if state.in_progress or state.conflicted:
            raise ValidationError(
                f"{target.slug}: a {state.in_progress or 'merge'} is in "
                "progress — resolve or abort it first"
            )
        if not allow_clean and state.clean:
            raise commits.NothingToCommit(f"{target.slug}: nothing to commit")
        return state

    def _plan(self, target: WorkspaceRepo, *, require: Sequence[str] = ()) -> push.PushPlan:
        return push.plan_push(
            target.worktree,
            branch=target.branch,
            protected=self.cfg.protected_branches,
            require=require,
        )

    def _host(self, target: WorkspaceRepo) -> github.PrHost:
        gh = self.cfg.github
        token = self.environ.get(gh.token_env)
        if gh.use == "rest" or (gh.use == "auto" and token):
            return github.GitHubRest(gh.api_base, token)
        return github.GhCli(target.worktree, gh=self.environ.get("KANBAN_GH", "gh"))

    def _remote_repo(self, target: WorkspaceRepo) -> github.RemoteRepo:
        configured = self.cfg.repos.get(target.slug)
        if configured and configured.github_repo:
            owner, _, name = configured.github_repo.partition("/")
            return github.RemoteRepo(host="github.com", owner=owner, name=name)
        remote = push.push_remote(target.worktree) or "origin"
        return github.parse_remote_url(github.remote_url(target.worktree, remote))

    def _trailers(self, ws: Workspace, approval: Approval) -> list[tuple[str, str]]:
        values = {
            "task": ("Task", f"t{ws.task_id}"),
            "workspace": ("Workspace", ws.id),
            "session": ("Session", ws.active_session_id or ""),
            "requested-by": ("Requested-by", approval.requested_by),
            "agent": ("Agent", ws.executor),
        }
        return [values[name] for name in self.cfg.trailers if values[name][1]]

    def _repo(self, ws: Workspace, slug: str) -> WorkspaceRepo:
        found = ws.repo(slug)
        if found is None:
            raise ValidationError(f"{ws.id} no longer has repository {slug!r}")
        return found

    def _result(self, approval_id: str, text: str) -> None:
        with self.svc.board.db.transaction(write=True) as tx:
            approvals.set_result(tx, approval_id, text)

    def _audit(
        self,
        ws_id: str,
        caller: Caller,
        op: str,
        outcome: str,
        detail: str | None,
        approval_id: str | None,
        *,
        repo: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> None:
        with self.svc.board.db.transaction(write=True) as tx:
            approvals.audit(
                tx,
                ws_id=ws_id,
                op=op,
                principal=caller.principal,
                outcome=outcome,
                detail=detail,
                repo=repo,
                approval_id=approval_id,
                before_oid=before,
                after_oid=after,
            )


def run_argv(argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> tuple[int, str]:
    """Run a script in its own process group; on timeout the whole group is killed."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # its children too (a test runner's workers)
            proc.communicate()
            return -1, f"timed out after {timeout}s (the script and its children were stopped)"
    return proc.returncode, out.decode("utf-8", "replace")


def branch_name(ref: str) -> str:
    """``origin/main`` or ``refs/heads/main`` → ``main``."""
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def live_base(target: WorkspaceRepo) -> str:
    """The ref to compare a worktree with: its base branch now, else the recorded fork."""
    # Status compares with the base branch as it is now, so "behind base" can show and the
    # line names the branch; the recorded fork oid only once that ref is gone.
    res = run_git(
        target.worktree,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{target.base_ref}^{{commit}}",
        check=False,
    )
    return target.base_ref if res.returncode == 0 else target.base_oid


def head_oid(worktree: Path) -> str | None:
    """The worktree's HEAD commit, or None."""
    res = run_git(worktree, "rev-parse", "--verify", "-q", "HEAD", check=False)
    return res.text.strip() or None


def check_path(path: str) -> str:
    """A path from chat, refused unless it stays inside the worktree."""
    # A pathspec from chat: relative, inside the worktree, never an option or magic pathspec.
    if path.startswith(("-", ":", "/")) or ".." in Path(path).parts or "\0" in path:
        raise ValidationError(f"not a path inside the workspace: {path!r}")
    return path
