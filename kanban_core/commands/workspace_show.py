"""``ws show``: one workspace in full — repos, sessions, the queue, requests and its audit."""

from __future__ import annotations

import argparse
from typing import Any

from kanban_core.commands.context import CommandContext
from kanban_core.commands.result import Action, CommandResult, Heading, Table, Text
from kanban_core.commands.workspace_access import ago, host_of, service, workspace, ws_json
from kanban_core.commands.workspace_remote import elsewhere
from kanban_core.workspaces.interactive.records import Workspace

AUDIT_SHOWN = 20
AUDIT_MAX = 500


def show(ctx: CommandContext, args: argparse.Namespace) -> CommandResult:
    """``ws show``."""
    svc = service(ctx)
    ws = workspace(ctx, args, svc)
    from kanban_core.workspaces.interactive import approvals, store
    from kanban_core.workspaces.interactive.repair import checkout_of
    from kanban_core.workspaces.interactive.worktree_set import repo_health

    with svc.board.db.transaction(write=False) as tx:
        active = store.active_turn(tx, ws.id)
        waiting = store.queued_in_workspace(tx, ws.id)
        pending = approvals.pending(tx, ws.id)
        audit = approvals.audit_rows(tx, ws.id, limit=args.audit)
        audit_total = approvals.audit_count(tx, ws.id)
    paths = not ctx.from_chat
    sessions = svc.sessions(ws)
    host = host_of(ctx, ws)
    there = elsewhere(ctx, ws)
    # Health is read from the disk holding the worktrees; a workspace on another host is never
    # judged by this one's disk (a checkout at the same path here is another tree).
    health = {r.slug: None if there is not None else repo_health(checkout_of(r)) for r in ws.repos}
    if args.json:
        return CommandResult(
            data=ws_json(ws, host)
            | {
                "error": named(ws.error, ws, paths=paths),
                # Whether this host holds the worktrees (false: health is null, ask its host).
                "local": there is None,
                "health": health,
                "sessions": [
                    {
                        "position": s.position,
                        "id": s.id,
                        "name": s.name,
                        "agent": s.executor,
                        "state": state.value,
                        "messages": count,
                        "active": s.id == ws.active_session_id,
                        # Paused: its queue waits (a stop, a failed turn) until run or cleared.
                        "paused": s.queue_paused,
                        "pause_reason": s.pause_reason,
                    }
                    for s, state, count in sessions
                ],
                "turn": None
                if active is None
                else {"id": active.id, "status": active.status.value, "prompt": active.prompt},
                "queued": [{"session": q.session_id, "text": q.text} for q in waiting],
                "pending": [
                    {"id": a.id, "kind": a.kind.value, "op": a.op, "by": a.requester_name}
                    for a in pending
                ],
                "audit": [audit_json(row, ws, paths=paths) for row in audit],
                "audit_total": audit_total,
            },
            as_json=True,
        )
    blocks: list[Any] = [
        Heading(f"{ws.id} — {ws.name}"),
        Text(
            f"status {ws.shown_status}{' (pinned)' if ws.pinned else ''}; task t{ws.task_id}; "
            f"branch {ws.branch}; agent {ws.executor}; active repo {ws.active_repo or 'all'}"
            + (f"; on host {host}" if host else "")
            + (f"\nlast error: {named(ws.error, ws, paths=paths)}" if ws.error else "")
        ),
        Table(
            ("REPO", "BRANCH", "BASE", "HEALTH", "PR", *(("WORKTREE",) if paths else ())),
            tuple(
                (
                    r.slug + ("" if r.enabled else " (off)"),
                    r.branch,
                    r.base_ref,
                    health[r.slug] or f"on {host}",
                    r.pr_url or "-",
                    *((str(r.worktree),) if paths else ()),
                )
                for r in ws.repos
            ),
        ),
        Table(
            ("SESSION", "NAME", "AGENT", "STATE", "MESSAGES"),
            tuple(
                (
                    ("▶ " if s.id == ws.active_session_id else "") + str(s.position),
                    s.name or "-",
                    s.executor,
                    state.value,
                    str(count),
                )
                for s, state, count in sessions
            ),
        ),
    ]
    if there is not None:
        blocks.append(
            Text(f"worktree health: on host {there.name}'s disk, not read here; ws status asks it")
        )
    if active is not None:
        blocks.append(Text(f"turn {active.id} {active.status.value}: {active.prompt[:200]}"))
    if waiting:
        blocks.append(Text(f"{len(waiting)} queued follow-up(s) (/queue)"))
    blocks += [Text(f"pending {a.kind.value} {a.id}: {a.op}") for a in pending]
    if audit:
        blocks.append(
            Table(
                ("WHEN", "REPO", "OP", "WHO", "OUTCOME"),
                tuple((ago(row[0]), row[1] or "-", row[2], row[3], row[5]) for row in audit),
            )
        )
        if audit_total > len(audit):
            blocks.append(
                Text(
                    f"the newest {len(audit)} of {audit_total} audit rows "
                    f"(--audit N for more, --json for details)"
                )
            )
    # The status button is sent to the workspace's host like the command.
    status = (Action("Status", f"k:git-status --ws {ws.id}"),) if there is not None else ()
    return CommandResult(blocks=tuple(blocks), data=ws_json(ws, host), actions=status)


def audit_count(value: str) -> int:
    """``--audit N``: 1 to AUDIT_MAX rows."""
    if not value.isdigit() or not 1 <= int(value) <= AUDIT_MAX:
        raise argparse.ArgumentTypeError(f"--audit takes a number from 1 to {AUDIT_MAX}")
    return int(value)


def named(text: str | None, ws: Workspace, *, paths: bool) -> str | None:
    """``text`` with the workspace's own paths replaced by names, unless paths may be shown."""
    if not text or paths:
        return text
    # Audit details and errors name worktrees and the workspace folder; chat sees names only.
    for repo in ws.repos:
        text = text.replace(str(repo.worktree), f"<{repo.slug}>")
        text = text.replace(str(repo.source), f"<{repo.slug} checkout>")
    return text.replace(str(ws.container), f"<{ws.id}>")


def audit_json(row: Any, ws: Workspace, *, paths: bool) -> dict[str, Any]:
    """One audit row in ``--json``; for chat, paths in its detail become names."""
    detail = named(row[6], ws, paths=paths)
    return {
        "at": row[0] / 1000,
        "repo": row[1],
        "op": row[2],
        "by": row[3],
        "approval": row[4],
        "outcome": row[5],
        "detail": detail,
    }


def session_json(ws: Workspace, session: Any, history: list[Any]) -> dict[str, Any]:
    """``ws sessions show N --json``: the session and its newest messages, oldest first."""
    return {
        "workspace": ws.id,
        "session": {
            "position": session.position,
            "id": session.id,
            "name": session.name,
            "agent": session.executor,
            "active": session.id == ws.active_session_id,
            "paused": session.queue_paused,
            "pause_reason": session.pause_reason,
        },
        "messages": [
            {
                "id": m.id,
                "role": m.role,
                "author": m.author,
                "text": m.text,
                "turn": m.turn_id,
                "created_at": m.created_ms // 1000,
            }
            for m in history
        ],
    }
