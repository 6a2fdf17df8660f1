"""An ACP agent in a chat-bound workspace: its follow-up turns resume its session, and /stop
withdraws the question it waits on.

The real gateway (in this event loop), dispatcher and worker supervisors, real git checkouts,
python-telegram-bot against the fake Bot API (the harness of ``test_workspace_parity``), with the
workspace agent replaced by the scripted ACP agent on the official SDK.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import yaml

from kanban_core import KernelSettings, PermissionStatus
from kanban_core.board.domain import RunOutcome
from kanban_core.dispatch.logs import log_path
from kanban_core.workspaces.interactive.records import TurnStatus
from tests.e2e import test_workspace_parity as parity
from tests.e2e.acp_chat import AGENT, complete, recorded
from tests.e2e.workspace_support import ChatGateway, FakeGitHub, Project, write_config
from tests.support.fake_telegram import FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = parity.anyio_backend
_ptb_timedelta = parity._ptb_timedelta
db_url = parity.db_url
project = parity.project
telegram = parity.telegram
github = parity.github
new_workspace = parity.new_workspace
ready = parity.ready
isolated_git = parity.isolated_git

Start = Callable[..., Any]


@pytest.fixture
async def acp_gateway(
    project: Project, telegram: FakeTelegram, github: FakeGitHub, db_url: str
) -> AsyncIterator[Start]:
    """Start the gateway with the workspace agent as the fake ACP agent running ``steps``."""
    opened: list[ChatGateway] = []

    async def start(steps: list[dict[str, Any]], *, agent_loads: bool = True) -> ChatGateway:
        path = write_config(project, telegram_url=telegram.base_url, github_url=github.url)
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        env = {
            "FAKE_ACP_SCRIPT": json.dumps(steps),
            "FAKE_ACP_OUT": str(project.agent_dir),
            "FAKE_ACP_LOAD": "1" if agent_loads else "0",
        }
        document["assignees"]["fake"] = {
            "preset": "acp",
            "command": [sys.executable, str(AGENT)],
            "workspace": "worktree",
            "env": env,
            "sandbox": {"read": [str(AGENT.parent)], "write": [str(project.agent_dir)]},
        }
        path.write_text(yaml.safe_dump(document), encoding="utf-8")
        gateway = ChatGateway(project, telegram, KernelSettings(home=project.home, db_url=db_url))
        opened.append(gateway)
        await gateway.start()
        return gateway

    yield start
    for gateway in opened:
        await gateway.close()


@pytest.mark.parametrize("agent_loads", [True, False], ids=["load", "no-load"])
async def test_a_follow_up_resumes_the_agents_session_where_it_can(
    acp_gateway: Start, project: Project, agent_loads: bool
) -> None:
    gw = await acp_gateway([{"say": "on it"}, complete("done")], agent_loads=agent_loads)
    ws_id = await new_workspace(gw, "Add login", "api", body="write login.py")
    first = recorded(project.agent_dir, "session")
    assert first is not None
    (session,) = gw.sessions(ws_id)
    assert session.acp_session_id == first["session_id"]  # kept on the board for the next turn
    first_prompt = recorded(project.agent_dir, "prompt")
    assert first_prompt is not None

    mark = gw.mark()
    await gw.say("now add tests")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id), what="the follow-up to settle")
    prompt = recorded(project.agent_dir, "prompt")
    assert prompt is not None
    assert "now add tests" in prompt["text"]
    log = log_path(project.home, gw.workspace(ws_id).task_id).read_text(encoding="utf-8")
    if agent_loads:
        loaded = recorded(project.agent_dir, "loaded")
        assert loaded is not None
        assert loaded["session_id"] == first["session_id"]
        assert loaded["history"] == [first_prompt["text"]]  # the agent has the earlier turn
        assert prompt["session_id"] == first["session_id"]
        assert f"resumed the agent's session {first['session_id']}" in log
    else:
        assert recorded(project.agent_dir, "loaded") is None
        fresh = recorded(project.agent_dir, "session")
        assert fresh is not None
        assert fresh["session_id"] != first["session_id"]
        assert prompt["session_id"] == fresh["session_id"]
        assert "(no loadSession); starting a new session" in log
        (session,) = gw.sessions(ws_id)
        assert session.acp_session_id == fresh["session_id"]


async def test_stop_while_the_agent_waits_for_an_answer_withdraws_it_and_ends_the_run(
    acp_gateway: Start, project: Project
) -> None:
    ask = {"kind": "execute", "title": "Bash", "input": {"command": "make deploy"}}
    gw = await acp_gateway([{"ask": ask, "record": "answer"}, complete("deployed")])
    mark = gw.mark()
    reply = await gw.say('/ws new "Deploy" --repo api --body "deploy it"')
    assert "Created ws-" in reply.text, reply.text
    card = await gw.notice("asks to run", after=mark)
    assert "make deploy" in card.text
    ws = gw.workspace()

    stopped = await gw.say("/stop")
    assert "stopped turn" in stopped.text, stopped.text
    await gw.notice("stopped by", after=mark)
    await gw.until(lambda: recorded(project.agent_dir, "answer"), what="the agent's answer")
    assert recorded(project.agent_dir, "answer") == {"outcome": "cancelled"}
    await gw.until(gw.workers_done, what="the supervisor to exit")
    assert recorded(project.agent_dir, "cancelled") == {}  # session/cancel reached the agent
    request = gw.board.permission("p1")
    assert request.status is PermissionStatus.CANCELLED
    run = gw.board.runs(ws.task_id)[-1]
    assert run.outcome is RunOutcome.CANCELLED
    (session,) = gw.sessions(ws.id)
    assert [t.status for t in gw.turns(session.id)] == [TurnStatus.CANCELLED]
    assert gw.board.get(ws.task_id).status.value == "blocked"  # held for a person, not done

    # A press on the withdrawn card is refused in one line.
    allow = await gw.press_data(card, card.callback_data[0])
    assert "can no longer be answered" in allow.text, allow.text
