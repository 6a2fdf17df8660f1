"""What an approved request does: commit, push, open or attach a PR, delete; and /run scripts.

Only reached from :meth:`GitFlow.decide` after a decision, with the request's stored arguments.
"""

from __future__ import annotations

from kanban_core.errors import ValidationError
from kanban_core.workspaces.gitops import commits, push, secrets
from kanban_core.workspaces.interactive import store
from kanban_core.workspaces.interactive.gitbase import OUTPUT_CHARS, GitBase, head_oid, run_argv
from kanban_core.workspaces.interactive.records import Approval, Caller, Workspace


class GitExecutions(GitBase):
    """The executions behind confirmations and approvals."""

    # -- executions (only after a decision) -------------------------------------------------

    def _do_commit(self, ws: Workspace, approval: Approval, caller: Caller) -> list[str]:
        target = self._repo(ws, approval.args["repo"])
        self._committable(target)
        message = commits.commit_message(
            approval.args["header"], None, self._trailers(ws, approval)
        )
        before = head_oid(target.worktree)
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
            strays=tuple(str(name) for name in approval.args.get("strays", ())),
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
            code, output = run_argv(
                list(scripts[name]), target.worktree, env, self.cfg.script_timeout_seconds
            )
        except OSError as exc:
            code, output = -1, f"cannot start: {exc}"
        text, _ = secrets.redact(output[-OUTPUT_CHARS:])
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
