"""``ws`` subcommands for git: status, diff, commit, push, pr, attach, run, approvals, delete."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kanban_core.board.exec_records import ExecCommand
from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import Action, CommandResult, FileOut, Text
from kanban_core.commands.workspace_access import caller, service, workspace
from kanban_core.commands.workspace_remote import on_workspace_host
from kanban_core.workspaces.interactive.approval_refs import short
from kanban_core.workspaces.interactive.records import ApprovalKind, Caller, Workspace

if TYPE_CHECKING:
    from kanban_core.workspaces.interactive.gitbase import Card, WhichRepo
    from kanban_core.workspaces.interactive.gitflow import GitFlow
    from kanban_core.workspaces.interactive.service import WorkspaceService


def register(verbs: Any) -> None:
    """Add the git subcommands under ``ws``."""
    p = verbs.add_parser("status", help="branch, ahead/behind and changed files per repo")
    _common(p)
    p.set_defaults(handler=status)

    p = verbs.add_parser("diff", help="the changes (a file when too long for the chat)")
    p.add_argument("path", nargs="?", help="only this path")
    _common(p)
    p.set_defaults(handler=diff)

    p = verbs.add_parser("commit", help="commit the repo's changes (asks to confirm)")
    p.add_argument("message", nargs="?", help="what the commit does (default: the task title)")
    p.add_argument("--scope", help="the spirit(<scope>) of the header")
    _common(p)
    p.set_defaults(handler=commit)

    p = verbs.add_parser("push", help="push the workspace branch (asks to confirm)")
    p.add_argument(
        "--force-with-lease",
        action="store_true",
        help="overwrite the remote branch if it is where we last saw it (approval)",
    )
    _common(p)
    p.set_defaults(handler=push)

    p = verbs.add_parser("pr", help="open a pull request (asks to confirm; pushes first)")
    p.add_argument("title", nargs="?")
    p.add_argument("--draft", action="store_true")
    _common(p)
    p.set_defaults(handler=pr)

    p = verbs.add_parser("attach", help="attach an existing pull request (URL or #number)")
    p.add_argument("ref", nargs="?")
    p.add_argument(
        "--force-attach", action="store_true", help="attach even though its head is another branch"
    )
    _common(p)
    p.set_defaults(handler=attach)

    p = verbs.add_parser("run", help="run a script configured for the repo (e.g. test)")
    p.add_argument("script")
    _common(p)
    p.set_defaults(handler=run)

    p = verbs.add_parser("repo", help="the repository commands apply to (--all: every one)")
    p.add_argument("slug", nargs="?")
    p.add_argument("--all", action="store_true")
    p.add_argument("--ws", metavar="WS")
    p.set_defaults(handler=set_repo)

    p = verbs.add_parser(
        "delete", help="delete worktrees and records (asks; approval if work would be lost)"
    )
    p.add_argument("ws", nargs="?", metavar="WS")
    p.add_argument(
        "--delete-branch",
        action="store_true",
        help="also delete the branches we created (approval)",
    )
    p.set_defaults(handler=delete)

    for name in ("approve", "deny"):
        p = verbs.add_parser(name, help=f"{name} a pending request")
        p.add_argument(
            "request",
            nargs="?",
            metavar="ID",
            help="the request's id or its last part (default: the only one open in this chat)",
        )
        p.add_argument("--nonce", help=argparse.SUPPRESS)
        p.set_defaults(handler=decide, approve=name == "approve")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", metavar="NAME", help="the repository (default: the active one)")
    p.add_argument("--ws", metavar="WS", help="workspace id (default: this chat's)")


def flow(ctx: CommandContext, svc: WorkspaceService) -> GitFlow:
    """The git operations with the caller's environment (tokens come from there only)."""
    from kanban_core.workspaces.interactive.gitflow import GitFlow

    return GitFlow(svc, ctx.environ)


def review_actions(ws: Workspace) -> tuple[Action, ...]:
    """The fast-path buttons under a workspace's status."""
    return (
        Action("Diff", f"k:diff --ws {ws.id}"),
        Action("Commit", f"k:commit --ws {ws.id}"),
        Action("Push", f"k:push --ws {ws.id}"),
        Action("PR", f"k:pr --ws {ws.id}"),
    )


def _context(
    ctx: CommandContext, args: argparse.Namespace
) -> tuple[WorkspaceService, Workspace, GitFlow]:

    svc = service(ctx)
    return svc, workspace(ctx, args, svc), flow(ctx, svc)


def _which(exc: WhichRepo) -> CommandResult:
    actions = tuple(Action(slug, f"k:{exc.verb} --repo {slug}") for slug in exc.choices)
    return CommandResult(exit_code=1, blocks=(Text(str(exc)),), actions=actions[:10])


