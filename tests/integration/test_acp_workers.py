"""ACP agents through the real dispatcher and ``kanban worker``: the supervisor as ACP client.

The agent is the scripted fake on the official SDK's agent side (tests/support), started by
the real supervisor in its jail, reaching the board only through the run's door (the
``kanban`` CLI it runs, and the MCP server the session names).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import (
    Actor,
    BlockKind,
    PermissionDecision,
    PermissionRequest,
    PermissionStatus,
    RunOutcome,
    TaskId,
    TaskStatus,
)
from kanban_core.dispatch.dispatcher import Dispatcher
from tests.integration.conftest import Cli
from tests.integration.test_workers import Harness
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

AGENT = Path(__file__).parents[1] / "support" / "fake_acp_agent.py"
ALICE = Actor(name="alice")
COMPLETE = {"run": [sys.executable, "-m", "kanban_core", "complete", "--summary", "done over ACP"]}


@pytest.fixture
def acp(cli: Cli, tmp_path: Path) -> Iterator[AcpHarness]:
    h = AcpHarness(cli, tmp_path)
    try:
        yield h
    finally:
        h.close()


class AcpHarness(Harness):
    """The worker harness with profiles that run the fake ACP agent."""

    def acp_profile(self, steps: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        out = self.state / "acp"
        out.mkdir(exist_ok=True)
        return {
            "preset": "acp",
            "command": [sys.executable, str(AGENT)],
            "env": {"FAKE_ACP_SCRIPT": json.dumps(steps), "FAKE_ACP_OUT": str(out)},
            "sandbox": {"read": [str(AGENT.parent)], "write": [str(self.state)]},
            **options,
        }

    def recorded(self, name: str, timeout: float = 30) -> dict[str, Any]:
        path = self.state / "acp" / f"{name}.json"
        wait_for(path.exists, timeout, f"the fake agent to record {name}")
        value: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return value

    def run_task(self, steps: list[dict[str, Any]], **options: Any) -> TaskId:
        self.configure({"acp": self.acp_profile(steps, **options)})
        return self.create("over ACP", assignee="acp")

    def first_request(
        self, dispatcher: Dispatcher, task_id: TaskId, *, timeout: float = 60
    ) -> PermissionRequest:
        """Run passes until the agent's one permission request is on the board."""
        self.drive(
            dispatcher,
            lambda: self.board.open_permissions(task_id),
            timeout=timeout,
            what="the agent's request to reach the board",
        )
        (request,) = self.board.open_permissions(task_id)
        return request

    def finish(self, task_id: TaskId, *statuses: TaskStatus, timeout: float = 60) -> None:
        dispatcher = self.dispatcher()
        try:
            self.drive(
                dispatcher,
                lambda: self.task(task_id).status in statuses and self.supervisors_done(),
                timeout=timeout,
                what=f"t{task_id} to reach {statuses}",
            )
        except AssertionError as exc:
            state = f"{self.task(task_id).status}, supervisors done: {self.supervisors_done()}"
            raise AssertionError(f"{exc} ({state}); the task's log:\n{self.log(task_id)}") from None


def test_an_acp_agent_completes_through_its_door_and_its_turn_is_logged(acp):
    task = acp.run_task([{"plan": ["look", "finish"]}, {"say": "all good"}, COMPLETE])
    acp.finish(task, TaskStatus.DONE)
    (run,) = acp.board.runs(task)
    assert run.summary == "done over ACP"
    session = acp.recorded("session")
    (server,) = session["mcp_servers"]
    env = {pair["name"]: pair["value"] for pair in server["env"]}
    assert env["KANBAN_TASK"] == f"t{task}"
    assert "KANBAN_RUN_TOKEN" in env
    assert f"t{task}" in acp.recorded("prompt")["text"]  # the prompt travels in session/prompt
    log = acp.log(task)
    assert "plan: [pending] look; [pending] finish" in log
    assert "agent: all good" in log
    # The first update is recorded as live progress at once (the rest coalesce into later ones).
    snapshots = [e.payload for e in acp.board.detail(task).events if e.kind == "progress"]
    assert snapshots
    assert "progress not recorded" not in log  # the flush after the verdict is not an error
    assert snapshots[0]["plan"] == [
        {"content": "look", "status": "pending"},
        {"content": "finish", "status": "pending"},
    ]


