"""Git from chat: status, diff, and commit/push/PR/attach/delete behind confirmations.

Every mutation is two steps. The request checks everything it can (nothing is touched) and
stores a durable, single-use, expiring approval holding the exact arguments; only the decision
— the requester's confirmation, or an approver's approval for high-risk work — executes it,
with those arguments and no others. Nothing reaches a remote before that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from kanban_core.errors import KanbanError, ValidationError
from kanban_core.workspaces.gitops import commits, github, push, secrets, summary
from kanban_core.workspaces.gitops.status import repo_status, unified_diff
from kanban_core.workspaces.interactive import approvals
from kanban_core.workspaces.interactive.gitbase import Card, branch_name, check_path, live_base
from kanban_core.workspaces.interactive.gitexec import GitExecutions
from kanban_core.workspaces.interactive.records import (
    Approval,
    ApprovalKind,
    Caller,
    Workspace,
    WorkspaceRepo,
)
from kanban_core.workspaces.interactive.service import WorkspaceService

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DiffView:
    """A diff for chat: the summary, the patch inline when it fits, else as a file."""

    lines: list[str]
    inline: str | None
    attachment: tuple[str, bytes] | None
    redacted: bool


class GitFlow(GitExecutions):
    """Git operations on one board's workspaces."""

    def __init__(self, service: WorkspaceService, environ: Mapping[str, str]) -> None:
        super().__init__(service, environ)
        self._execute: dict[str, Callable[[Workspace, Approval, Caller], list[str]]] = {
            "commit": self._do_commit,
            "push": self._do_push,
            "pr": self._do_pr,
            "attach": self._do_attach,
            "delete": self._do_delete,
        }

    # -- reads ------------------------------------------------------------------------------

    def status(self, ws: Workspace, repo: str | None) -> list[str]:
        """D-11 status lines for the target repositories."""
        lines: list[str] = []
        for target in self.targets(ws, repo, write=False, verb="git-status"):
            lines += self._status_lines(target)
        return lines

    def diff(self, ws: Workspace, repo: str | None, path: str | None, *, budget: int) -> DiffView:
        """The summary, and the patch inline within ``budget`` characters or as a file."""
        lines: list[str] = []
        patches: list[bytes] = []
        paths = [check_path(path)] if path else []
        for target in self.targets(ws, repo, write=False, verb="diff"):
            lines += self._status_lines(target)
            patches.append(unified_diff(target.worktree, base_ref=target.base_oid, paths=paths))
        patch = b"".join(patches)
        if not patch.strip():
            return DiffView([*lines, "(no changes)"], None, None, False)
        inline, redacted = summary.diff_budgeted(patch, budget_chars=budget)
        if inline is not None:
            return DiffView(lines, inline, None, redacted)
        text, count = secrets.redact(patch.decode("utf-8", errors="replace"))
        data = text.encode()
        if len(data) > MAX_ATTACHMENT_BYTES:
            lines.append(
                f"the full diff is {len(data) // 1024} KiB, over the {MAX_ATTACHMENT_BYTES >> 20}"
                " MiB limit for a file; narrow it: /diff <path>"
            )
            return DiffView(lines, None, None, count > 0)
        name = f"{ws.id}-{repo or ws.active_repo or 'all'}.diff"
        lines.append(f"(the full diff is attached as {name})")
        return DiffView(lines, None, (name, data), count > 0)

    def _status_lines(self, target: WorkspaceRepo) -> list[str]:
        if not target.worktree.is_dir():
            return [
                f"repo {target.slug}  ⚠ the worktree is missing (it is recreated on the "
                "next turn or /ws unarchive)"
            ]
        state = repo_status(
            target.worktree, base_ref=live_base(target), expected_branch=target.branch
        )
        lines = summary.status_lines(target.slug, state)
        if target.pr_url:
            lines.append(f"  PR #{target.pr_number} ({target.pr_state}): {target.pr_url}")
        return lines

    # -- requests ---------------------------------------------------------------------------

    def request_commit(
        self,
        ws: Workspace,
        caller: Caller,
        repo: str | None,
        *,
        message: str | None,
        scope: str | None,
    ) -> Card:
        """Preflight a commit and ask the requester to confirm it."""
        (target,) = self.targets(ws, repo, write=True, verb="commit")
        state = self._committable(target)
        description = message or self.svc.board.get(ws.task_id).title
        header = commits.commit_header(
            scope or commits.default_scope(target.slug, state.files), description
        )
        files = [f"  {f.change}  {secrets.clean_display(f.path)}" for f in state.files[:10]]
        more = len(state.files) - len(files)
        lines = [
            f"Commit {len(state.files)} file(s) in {target.slug} on {target.branch}:",
            f"  {header}",
            *files,
        ] + ([f"  … {more} more"] if more > 0 else [])
        args = {"repo": target.slug, "header": header}
        return self._card(ws, caller, "commit", args, lines, ApprovalKind.CONFIRM)

    def request_push(
        self, ws: Workspace, caller: Caller, repo: str | None, *, force_with_lease: bool
    ) -> Card:
        """Preflight a push; force-with-lease needs an approver, not only a confirmation."""
        (target,) = self.targets(ws, repo, write=True, verb="push")
        self._committable(target, allow_clean=True, verb="push")
        plan = self._plan(target)
        lines = [f"Push {plan.count} commit(s) of {plan.branch} to {plan.remote}:"]
        lines += [f"  {oid} {subject}" for oid, subject in plan.commits[:10]]
        kind = ApprovalKind.CONFIRM
        if force_with_lease:
            if plan.remote_oid is None:
                raise push.PushRefused(
                    f"{plan.branch} does not exist on {plan.remote} yet: push it without "
                    "--force-with-lease",
                    "no_lease",
                )
            kind = ApprovalKind.APPROVAL
            lines.insert(
                0,
                f"⚠ FORCE push (with lease: the remote must still be at "
                f"{(plan.remote_oid or '?')[:12]}) — this rewrites the remote branch",
            )
        args = {"repo": target.slug, "force": force_with_lease, "lease": plan.remote_oid}
        return self._card(ws, caller, "push", args, lines, kind)

    def request_pr(
        self, ws: Workspace, caller: Caller, repo: str | None, *, title: str | None, draft: bool
    ) -> Card:
        """Preflight a PR (host access first, before any push) and ask to confirm."""
        (target,) = self.targets(ws, repo, write=True, verb="pr")
        host = self._host(target)
        host.check()
        remote_repo = self._remote_repo(target)
        base = branch_name(target.base_ref)
        try:  # one remote call: what would be pushed, and whether the base exists there
            plan: push.PushPlan | None = self._plan(target, require=[base])
        except push.PushRefused as exc:
            if exc.kind != "nothing_to_push":
                raise
            plan = None
        title = title or self.svc.board.get(ws.task_id).title
        lines = [
            f"Open a {'draft ' if draft else ''}pull request on {remote_repo.slug}: "
            f"{base} ← {target.branch}",
            f"  title: {title}",
        ]
        if plan is not None:
            lines.insert(0, f"Push {plan.count} commit(s) of {plan.branch} to {plan.remote}, then:")
        args = {"repo": target.slug, "title": title, "draft": draft, "base": base}
        return self._card(ws, caller, "pr", args, lines, ApprovalKind.CONFIRM)

    def request_attach(
        self,
        ws: Workspace,
        caller: Caller,
        repo: str | None,
        *,
        ref: str | None,
        force_attach: bool,
    ) -> Card:
        """Find the PR (named, or the branch's: open ones first) and ask to confirm."""
        (target,) = self.targets(ws, repo, write=True, verb="attach")
        host = self._host(target)
        host.check()
        remote_repo = self._remote_repo(target)
        if ref:
            pr = host.get(remote_repo, github.parse_pr_ref(ref, remote_repo))
        else:
            found = github.choose_attach(host.list_for_head(remote_repo, target.branch))
            if found is None:
                raise ValidationError(f"no pull request has head {target.branch}; open one: /pr")
            pr = found
        if pr.head != target.branch and not force_attach:
            raise ValidationError(
                f"PR #{pr.number} is for {pr.head}, not this workspace's {target.branch}; "
                "add --force-attach if you mean it"
            )
        lines = [f"Attach PR #{pr.number} ({pr.state}) to {target.slug}: {pr.url}", f"  {pr.title}"]
        args = {"repo": target.slug, "number": pr.number, "url": pr.url, "state": pr.state}
        return self._card(ws, caller, "attach", args, lines, ApprovalKind.CONFIRM)

    def request_delete(self, ws: Workspace, caller: Caller, *, delete_branch: bool) -> Card:
        """The D-09 preflight; anything that would be lost makes it an approval."""
        plan = self.svc.delete_preflight(ws)
        losses = plan.losses
        at_risk = plan.loses_work(delete_branch=delete_branch) or delete_branch
        lines = [
            f"Delete {ws.id} ({ws.name}): its worktrees and records. Branches "
            + (
                "are DELETED (only ours, compare-and-delete)."
                if delete_branch
                else "and their commits stay."
            )
        ]
        for loss in losses:
            unpushed = (
                f"{loss.unpushed} unpushed commit(s)"
                if loss.unpushed is not None
                else f"cannot verify pushes (no remote): {loss.ahead_of_base} commit(s) "
                "would survive only on the branch"
            )
            lines.append(
                f"  {loss.slug}: {loss.uncommitted} uncommitted, {loss.untracked} "
                f"untracked file(s), {unpushed}"
            )
        if plan.strays:
            shown = ", ".join(plan.strays[:10])
            more = f" and {len(plan.strays) - 10} more" if len(plan.strays) > 10 else ""
            lines.append(f"  beside the repositories in the workspace folder: {shown}{more}")
        if at_risk:
            lines.append("⚠ work would be lost: this needs an approver's approval")
        kind = ApprovalKind.APPROVAL if at_risk else ApprovalKind.CONFIRM
        args = {"discard": at_risk, "delete_branch": delete_branch, "strays": list(plan.strays)}
        return self._card(ws, caller, "delete", args, lines, kind)

    # -- decisions --------------------------------------------------------------------------

    def decide(
        self, caller: Caller, approval_id: str, *, nonce: str | None, approve: bool
    ) -> list[str]:
        """Approve (and execute, once) or deny a request."""
        refusal: approvals.ApprovalRefused | None = None
        decided: Approval | None = None
        asked: Approval | None = None
        with self.svc.board.db.transaction(write=True) as tx:
            # A refusal still commits: deciding may have marked the request expired.
            try:
                decided = approvals.decide(
                    tx,
                    approval_id,
                    nonce=nonce,
                    decider=caller.principal,
                    approve=approve,
                    may_approve=caller.may_approve,
                    four_eyes=self.cfg.four_eyes,
                )
            except approvals.ApprovalRefused as exc:
                refusal, asked = exc, approvals.get(tx, approval_id)
        if refusal is not None or decided is None:
            ws_id = asked.workspace_id if asked else "?"
            self._audit(ws_id, caller, "decide", "refused", f"refused: {refusal}", approval_id)
            raise refusal or approvals.ApprovalRefused(f"no such request {approval_id}")
        outcome = "approved" if approve else "denied"
        self._audit(decided.workspace_id, caller, decided.op, outcome, None, approval_id)
        if not approve:
            return [f"{decided.op} cancelled ({approval_id})"]
        if approvals.args_hash(decided.op, decided.args) != decided.args_hash:
            raise approvals.ApprovalRefused("the request was altered; ask again")
        ws = self.svc.get(decided.workspace_id)
        try:
            lines = self._execute[decided.op](ws, decided, caller)
        except KanbanError as exc:
            self._audit(ws.id, caller, decided.op, "failed", str(exc), approval_id)
            self._result(approval_id, f"failed: {exc}")
            raise
        self._result(approval_id, "; ".join(lines))
        return lines
