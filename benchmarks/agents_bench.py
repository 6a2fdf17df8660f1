"""Agents that ask and report: an answer reaching the waiting agent, and the ACP stream's cost."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from benchmarks.backends import Backend
from benchmarks.gateway_bench import p99
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from kanban_core import Actor, PermissionDecision
from kanban_core.dispatch.acp_session import AgentAsk, Answer, SessionSpec, Verdict, run_session

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