def test_a_turn_that_ends_without_a_verdict_is_a_protocol_failure(acp):
    task = acp.run_task([{"say": "I think I am done"}], max_runtime="60s")
    acp.finish(task, TaskStatus.READY, TaskStatus.BLOCKED)
    (run,) = acp.board.runs(task)
    assert run.outcome is not None
    assert run.outcome.value == "crashed"
    assert "without completing or blocking" in (run.error or "")


def test_the_policy_allows_reads_inside_and_denies_edits_outside_without_asking(acp):
    inside = {"kind": "read", "title": "Read", "input": {"file_path": "notes.md"}}
    outside = {"kind": "edit", "title": "Edit", "input": {"file_path": "/etc/passwd"}}
    task = acp.run_task(
        [{"ask": inside, "record": "inside"}, {"ask": outside, "record": "outside"}, COMPLETE]
    )
    acp.finish(task, TaskStatus.DONE)
    assert acp.recorded("inside") == {"outcome": "yes-1"}
    assert acp.recorded("outside") == {"outcome": "no-1"}
    assert acp.board.open_permissions() == []


@pytest.mark.parametrize(
    ("decision", "chosen"),
    [(PermissionDecision.ALLOW_ONCE, "yes-1"), (PermissionDecision.DENY, "no-1")],
)
def test_a_command_waits_for_a_person_and_the_first_answer_reaches_the_agent(acp, decision, chosen):
    ask = {"kind": "execute", "title": "Bash", "input": {"command": "make deploy"}}
    task = acp.run_task([{"ask": ask, "record": "answer"}, COMPLETE])
    dispatcher = acp.dispatcher()
    request = acp.first_request(dispatcher, task)
    assert request.summary == "make deploy"
    assert acp.board.waiting_permissions() == {task: [request.ref]}
    answered = threading.Thread(
        target=acp.board.answer_permission, args=(ALICE, request.ref, decision)
    )
    answered.start()
    answered.join()
    assert acp.recorded("answer") == {"outcome": chosen}
    acp.finish(task, TaskStatus.DONE)
    assert acp.board.permission(request.ref).answered_by == "alice"


def test_a_run_timed_out_while_its_request_waits_withdraws_the_request(acp):
    ask = {"kind": "execute", "title": "Bash", "input": {"command": "sleep 1000"}}
    # Like a real agent, it ends its turn when told to cancel rather than carry on. The runtime
    # leaves a loaded machine time to start the agent before the request is withdrawn.
    task = acp.run_task([{"ask": ask, "record": "answer"}, {"wait_cancel": 1}], max_runtime="10s")
    dispatcher = acp.dispatcher()
    request = acp.first_request(dispatcher, task)
    acp.finish(task, TaskStatus.READY, TaskStatus.BLOCKED)
    (run,) = acp.board.runs(task)
    assert run.outcome is not None
    assert run.outcome.value == "timed_out"
    assert acp.board.permission(request.ref).status is PermissionStatus.CANCELLED
    assert acp.recorded("answer") == {"outcome": "cancelled"}
    # ACP's order: the turn is cancelled first, then its pending request answered "cancelled".
    assert acp.recorded("answer_order") == {"cancelled_first": True}


# -- usage limits and budgets ---------------------------------------------------------------