@on_workspace_host(ExecCommand.STATUS)
def status(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws status``."""
    _svc, ws, git = _context(ctx, args)
    lines = git.status(ws, args.repo)
    return CommandResult(blocks=(Text("\n".join(lines)),), actions=review_actions(ws))


@on_workspace_host(ExecCommand.DIFF)
def diff(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws diff``."""
    _svc, ws, git = _context(ctx, args)
    budget = ctx.chat_budget if ctx.chat_budget is not None else 50 * 1024 * 1024
    view = git.diff(ws, args.repo, args.path, budget=budget)
    blocks: list[Any] = [Text("\n".join(view.lines))]
    if view.inline:
        blocks.append(Text(view.inline))
    if view.redacted:
        blocks.append(Text("⚠ secrets in the diff were redacted"))
    files = (
        (FileOut(view.attachment[0], view.attachment[1], "text/x-diff"),) if view.attachment else ()
    )
    return CommandResult(blocks=tuple(blocks), files=files)


def _request(
    ctx: CommandContext,
    args: argparse.Namespace,
    ask: Callable[[GitFlow, Workspace, Caller], Card],
) -> CommandResult:
    """A write request: its card, or the question of which repository."""
    from kanban_core.workspaces.interactive.gitbase import WhichRepo

    _svc, ws, git = _context(ctx, args)
    try:
        return card(ask(git, ws, caller(ctx)), ctx)
    except WhichRepo as exc:
        return _which(exc)


@on_workspace_host(ExecCommand.COMMIT)
def commit(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws commit``: a confirmation card."""
    return _request(
        ctx,
        args,
        lambda git, ws, who: git.request_commit(
            ws, who, args.repo, message=args.message, scope=args.scope
        ),
    )


@on_workspace_host(ExecCommand.PUSH)
def push(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws push``: a confirmation card (an approval with --force-with-lease)."""
    return _request(
        ctx,
        args,
        lambda git, ws, who: git.request_push(
            ws, who, args.repo, force_with_lease=args.force_with_lease
        ),
    )


@on_workspace_host(ExecCommand.PR)
def pr(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws pr``: a confirmation card."""
    return _request(
        ctx,
        args,
        lambda git, ws, who: git.request_pr(ws, who, args.repo, title=args.title, draft=args.draft),
    )


@on_workspace_host(ExecCommand.ATTACH)
def attach(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws attach``: a confirmation card."""
    return _request(
        ctx,
        args,
        lambda git, ws, who: git.request_attach(
            ws, who, args.repo, ref=args.ref, force_attach=args.force_attach
        ),
    )


@on_workspace_host(ExecCommand.DELETE)
def delete(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws delete``: the preflight report as a confirmation or approval card."""

    svc = service(ctx)
    ws = svc.resolve(args.ws, caller(ctx).place)
    return card(
        flow(ctx, svc).request_delete(ws, caller(ctx), delete_branch=args.delete_branch), ctx
    )


@on_workspace_host(ExecCommand.RUN)
def run(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws run <script>``."""
    from kanban_core.workspaces.interactive.gitbase import WhichRepo

    _svc, ws, git = _context(ctx, args)
    try:
        code, output = git.run_script(ws, caller(ctx), args.repo, args.script)
    except WhichRepo as exc:
        return _which(exc)
    head = f"{args.script}: exit {code}"
    return CommandResult(
        exit_code=0 if code == 0 else 1, blocks=(Text(head), Text(output or "(no output)"))
    )


def set_repo(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws repo <slug>`` / ``--all``."""

    svc, ws, _git = _context(ctx, args)
    if not args.slug and not args.all:
        return CommandResult(
            blocks=(
                Text(
                    f"active repo: {ws.active_repo or 'all'} "
                    f"({', '.join(r.slug for r in ws.repos)})"
                ),
            )
        )
    svc.set_active_repo(ws, None if args.all else args.slug, caller(ctx))
    return CommandResult(blocks=(Text(f"commands now apply to {args.slug or 'every repository'}"),))


def _approval_workspace(ctx: CommandContext, args: argparse.Namespace) -> Workspace | None:
    """The workspace of the request an approve/deny names (its full id kept for the host);
    None for an unknown one, which the handler refuses in its own words."""
    from kanban_core.workspaces.interactive import approvals
    from kanban_core.workspaces.interactive.approval_refs import resolve

    svc = service(ctx)
    who = caller(ctx)
    with svc.board.db.transaction(write=False) as tx:
        verb = "approve" if args.approve else "deny"
        args.request = resolve(tx, args.request, who.place if ctx.place else None, verb)
        approval = approvals.get(tx, args.request)
    return None if approval is None else svc.get(approval.workspace_id)


def _decide_command(args: argparse.Namespace) -> ExecCommand:
    return ExecCommand.APPROVE if args.approve else ExecCommand.DENY


@on_workspace_host(ExecCommand.APPROVE, _approval_workspace, _decide_command)
def decide(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws approve|deny <id>``."""
    from kanban_core.workspaces.interactive.approval_refs import resolve

    svc = service(ctx)
    who = caller(ctx)
    with svc.board.db.transaction(write=False) as tx:
        verb = "approve" if args.approve else "deny"
        request = resolve(tx, args.request, who.place if ctx.place else None, verb)
    lines = flow(ctx, svc).decide(who, request, nonce=args.nonce, approve=args.approve)
    return CommandResult(blocks=tuple(Text(line) for line in lines))


def card(made: Card, ctx: CommandContext) -> CommandResult:
    """A pending request: what would happen, and how to say yes or no."""
    approval = made.approval
    confirm = approval.kind is ApprovalKind.CONFIRM
    yes, no = ("Confirm", "Cancel") if confirm else ("Approve", "Deny")
    who = "only you can confirm it" if confirm else "an approver must approve it"
    prefix = "kanban ws " if ctx.place is None else "/"
    ref = short(approval.id)
    hint = (
        f"{who}; expires in {(approval.expires_ms - approval.created_ms) // 60000} min. "
        f"Or type: {prefix}approve {ref} (or {prefix}deny {ref})"
    )
    actions = (
        Action(yes, f"ap:{approval.id}:{approval.nonce}"),
        Action(no, f"dn:{approval.id}:{approval.nonce}"),
    )
    return CommandResult(
        blocks=(Text("\n".join(made.lines)), Text(hint)),
        actions=actions,
        data={"approval": approval.id},
    )
