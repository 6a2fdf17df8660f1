"""Agents that ask and report: an answer reaching the waiting agent; the cost of their streams."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
from typing import Any

from benchmarks.backends import Backend
from benchmarks.gateway_bench import p99
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from kanban_core import Actor, PermissionDecision
from kanban_core.dispatch.acp_session import AgentAsk, Answer, SessionSpec, Verdict, run_session
from kanban_core.dispatch.claude_stream import StreamFolder, StreamReader
from kanban_core.dispatch.progress_tracker import ProgressTracker

OPERATOR = Actor(name="bench")
_ANSWERS = 60
_WARMUP = 5
UPDATES = 10_000

#: An ACP agent (the official SDK's agent side) that streams UPDATES updates in one turn:
#: message chunks, tool calls and their progress, plans.
_FLOODER = f"""
import asyncio
from acp import PROTOCOL_VERSION, run_agent, plan_entry, start_tool_call, update_agent_message_text
from acp import update_plan, update_tool_call
from acp.schema import InitializeResponse, NewSessionResponse, PromptResponse

class Flood:
    def on_connect(self, conn):
        self.conn = conn
    async def initialize(self, protocol_version, **kwargs):
        return InitializeResponse(protocol_version=PROTOCOL_VERSION)
    async def new_session(self, cwd, mcp_servers=None, **kwargs):
        return NewSessionResponse(session_id="s")
    async def prompt(self, prompt, session_id, **kwargs):
        for i in range({UPDATES}):
            kind = i % 4
            if kind == 0:
                update = update_agent_message_text(f"chunk {{i}} ")
            elif kind == 1:
                update = start_tool_call(f"c{{i}}", f"Run step {{i}}", kind="execute")
            elif kind == 2:
                update = update_tool_call(f"c{{i - 1}}", status="completed")
            else:
                update = update_plan([plan_entry(f"step {{i}}"), plan_entry("last")])
            await self.conn.session_update(session_id, update)
        return PromptResponse(stop_reason="end_turn")

asyncio.run(run_agent(Flood()))
"""


def answer_to_agent(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 from a person's answer (the button's command starting) to the waiting agent's wake."""
    del sizes
    with backend.board() as url, backend.open(url) as board, backend.open(url) as person:
        log(f"{backend.name}: permission answer → waiting agent")
        task = board.create(OPERATOR, title="asks").task
        claim = board.claim(OPERATOR, task.id, ttl_s=600)
        if claim is None:
            raise RuntimeError("the task could not be claimed")
        agent = Actor(name="agent", run=claim.proof)
        samples: list[float] = []
        for i in range(_ANSWERS + _WARMUP):
            asked = board.request_permission(
                agent,
                task.id,
                tool_kind="execute",
                tool_name="Bash",
                summary=f"step {i}",
                ttl_s=600,
            )
            waiting = threading.Event()
            woke: list[float] = []

            def wait(
                ref: str = asked.ref, out: list[float] = woke, ready: threading.Event = waiting
            ) -> None:
                ready.set()
                board.wait_permission(ref, timeout_s=30)
                out.append(time.perf_counter())

            waiter = threading.Thread(target=wait)
            waiter.start()
            waiting.wait()
            time.sleep(0.02)  # the waiter is inside its wait, not about to start it
            pressed = time.perf_counter()
            person.answer_permission(OPERATOR, asked.ref, PermissionDecision.ALLOW_ONCE)
            waiter.join()
            if i >= _WARMUP:
                samples.append(woke[0] - pressed)
        return p99(samples)


class _AllowAll:
    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        del ask, cancelled
        return Answer(Verdict.ALLOW_ONCE)


def stream_cpu(log: Progress) -> float:
    """CPU seconds the supervisor's side spends on a turn of UPDATES session/update messages."""
    log(f"ACP: one turn streaming {UPDATES:,} session/update messages")
    import acp  # noqa: F401 - loaded before the clock starts: a parse is measured, not an import

    agent = subprocess.Popen(
        [sys.executable, "-c", _FLOODER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert agent.stdin is not None
    assert agent.stdout is not None
    lines: list[str] = []
    spec = SessionSpec(cwd="/", prompt="flood", mcp_command="true", mcp_args=(), mcp_env={})
    try:
        start = time.process_time()
        result = run_session(
            spec, agent.stdin, agent.stdout, _AllowAll(), lines.append, threading.Event()
        )
        spent = time.process_time() - start
    finally:
        agent.kill()
        agent.wait()
    if result.updates != UPDATES:
        raise RuntimeError(f"saw {result.updates} updates of {UPDATES} ({result.error})")
    return spent


def _claude_lines(count: int) -> bytes:
    """Claude Code stream-json as a busy run prints it: text, tool calls, their results."""
    lines: list[dict[str, Any]] = []
    for i in range(count):
        kind = i % 4
        content: list[dict[str, Any]]
        if kind == 0:
            content = [{"type": "text", "text": f"Step {i}: looking at the code " + "x" * 200}]
        elif kind == 1:
            content = [
                {
                    "type": "tool_use",
                    "id": f"u{i}",
                    "name": "Bash",
                    "input": {"command": f"make {i}"},
                }
            ]
        elif kind == 2:
            result = {"type": "tool_result", "tool_use_id": f"u{i - 1}", "content": "ok " * 100}
            lines.append({"type": "user", "message": {"role": "user", "content": [result]}})
            continue
        else:
            content = [
                {"type": "tool_use", "id": f"u{i}", "name": "Edit", "input": {"file_path": "a.py"}}
            ]
        usage = {"input_tokens": 1000 + i, "output_tokens": 50}
        lines.append(
            {"type": "assistant", "message": {"id": f"m{i}", "content": content, "usage": usage}}
        )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def claude_stream_cpu(log: Progress) -> float:
    """CPU seconds the supervisor spends folding UPDATES stream-json lines into log and usage."""
    log(f"claude-code: folding {UPDATES:,} stream-json lines")
    data = _claude_lines(UPDATES)
    logged: list[str] = []
    usages: list[object] = []
    folder = StreamFolder(ProgressTracker(interval_s=3.0, clock=time.monotonic))
    reader = StreamReader(folder, logged.append, on_usage=usages.append, progress=lambda _s: None)
    start = time.process_time()
    reader.start(io.BytesIO(data))
    reader.join(600)
    spent = time.process_time() - start
    if folder.state.lines != UPDATES:
        raise RuntimeError(f"folded {folder.state.lines} lines of {UPDATES}")
    return spent