def test_a_usage_limit_pauses_the_task_and_it_resumes_by_itself_at_the_reset(acp):
    reset_s = int(time.time()) + 8  # ahead of the supervisor reaching record_quota
    quota = {
        "rpc_error": {
            "message": "Internal error",
            "data": f"Claude AI usage limit reached|{reset_s}",
            "once": "quota",
        }
    }
    acp.configure({"acp": acp.acp_profile([quota, COMPLETE])}, failure_limit=1)
    task = acp.create("over ACP", assignee="acp")
    dispatcher = acp.dispatcher()
    paused = acp.drive_to_pause(dispatcher, task, timeout=60)
    assert paused.not_before_ms == reset_s * 1000
    assert paused.pause_reason == (
        f"usage limit reached; resumes at {time.strftime('%H:%M', time.gmtime(reset_s))} UTC"
    )
    acp.drive(
        dispatcher,
        lambda: acp.task(task).status is TaskStatus.DONE and acp.supervisors_done(),
        timeout=60,
        what="the task to resume after the reset and complete",
    )
    kinds = [e.kind for e in acp.board.detail(task).events]
    assert "quota_paused" in kinds
    assert kinds.index("quota_resumed") > kinds.index("quota_paused")
    assert "gave_up" not in kinds
    runs = acp.board.runs(task)
    assert [r.outcome.value if r.outcome else None for r in runs] == ["quota", "completed"]
    resumed_claim = [e for e in acp.board.detail(task).events if e.kind == "claimed"][-1]
    assert resumed_claim.created_ms >= reset_s * 1000


def test_a_cli_agent_that_exits_at_its_usage_limit_is_paused_not_crashed(acp):
    harness = acp  # the plain worker harness suffices: this agent speaks no ACP
    source = "import sys\nprint('Error: You have hit your usage limit.')\nsys.exit(1)\n"
    harness.configure({"cli": harness.profile(source)}, failure_limit=1)
    task = harness.create("cli agent", assignee="cli")
    harness.drive_to_pause(harness.dispatcher(), task, timeout=60)


def test_a_budget_reached_cancels_the_turn_and_blocks_the_task(acp):
    steps = [
        {"usage": {"used": 1000, "cost": 0.4}},
        {"usage": {"used": 2000, "cost": 1.2}},
        {"wait_cancel": True},
    ]
    acp.configure({"acp": acp.acp_profile(steps)})
    task = acp.board.create(ALICE, title="costly", assignee="acp", max_cost_micro_usd=1_000_000)
    acp.finish(task.task.id, TaskStatus.BLOCKED)
    blocked = acp.task(task.task.id)
    assert blocked.block_kind is BlockKind.BUDGET
    run = acp.board.runs(task.task.id)[-1]
    assert run.cost_micro_usd == 1_200_000
    assert run.input_tokens == 2000
    assert run.summary is not None
    assert run.summary.startswith("budget reached: $1.2000 of $1.0000")
    acp.recorded("cancelled")


def test_usage_in_the_prompt_response_counts_against_the_profile_budget(acp):
    steps = [{"prompt_usage": {"input_tokens": 120, "output_tokens": 30}}]
    task = acp.run_task(steps, max_tokens=100)
    acp.finish(task, TaskStatus.BLOCKED)
    assert acp.task(task).block_kind is BlockKind.BUDGET
    run = acp.board.runs(task)[-1]
    assert (run.input_tokens, run.output_tokens) == (120, 30)
    assert run.summary == "budget reached: 150 of 100 tokens ($0.0000)"


@pytest.mark.parametrize("linger_s", [0, 2.5], ids=["at-once", "lingering"])
def test_usage_in_the_prompt_response_after_the_verdict_lands_on_the_run(acp, linger_s):
    steps: list[dict[str, Any]] = [COMPLETE]
    if linger_s:
        # Past the supervisor's next heartbeat, which finds the run ended: the turn may end.
        steps.append({"run": [sys.executable, "-c", f"import time; time.sleep({linger_s})"]})
    steps.append({"prompt_usage": {"input_tokens": 120, "output_tokens": 30}})
    # A 3 s lease: the supervisor heartbeats (and notices the verdict) every second.
    acp.configure({"acp": acp.acp_profile(steps)}, lease_ttl_seconds=3)
    task = acp.create("over ACP", assignee="acp")
    acp.finish(task, TaskStatus.DONE)
    (run,) = acp.board.runs(task)
    assert run.outcome is RunOutcome.COMPLETED
    assert (run.input_tokens, run.output_tokens) == (120, 30)
    assert acp.kanban("stats", "--json").json()["input_tokens"] == 120
