"""Git from chat: status, diff, and commit/push/PR/attach/delete behind confirmations.

Every mutation is two steps. The request checks everything it can (nothing is touched) and
stores a durable, single-use, expiring approval holding the exact arguments; only the decision
— the requester's confirmation, or an approver's approval for high-risk work — executes it,
with those arguments and no others. Nothing reaches a remote before that.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kanban_core.errors import KanbanError, ValidationError
from kanban_core.gitops import commits, github, push, secrets, summary
from kanban_core.gitops.runner import NETWORK_TIMEOUT_S, GitOpError, run_git
from kanban_core.gitops.status import RepoStatus, repo_status, unified_diff
from kanban_core.workspace import approvals, store
from kanban_core.workspace.records import Approval, ApprovalKind, Workspace, WorkspaceRepo
from kanban_core.workspace.service import Caller, WorkspaceService

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
_OUTPUT_CHARS = 3000


class WhichRepo(KanbanError):
    """A write command in a multi-repo workspace with no active repo: the person must choose."""

    def __init__(self, ws: Workspace, verb: str) -> None:
        names = ", ".join(r.slug for r in ws.repos)
        super().__init__(f"{ws.id} has several repositories ({names}); say which: --repo <name>")
        self.choices = tuple(r.slug for r in ws.repos)
        self.verb = verb


@dataclass(frozen=True, slots=True)
class DiffView:
    """A diff for chat: the summary, the patch inline when it fits, else as a file."""

    lines: list[str]
    inline: str | None
    attachment: tuple[str, bytes] | None
    redacted: bool


@dataclass(frozen=True, slots=True)
class Card:
    """A pending request to show with approve/deny buttons."""

    approval: Approval
    lines: list[str]


class GitFlow:
    """Git operations on one board's workspaces."""

    def __init__(self, service: WorkspaceService, environ: Mapping[str, str]) -> None:
        self.svc = service
        self.cfg = service.cfg
        self.environ = environ
        self._execute: dict[str, Callable[[Workspace, Approval, Caller], list[str]]] = {
            "commit": self._do_commit,
            "push": self._do_push,
            "pr": self._do_pr,
            "attach": self._do_attach,
            "delete": self._do_delete,
        }

    # -- reads ------------------------------------------------------------------------------

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
        paths = [_check_path(path)] if path else []
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
            target.worktree, base_ref=_live_base(target), expected_branch=target.branch
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
        base = _branch_name(target.base_ref)
        try:
            plan: push.PushPlan | None = self._plan(target)
        except push.PushRefused as exc:
            if exc.kind != "nothing_to_push":
                raise
            plan = None
        self._check_remote_base(target, base)
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
        losses = self.svc.delete_preflight(ws)
        at_risk = any(loss.at_risk for loss in losses) or delete_branch
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
        if at_risk:
            lines.append("⚠ work would be lost: this needs an approver's approval")
        kind = ApprovalKind.APPROVAL if at_risk else ApprovalKind.CONFIRM
        args = {"discard": at_risk, "delete_branch": delete_branch}
        return self._card(ws, caller, "delete", args, lines, kind)

    # -- decisions --------------------------------------------------------------------------

    def decide(
        self, caller: Caller, approval_id: str, *, nonce: str | None, approve: bool
    ) -> list[str]:
        """Approve (and execute, once) or deny a request."""
        with self.svc.board.db.transaction(write=True) as tx:
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
                outcome = "approved" if approve else "denied"
            except approvals.ApprovalRefused as exc:
                decided, outcome = None, f"refused: {exc}"
            ws_id = decided.workspace_id if decided else (approvals.get(tx, approval_id) or None)
        if decided is None:
            self._audit(
                ws_id if isinstance(ws_id, str) else getattr(ws_id, "workspace_id", "?"),
                caller,
                "decide",
                "refused",
                outcome,
                approval_id,
            )
            raise approvals.ApprovalRefused(outcome.removeprefix("refused: "))
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

    # -- executions (only after a decision) -------------------------------------------------

    def _do_commit(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        target = self._repo(ws, approval.args["repo"])
        self._committable(target)
        message = commits.commit_message(
            approval.args["header"], None, self._trailers(ws, approval)
        )
        before = _head(target.worktree)
        made = commits.commit_all(
            target.worktree,
            message,
            locks_dir=self.svc.locks_dir,
            author=(approval.requester_name, "kanban@localhost"),
            branch=target.branch,  # checked again under the repo lock: a switch may race us
        )
        self._audit(
            ws.id,
            caller,
            "commit",
            "ok",
            approval.args["header"],
            approval.id,
            repo=target.slug,
            before=before,
            after=made.oid,
        )
        note = (
            " (no git identity configured: committed as the requester)"
            if made.identity_fallback
            else ""
        )
        return [f"committed {made.oid[:12]} in {target.slug} ({made.files} file(s)){note}"]

    def _do_push(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        target = self._repo(ws, approval.args["repo"])
        plan = self._plan(target)
        force = bool(approval.args.get("force"))
        if force and plan.remote_oid != approval.args.get("lease"):
            raise push.PushRejected(
                "the remote branch moved since the approval; ask again", "non_fast_forward"
            )
        oid = push.push(target.worktree, plan, locks_dir=self.svc.locks_dir, force_with_lease=force)
        self._audit(
            ws.id,
            caller,
            "push",
            "ok",
            f"{plan.count} commit(s) to {plan.remote}",
            approval.id,
            repo=target.slug,
            before=plan.remote_oid,
            after=oid,
        )
        return [f"pushed {plan.branch} to {plan.remote} ({plan.count} commit(s), now {oid[:12]})"]

    def _do_pr(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        target = self._repo(ws, approval.args["repo"])
        lines: list[str] = []
        try:
            lines += self._do_push(ws, approval, caller)
        except push.PushRefused as exc:
            if exc.kind != "nothing_to_push":
                raise
        host = self._host(target)
        task = self.svc.board.get(ws.task_id)
        body = (
            f"{task.body or task.title}\n\nKanban task {task.ref}, workspace {ws.id}.\n"
            + "".join(
                f"\nAlso in this workspace: {r.slug} ({r.branch})"
                for r in ws.repos
                if r.slug != target.slug
            )
        )
        pr = host.create(
            self._remote_repo(target),
            head=target.branch,
            base=approval.args["base"],
            title=approval.args["title"],
            body=body,
            draft=bool(approval.args["draft"]),
        )
        with self.svc.board.db.transaction(write=True) as tx:
            store.set_pr(tx, ws.id, target.slug, pr.number, pr.url, pr.state)
        self._audit(ws.id, caller, "pr", "ok", pr.url, approval.id, repo=target.slug)
        return [*lines, f"opened PR #{pr.number}: {pr.url}"]

    def _do_attach(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        target = self._repo(ws, approval.args["repo"])
        args = approval.args
        with self.svc.board.db.transaction(write=True) as tx:
            store.set_pr(tx, ws.id, target.slug, int(args["number"]), args["url"], args["state"])
        self._audit(ws.id, caller, "attach", "ok", args["url"], approval.id, repo=target.slug)
        return [f"attached PR #{args['number']} to {target.slug}: {args['url']}"]

    def _do_delete(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        return self.svc.delete(
            ws,
            caller,
            discard=bool(approval.args["discard"]),
            delete_branch=bool(approval.args["delete_branch"]),
            approval_id=approval.id,
        )

    # -- scripts ----------------------------------------------------------------------------

    def run_script(
        self, ws: Workspace, caller: Caller, repo: str | None, name: str
    ) -> tuple[int, str]:
        """Run a script configured for the repository (argv, no shell) in its worktree."""
        (target,) = self.targets(ws, repo, write=True, verb="run")
        configured = self.cfg.repos.get(target.slug)
        scripts = configured.scripts if configured else {}
        if name not in scripts:
            known = ", ".join(sorted(scripts)) or "none"
            raise ValidationError(
                f"{name!r} is not a configured script of {target.slug} "
                f"(configured: {known}); no other commands run from chat"
            )
        env = {
            k: v
            for k, v in self.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
        }
        try:
            code, output = _run_script(
                list(scripts[name]), target.worktree, env, self.cfg.script_timeout_seconds
            )
        except OSError as exc:
            code, output = -1, f"cannot start: {exc}"
        text, _ = secrets.redact(output[-_OUTPUT_CHARS:])
        self._audit(
            ws.id,
            caller,
            "run",
            "ok" if code == 0 else "failed",
            f"{name}: exit {code}",
            None,
            repo=target.slug,
        )
        return code, text

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
        with self.svc.board.db.transaction(write=True) as tx:
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

    def _plan(self, target: WorkspaceRepo) -> push.PushPlan:
        return push.plan_push(
            target.worktree, branch=target.branch, protected=self.cfg.protected_branches
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

    def _check_remote_base(self, target: WorkspaceRepo, base: str) -> None:
        remote = push.push_remote(target.worktree)
        if remote is None:
            raise push.PushRefused("the repository has no remote", "no_remote")
        found = run_git(
            target.worktree, "ls-remote", "--heads", "--", remote, base, timeout=NETWORK_TIMEOUT_S
        ).text
        if not found.strip():
            raise GitOpError(f"the base branch {base} does not exist on {remote}")

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


def _run_script(argv: list[str], cwd: Path, env: dict[str, str], timeout: int) -> tuple[int, str]:
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


def _branch_name(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/remotes/origin/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def _live_base(target: WorkspaceRepo) -> str:
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


def _head(worktree: Path) -> str | None:
    res = run_git(worktree, "rev-parse", "--verify", "-q", "HEAD", check=False)
    return res.text.strip() or None


def _check_path(path: str) -> str:
    # A pathspec from chat: relative, inside the worktree, never an option or magic pathspec.
    if path.startswith(("-", ":", "/")) or ".." in Path(path).parts or "\0" in path:
        raise ValidationError(f"not a path inside the workspace: {path!r}")
    return path
