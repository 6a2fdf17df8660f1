"""The supervisor's ACP client against a scripted agent on the official SDK, over real pipes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core.dispatch.acp_session import (
    AgentAsk,
    Answer,
    SessionResult,
    SessionSpec,
    Verdict,
    ask_from_tool_call,
    run_session,
)

AGENT = str(Path(__file__).parents[2] / "support" / "fake_acp_agent.py")


class ScriptedAsker:
    """Answers every ask with one verdict and remembers what was asked."""

    def __init__(self, verdict: Verdict, *, hold: bool = False) -> None:
        self.verdict = verdict
        self.hold = hold
        self.asked: list[AgentAsk] = []
        self.waiting = threading.Event()

    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        self.asked.append(ask)
        if self.hold:  # like a person who never answers: only a cancel ends it
            self.waiting.set()
            cancelled.wait(30)
            return Answer(Verdict.DENY, "cancelled")
        return Answer(self.verdict)


class Session:
    """A fake agent process and the session driven against it in a thread."""

    def __init__(
        self,
        tmp_path: Path,
        steps: list[dict[str, Any]],
        asker: ScriptedAsker,
        *,
        prompt: str = "do the task",
        load: str | None = None,
        agent_loads: bool = True,
    ) -> None:
        self.out = tmp_path / "out"
        self.out.mkdir(exist_ok=True)
        env = {"FAKE_ACP_SCRIPT": json.dumps(steps), "FAKE_ACP_OUT": str(self.out)}
        env["FAKE_ACP_LOAD"] = "1" if agent_loads else "0"
        self.opened: list[str] = []
        self.agent = subprocess.Popen(
            [sys.executable, AGENT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", **env},
        )
        self.lines: list[str] = []
        self.snapshots: list[dict[str, Any]] = []
        self.cancel = threading.Event()
        self.result: SessionResult | None = None
        spec = SessionSpec(
            cwd=str(tmp_path),
            prompt=prompt,
            mcp_command=sys.executable,
            mcp_args=("-m", "kanban_core", "mcp"),
            mcp_env={"KANBAN_TASK": "t1"},
            load_session_id=load,
            on_session=self.opened.append,
        )
        assert self.agent.stdin is not None
        assert self.agent.stdout is not None
        stdin, stdout = self.agent.stdin, self.agent.stdout

        def drive() -> None:
            self.result = run_session(
                spec,
                stdin,
                stdout,
                asker,
                self.lines.append,
                self.cancel,
                progress=(self.snapshots.append, 3600),
            )

        self.thread = threading.Thread(target=drive)
        self.thread.start()

    def finish(self, timeout: float = 30) -> SessionResult:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the session did not end"
        assert self.result is not None
        return self.result

    def recorded(self, name: str) -> dict[str, Any]:
        value: dict[str, Any] = json.loads((self.out / f"{name}.json").read_text())
        return value

    def close(self) -> None:
        self.cancel.set()
        self.thread.join(10)
        if self.agent.poll() is None:
            self.agent.kill()
        self.agent.wait()


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Any]:
    made: list[Session] = []

    def start(
        steps: list[dict[str, Any]], asker: ScriptedAsker | None = None, **kwargs: Any
    ) -> Session:
        made.append(Session(tmp_path, steps, asker or ScriptedAsker(Verdict.ALLOW_ONCE), **kwargs))
        return made[-1]

    yield start
    for each in made:
        each.close()


def test_a_turn_streams_into_the_log_and_names_the_kanban_mcp_server(session):
    run = session(
        [{"plan": ["read", "fix"]}, {"say": "looking"}, {"say": " around"}, {"tool": "ls"}]
    )
    result = run.finish()
    assert result.stop_reason == "end_turn"
    assert result.error is None
    assert "plan: [pending] read; [pending] fix" in run.lines
    assert "agent: looking around" in run.lines
    assert any(line.startswith("tool ls") for line in run.lines)
    assert run.recorded("prompt")["text"] == "do the task"
    (server,) = run.recorded("session")["mcp_servers"]
    assert server["name"] == "kanban"
    assert server["args"] == ["-m", "kanban_core", "mcp"]
    assert server["env"] == [{"name": "KANBAN_TASK", "value": "t1"}]


@pytest.mark.parametrize(
    ("verdict", "chosen"),
    [(Verdict.ALLOW_ONCE, "yes-1"), (Verdict.ALLOW_RUN, "yes-1"), (Verdict.DENY, "no-1")],
)
def test_an_answer_is_one_of_the_agents_own_options(session, verdict, chosen):
    asker = ScriptedAsker(verdict)
    ask = {"kind": "execute", "title": "Run rm", "input": {"command": "rm -rf build"}}
    run = session([{"ask": ask, "record": "answer"}], asker)
    result = run.finish()
    assert run.recorded("answer") == {"outcome": chosen}
    (asked,) = asker.asked
    assert (asked.tool_kind, asked.tool_name, asked.summary) == (
        "execute",
        "Run rm",
        "rm -rf build",
    )
    assert result.asks == 1
    assert result.denied == (verdict is Verdict.DENY)


def test_a_cancel_while_a_request_waits_cancels_the_request_and_the_turn(session):
    asker = ScriptedAsker(Verdict.ALLOW_ONCE, hold=True)
    run = session(
        [{"ask": {"kind": "execute", "title": "x"}, "record": "answer"}, {"wait_cancel": 1}], asker
    )
    assert asker.waiting.wait(30)
    run.cancel.set()
    result = run.finish()
    assert run.recorded("answer") == {"outcome": "cancelled"}
    assert result.stop_reason == "cancelled"
    assert run.recorded("cancelled") == {}


class _WithdrawingAsker:
    """The board withdrew the request (its run was stopped elsewhere), before any cancel here."""

    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        del ask, cancelled
        return Answer(Verdict.DENY, "withdrawn", withdrawn=True)


def test_a_withdrawn_request_cancels_the_turn_before_it_is_answered(session):
    run = session(
        [{"ask": {"kind": "execute", "title": "x"}, "record": "answer"}], _WithdrawingAsker()
    )
    run.finish()
    assert run.recorded("cancelled") == {}  # session/cancel went out
    assert run.recorded("answer") == {"outcome": "cancelled"}
    assert run.recorded("answer_order") == {"cancelled_first": True}


def test_a_line_that_is_not_json_rpc_does_not_end_the_session(session):
    run = session([{"garbage": "this is not json"}, {"say": "still here"}])
    result = run.finish()
    assert result.stop_reason == "end_turn"
    assert "agent: still here" in run.lines


def test_an_agent_that_dies_mid_turn_is_an_error_not_a_hang(session):
    run = session([{"say": "bye"}, {"exit": 3}])
    result = run.finish()
    assert result.stop_reason is None
    assert result.error


def test_paths_and_commands_are_read_from_the_raw_input():
    class Call:
        kind = "edit"
        title = "Edit\x1b[31m file"
        raw_input = {"file_path": "../etc/passwd", "command": ["git", "push"]}
        locations = [type("L", (), {"path": "/abs/x.py"})()]

    ask = ask_from_tool_call(Call())
    assert ask.paths == ("/abs/x.py", "../etc/passwd")
    assert ask.summary == "git push"
    assert "\x1b" not in ask.tool_name


@pytest.mark.parametrize(
    ("cost", "expected"),
    [
        ({"amount": 1.25, "currency": "USD"}, 1_250_000),
        ({"amount": 0.000_000_4, "currency": "usd"}, 0),
        ({"amount": 3.0, "currency": "EUR"}, None),  # no rate to convert with: not summed
        (None, None),
    ],
)
def test_a_usage_update_reports_tokens_and_dollars_to_the_listener(cost, expected):
    import asyncio

    from acp.schema import Cost, UsageUpdate

    from kanban_core.dispatch import acp_session

    heard: list[dict[str, int]] = []
    client = acp_session._Client(
        _NoAsker(), lambda line: None, threading.Event(), lambda usage: heard.append(dict(usage))
    )
    update = UsageUpdate(
        session_update="usage_update",
        used=1500,
        size=200_000,
        cost=None if cost is None else Cost(**cost),
    )
    asyncio.run(client.session_update("s", update))
    assert heard[-1]["used"] == 1500
    assert heard[-1].get("cost_micro_usd") == expected


class _NoAsker:
    def ask(self, ask: Any, cancelled: threading.Event) -> Any:
        raise AssertionError("no permission is asked here")


def test_progress_is_coalesced_and_the_final_state_is_flushed(session):
    run = session([{"plan": ["read", "fix"]}, {"say": "looking"}, {"tool": "ls"}, {"say": "done"}])
    run.finish()
    # An hour between snapshots: the first update is emitted, the rest only at the turn's end.
    first, final = run.snapshots
    assert first["updates"] == 1
    assert [e["content"] for e in final["plan"]] == ["read", "fix"]
    assert (final["message"], final["tool_calls"], final["updates"]) == ("done", 1, 4)


# -- resuming a session (session/load) ----------------------------------------------------------


def test_a_later_turn_loads_the_earlier_session_and_the_agent_has_its_history(session):
    first = session([{"say": "first"}], prompt="write login.py")
    assert first.finish().stop_reason == "end_turn"
    (opened,) = first.opened
    assert first.recorded("prompt")["session_id"] == opened

    second = session([{"say": "second"}], prompt="now add tests", load=opened)
    result = second.finish()
    assert result.stop_reason == "end_turn"
    assert second.opened == []  # no new session was opened
    loaded = second.recorded("loaded")
    assert loaded["session_id"] == opened
    assert loaded["history"] == ["write login.py"]
    assert second.recorded("prompt") == {"text": "now add tests", "session_id": opened}
    assert f"resumed the agent's session {opened} (session/load)" in second.lines
    # What the agent replays while loading is not this turn's log or progress.
    assert not any("(was) write login.py" in line for line in second.lines)
    assert result.updates == 1


def test_an_agent_without_load_session_gets_a_new_session_and_it_is_logged(session):
    first = session([], prompt="write login.py", agent_loads=False)
    first.finish()
    (earlier,) = first.opened
    second = session([], prompt="now add tests", load=earlier, agent_loads=False)
    assert second.finish().stop_reason == "end_turn"
    (fresh,) = second.opened
    assert fresh != earlier
    assert not (second.out / "loaded.json").exists()
    assert second.recorded("prompt")["session_id"] == fresh
    expected = f"the agent cannot resume {earlier} (no loadSession); starting a new session"
    assert expected in second.lines


def test_a_failed_load_falls_back_to_a_new_session_and_it_is_logged(session):
    run = session([], load="fake-gone")
    result = run.finish()
    assert result.stop_reason == "end_turn"
    assert result.error is None
    (fresh,) = run.opened
    assert run.recorded("prompt")["session_id"] == fresh
    assert any(line.startswith("session/load of fake-gone failed (") for line in run.lines)
