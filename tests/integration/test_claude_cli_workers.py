"""The ``claude-code`` preset through the real dispatcher and ``kanban worker``.

``claude`` is a fake on PATH (tests/support/fake_claude.py, a real process) that parses the
preset's flags, starts the MCP server the supervisor's config names with the official MCP SDK
(the real ``kanban mcp``, reaching the board only through the run's door), asks its permission
prompt tool, and prints stream-json lines that the supervisor folds into the log, live progress
and usage.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, BlockKind, PermissionDecision, RunOutcome, TaskId, TaskStatus
from tests.integration.conftest import Cli
from tests.integration.test_acp_workers import AcpHarness
from tests.integration.test_workers import DISPATCHER_DEFAULTS

pytestmark = pytest.mark.integration

FAKE = Path(__file__).parents[1] / "support" / "fake_claude.py"
ALICE = Actor(name="alice")
COMPLETE = {"mcp": "kanban_complete", "arguments": {"summary": "done by claude"}}


@pytest.fixture(params=["sqlite", "postgresql"])
def claude(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ClaudeHarness]:
    cli: Cli = request.getfixturevalue("sqlite_cli" if request.param == "sqlite" else "pg_cli")
    h = ClaudeHarness(cli, tmp_path)
    try:
        yield h
    finally:
        h.close()


class ClaudeHarness(AcpHarness):
    """The agent harness (its ``finish`` and ``recorded``) with a fake ``claude`` on PATH."""

    def __init__(self, cli: Cli, root: Path) -> None:
        super().__init__(cli, root)
        self.bin = root / "bin"
        self.bin.mkdir()
        launcher = self.bin / "claude"
        launcher.write_text(
            f"#!{sys.executable}\n"
            "import runpy, sys\n"
            f"sys.argv[0] = {str(FAKE)!r}\n"
            f"runpy.run_path({str(FAKE)!r}, run_name='__main__')\n",
            encoding="utf-8",
        )
        launcher.chmod(0o755)
        self.out = self.state / "acp"  # where ``recorded`` looks
        self.out.mkdir()

    def claude_profile(self, steps: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        path = f"{self.bin}:/usr/bin:/bin"
        return {
            "preset": "claude-code",
            "env": {
                "PATH": path,
                "FAKE_CLAUDE_SCRIPT": json.dumps(steps),
                "FAKE_CLAUDE_OUT": str(self.out),
            },
            "sandbox": {"read": [str(self.bin), str(FAKE.parent)], "write": [str(self.state)]},
            **options,
        }

    def setup(
        self,
        steps: list[dict[str, Any]],
        *,
        ttl_s: int = 900,
        dispatcher: dict[str, Any] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        document = {
            "dispatcher": DISPATCHER_DEFAULTS | (dispatcher or {}),
            "permissions": {"ttl_seconds": ttl_s},
            "assignees": {"claude": self.claude_profile(steps, **options)},
        }
        (self.home / "config.yaml").write_text(json.dumps(document), encoding="utf-8")
        return document

    def run_task(self, steps: list[dict[str, Any]], **options: Any) -> TaskId:
        self.setup(steps, **options)
        return self.create("for claude", assignee="claude")

    def progress(self, task_id: TaskId) -> list[dict[str, Any]]:
        events = self.board.detail(task_id).events
        return [e.payload for e in events if e.kind == "progress" and e.payload is not None]


def test_the_policy_decides_reads_inside_and_edits_outside_and_the_stream_is_folded(claude):
    steps = [
        {"todo": [["read the notes", "in_progress"], ["finish", "pending"]]},
        {"say": "Looking at the notes first."},
        {"tool": "Read", "input": {"file_path": "notes.md"}, "record": "inside"},
        {"idle": 0.7},  # past the progress interval: the next line emits a snapshot,
        {"say": "Read it; now the edit."},  # this one, while the tool is still Read
        {"tool": "Edit", "input": {"file_path": "/etc/passwd", "old_string": "a"}, "record": "out"},
        {"tool": "mcp__kanban__kanban_heartbeat", "input": {"note": "x"}, "record": "own"},
        {"garbage": "not json at all {"},
        {"garbage": "{" * 100_000},
        {"usage": {"input_tokens": 40, "output_tokens": 7}},
        {"await_usage": 40},
        COMPLETE,
        {"result": {"text": "all done", "cost": 0.25, "input_tokens": 50, "output_tokens": 9}},
    ]
    task = claude.run_task(steps, progress={"interval_seconds": 0.5})
    claude.finish(task, TaskStatus.DONE)

    flags = claude.recorded("argv")
    assert flags["permission_prompt_tool"] == "mcp__kanban__kanban_permission"
    assert (flags["output_format"], flags["verbose"], flags["print"]) == ("stream-json", True, True)
    assert f"t{task}" in flags["prompt"]
    assert flags["mcp_tool_timeout"] == str((900 + 60) * 1000)  # outlasts a waiting request
    assert claude.recorded("inside") == {
        "behavior": "allow",
        "updatedInput": {"file_path": "notes.md"},
    }
    denied = claude.recorded("out")
    assert denied["behavior"] == "deny"
    assert "denied by the profile's policy" in denied["message"]
    assert "outside the workspace" in denied["message"]
    assert claude.recorded("own")["behavior"] == "allow"  # the board's own tools are fenced
    assert claude.board.open_permissions() == []

    (run,) = claude.board.runs(task)
    assert run.summary == "done by claude"
    # The result line comes after the verdict, and its totals are the run's final figures.
    assert (run.input_tokens, run.output_tokens, run.cost_micro_usd) == (50, 9, 250_000)
    log = claude.log(task)
    assert "session " in log
    assert "MCP servers: kanban (connected)" in log
    assert "agent: Looking at the notes first." in log
    assert "tool Read: notes.md" in log
    assert "tool failed: denied by the profile's policy" in log
    assert "agent output: not json at all {" in log
    assert "permission edit '/etc/passwd': deny" in log
    snapshots = claude.progress(task)
    assert snapshots
    assert snapshots[0]["plan"] == [
        {"content": "read the notes", "status": "in_progress"},
        {"content": "finish", "status": "pending"},
    ]
    assert any(s["tool"] == "Read: notes.md" for s in snapshots), snapshots


def test_claude_still_working_after_its_verdict_may_print_its_final_cost(claude):
    steps = [
        {"usage": {"input_tokens": 40, "output_tokens": 7}},
        COMPLETE,
        {"idle": 2.5},  # past the supervisor's next heartbeat, which finds the run ended
        {"say": "Completed; summing up."},
        {"result": {"text": "done", "cost": 0.31, "input_tokens": 60, "output_tokens": 12}},
    ]
    # A 3 s lease: the supervisor heartbeats (and notices the verdict) every second.
    task = claude.run_task(steps, dispatcher={"lease_ttl_seconds": 3})
    claude.finish(task, TaskStatus.DONE)
    (run,) = claude.board.runs(task)
    assert (run.input_tokens, run.output_tokens, run.cost_micro_usd) == (60, 12, 310_000)
    assert "agent: Completed; summing up." in claude.log(task)
    assert claude.kanban("stats", "--json").json()["cost_usd"] == pytest.approx(0.31)
    (shown,) = claude.kanban("runs", f"t{task}", "--json").json()
    assert shown["cost_usd"] == pytest.approx(0.31)


@pytest.mark.parametrize(
    ("decision", "behavior"),
    [(PermissionDecision.ALLOW_RUN, "allow"), (PermissionDecision.DENY, "deny")],
)
def test_a_command_waits_for_a_person_and_the_answer_reaches_claude(claude, decision, behavior):
    bash = {"tool": "Bash", "input": {"command": "make deploy"}, "record": "first"}
    again = {"tool": "Bash", "input": {"command": "make deploy"}, "record": "second"}
    task = claude.run_task([bash, again, COMPLETE])
    dispatcher = claude.dispatcher()
    request = claude.first_request(dispatcher, task, timeout=90)
    assert (request.tool_kind, request.tool_name, request.summary) == (
        "execute",
        "make deploy",  # a command is named by itself: a run grant allows it, not every command
        "make deploy",
    )
    assert "make deploy" in (request.detail or "")
    claude.board.answer_permission(ALICE, request.ref, decision, "not today")
    first = claude.recorded("first")
    assert first["behavior"] == behavior
    if behavior == "allow":
        assert first["updatedInput"] == {"command": "make deploy"}
        # Allowed for this run: the same call is not asked again.
        assert claude.recorded("second")["behavior"] == "allow"
    else:
        assert first["message"] == "denied by alice: not today"
        claude.drive(
            dispatcher,
            lambda: len(claude.board.open_permissions(task)) == 1,
            timeout=90,
            what="the second request",
        )
        (second,) = claude.board.open_permissions(task)
        claude.board.answer_permission(ALICE, second.ref, PermissionDecision.ALLOW_ONCE)
    claude.finish(task, TaskStatus.DONE)
    assert claude.board.permission(request.ref).answered_by == "alice"


def test_a_request_nobody_answers_expires_as_a_denial_claude_is_told(claude):
    bash = {"tool": "Bash", "input": {"command": "rm -rf build"}, "record": "answer"}
    task = claude.run_task([bash, COMPLETE], ttl_s=10)
    claude.finish(task, TaskStatus.DONE, timeout=120)
    answer = claude.recorded("answer")
    assert answer["behavior"] == "deny"
    assert "in time; treat it as denied" in answer["message"]


def test_a_budget_reached_stops_claude_and_blocks_the_task(claude):
    steps = [
        {"usage": {"input_tokens": 60, "output_tokens": 10}},  # 70 tokens: under the budget
        {"usage": {"input_tokens": 40, "output_tokens": 20}},  # another API call: 130 in all
        {"idle": 120},
    ]
    task = claude.run_task(steps, max_tokens=100)
    claude.finish(task, TaskStatus.BLOCKED)
    assert claude.task(task).block_kind is BlockKind.BUDGET
    run = claude.board.runs(task)[-1]
    assert (run.input_tokens, run.output_tokens) == (100, 30)
    assert run.summary is not None
    assert run.summary.startswith("budget reached: 130 of 100 tokens")
    assert "stopping the agent" in claude.log(task)


def test_a_usage_limit_result_pauses_the_task_instead_of_failing_it(claude):
    reset_s = int(time.time()) + 3600
    limit = {"text": f"Claude AI usage limit reached|{reset_s}", "is_error": True}
    task = claude.run_task([{"result": limit}, {"exit": 1}])
    dispatcher = claude.dispatcher()
    paused = claude.drive_to_pause(dispatcher, task, timeout=90)
    assert paused.not_before_ms == reset_s * 1000
    assert "result (error): Claude AI usage limit reached" in claude.log(task)


def test_a_clean_exit_without_a_verdict_is_still_a_protocol_failure(claude):
    task = claude.run_task([{"say": "I believe I am done"}, {"result": {"text": "done"}}])
    claude.finish(task, TaskStatus.READY, TaskStatus.BLOCKED)
    (run,) = claude.board.runs(task)
    assert run.outcome is RunOutcome.CRASHED
    assert "exited 0 without completing or blocking" in (run.error or "")
    assert "agent: I believe I am done" in (run.error or "") or "agent:" in claude.log(task)
