"""Operator paths through chat: /stop and its notice, short approvals, deleting, chat-safe paths.

The real gateway with the real python-telegram-bot against the fake Bot API, the real
dispatcher and worker supervisors running the fake agent, real git checkouts (the harness and
fixtures of ``test_workspace_parity``).
"""

from __future__ import annotations

import pytest

from kanban_core.storage import Transaction
from kanban_core.workspaces.interactive import approvals, store
from kanban_core.workspaces.interactive.records import TurnStatus, WorkspaceStatus
from tests.e2e import test_workspace_parity as parity
from tests.e2e.workspace_support import BOB, ChatGateway, Project
from tests.gitrepos import git

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = parity.anyio_backend
_ptb_timedelta = parity._ptb_timedelta
db_url = parity.db_url
project = parity.project
telegram = parity.telegram
github = parity.github
open_gateway = parity.open_gateway
gw = parity.gw
new_workspace = parity.new_workspace
ready = parity.ready
isolated_git = parity.isolated_git


def labels(card: object) -> list[str]:
    return [key["text"] for row in getattr(card, "keyboard", None) or [] for key in row]


async def test_stop_is_the_operators_offers_the_queue_and_unblock_runs_the_queued_message(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Stop me", "api", body="wait st1")
    await gw.until(lambda: project.waiting_pid("st1"))
    assert "queued (position 1)" in (await gw.say("write later.py")).text

    mark = gw.mark()
    stopped = await gw.say("/stop")
    assert "stopped turn" in stopped.text, stopped.text
    notice = await gw.notice("stopped by", after=mark)
    assert "@fake" not in notice.text, notice.text
    assert "alice" in notice.text, notice.text
    assert "1 queued follow-up(s) paused" in notice.text, notice.text
    card = gw.card_of(notice)
    assert labels(card) == ["Run next", "Clear queue", "Diff", "Commit"], labels(card)
    (session,) = gw.sessions(ws_id)
    assert session.queue_paused
    assert gw.workspace(ws_id).status is WorkspaceStatus.PAUSED

    # The board's unblock (typed, there is no button for it) runs the person's queued message.
    task_id = gw.workspace(ws_id).task_id
    assert "Unblocked" in (await gw.say(f"/kanban unblock t{task_id}")).text
    await gw.until(lambda: len(project.calls()) == 2 and ready(gw, ws_id), what="the queued turn")
    assert project.calls()[1]["message"] == "write later.py"
    assert gw.read(lambda tx: store.queued_in_workspace(tx, ws_id)) == []
    turns = gw.turns(session.id)
    assert [t.status for t in turns] == [TurnStatus.CANCELLED, TurnStatus.COMPLETED]
    assert "continue the task" not in turns[1].prompt


async def test_chat_cannot_point_the_server_at_a_path(gw: ChatGateway, project: Project) -> None:
    outside = project.tmp / "outside"
    outside.mkdir()
    for typed, needle in (
        (f"/kanban create grab --workspace dir:{outside} --assignee demo", "filesystem path"),
        ("/kanban create grab --workspace dir:/root --assignee demo", "filesystem path"),
        (
            f"/kanban create grab --workspace worktree --repo {project.repos['api']}",
            "workspaces.repos",
        ),
        (f"/ws new grab --repo {project.repos['api']}", "unknown repository"),
    ):
        reply = await gw.say(typed)
        assert needle in reply.text, (typed, reply.text)
    assert gw.board.list() == []
    assert list(outside.iterdir()) == []
    # A configured repository, by name, is fine.
    created = await gw.say("/kanban create ok --workspace worktree --repo api --triage")
    assert "Created" in created.text, created.text
    [task] = gw.board.list()
    assert task.repo == str(project.repos["api"])


async def test_a_file_the_agent_left_beside_the_repositories_is_reported_and_delete_finishes(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Plan it", "api", "web", body="write plan.md")
    ws = gw.workspace(ws_id)
    assert (ws.container / "plan.md").is_file()  # the agent works in the container

    card = gw.card_of(await gw.say("/ws delete"))
    assert "plan.md" in card.text, card.text
    assert "an approver must approve it" in card.text, card.text
    (ws.container / "late.txt").write_text("after the card\n", encoding="utf-8")
    partial = await gw.press(card, "Approve", user=BOB)
    assert "partly deleted" in partial.text, partial.text
    assert "late.txt" in partial.text, partial.text
    assert not (ws.container / "plan.md").exists()
    assert not any(r.worktree.exists() for r in ws.repos)
    assert gw.workspace(ws_id).status is WorkspaceStatus.FAILED

    # The next delete reports what is left and finishes.
    card = gw.card_of(await gw.say(f"/ws delete {ws_id}"))
    assert "late.txt" in card.text, card.text
    done = await gw.press(card, "Approve", user=BOB)
    assert "⚠" not in done.text, done.text
    assert not ws.container.exists()
    assert gw.read(lambda tx: store.get(tx, ws_id)) is None
    for name in ("api", "web"):
        assert git(project.repos[name], "rev-parse", "--verify", f"refs/heads/{ws.branch}")


async def test_deleting_committed_unpushed_work_needs_only_the_requesters_confirmation(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Keep commits", "api", body="write done.py")
    card = gw.card_of(await gw.say("/commit"))
    assert "committed" in (await gw.press(card, "Confirm")).text
    ws = gw.workspace(ws_id)
    head = git(ws.repos[0].worktree, "rev-parse", "HEAD")

    card = gw.card_of(await gw.say("/ws delete"))
    assert "1 unpushed commit" in card.text, card.text
    assert "approver" not in card.text, card.text
    done = await gw.press(card, "Confirm")
    assert "⚠" not in done.text, done.text
    assert not ws.container.exists()
    assert git(project.repos["api"], "rev-parse", f"refs/heads/{ws.branch}") == head


async def test_approve_typed_without_its_id_where_there_are_no_buttons(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Typed", "api", body="write a.py")
    card = gw.card_of(await gw.say("/commit"))
    tail = gw.read(lambda tx: approvals_open(tx))[0].rsplit("-", 1)[1]
    assert f"/approve {tail}" in card.text, card.text
    committed = await gw.say("/approve")
    assert committed.text.startswith("committed "), committed.text

    mark = gw.mark()
    await gw.say("write b.py")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id))
    await gw.say("/commit")
    await gw.say("/ws delete")
    listed = await gw.say("/approve")
    assert "2 requests are open in this chat, say which" in listed.text, listed.text
    [commit_id, _delete_id] = gw.read(lambda tx: approvals_open(tx))
    done = await gw.say(f"/approve {commit_id.rsplit('-', 1)[1]}")
    assert done.text.startswith("committed "), done.text


def approvals_open(tx: Transaction) -> list[str]:
    return [a.id for a in approvals.open_requests(tx, None)]


async def test_show_in_chat_names_no_server_path(gw: ChatGateway, project: Project) -> None:
    ws_id = await new_workspace(gw, "Where", "api", body="write w.py")
    ws = gw.workspace(ws_id)
    for typed in (
        f"/kanban show t{ws.task_id}",
        f"/kanban show t{ws.task_id} --json",
        "/ws show",
        "/ws show --json",
        "/ws list --json",
    ):
        reply = await gw.say(typed)
        assert str(project.tmp) not in reply.text, (typed, reply.text)
    shown = await gw.say("/ws show --json")
    assert '"audit_total"' in shown.text, shown.text
