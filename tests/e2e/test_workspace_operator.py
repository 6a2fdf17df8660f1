"""Operator paths through chat: /stop and its notice, short approvals, deleting, chat-safe paths.

The real gateway with the real python-telegram-bot against the fake Bot API, the real
dispatcher and worker supervisors running the fake agent, real git checkouts (the harness and
fixtures of ``test_workspace_parity``).
"""

from __future__ import annotations

import pytest

from kanban_core.workspace import store
from kanban_core.workspace.records import TurnStatus, WorkspaceStatus
from tests.e2e import test_workspace_parity as parity
from tests.e2e.workspace_support import ChatGateway, Project

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
