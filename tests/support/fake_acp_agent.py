"""A scripted ACP agent on the official SDK's agent side, for tests of the supervisor as client.

The script is JSON in ``FAKE_ACP_SCRIPT``: a list of steps run on ``session/prompt``:
``{"say": text}``, ``{"plan": [step, ...]}``, ``{"tool": title}``,
``{"ask": {"kind": k, "title": t, "input": {...}}, "record": name}`` (the chosen outcome is
written to ``$FAKE_ACP_OUT/<name>``, the ``_meta`` the client sent with it to ``<name>_meta``),
``{"run": [argv...]}`` (a subprocess, e.g.
``kanban complete``), ``{"wait_cancel": true}`` (block until ``session/cancel``),
``{"stop": reason}`` (the prompt's stopReason, default end_turn), ``{"garbage": text}`` (a raw
line on stdout that is not JSON-RPC), ``{"exit": code}``, ``{"usage": {"used": n, "size": n,
"cost": dollars}}`` (a usage_update), ``{"prompt_usage": {"input_tokens": n, "output_tokens":
n}}`` (usage in the prompt's response), ``{"rpc_error": {"message": m, "data": ..., "once": name}}``
(the prompt fails with a JSON-RPC error; with ``once``, only the first time).

Sessions are kept as files in ``$FAKE_ACP_OUT`` (``history-<session id>.json``: the prompts so
far), so a later agent process can ``session/load`` one, as a real agent resumes from its own
store. ``FAKE_ACP_LOAD=0`` leaves ``loadSession`` out of the capabilities (and refuses a load).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from acp import (
    PROTOCOL_VERSION,
    RequestError,
    plan_entry,
    run_agent,
    start_tool_call,
    update_agent_message_text,
    update_plan,
)
from acp.schema import (
    AgentCapabilities,
    Cost,
    InitializeResponse,
    LoadSessionResponse,
    NewSessionResponse,
    PermissionOption,
    PromptResponse,
    ToolCallUpdate,
    Usage,
    UsageUpdate,
)

_REPORTS = {"usage", "prompt_usage", "rpc_error"}


class FakeAgent:
    """Runs the script's steps for each prompt."""

    def __init__(self, steps: list[dict[str, Any]]) -> None:
        self.steps = steps
        self.cancelled = asyncio.Event()
        self.out = Path(os.environ.get("FAKE_ACP_OUT", "."))
        self.loads = os.environ.get("FAKE_ACP_LOAD", "1") != "0"

    def on_connect(self, conn: Any) -> None:
        self.conn = conn

    async def initialize(self, protocol_version: int, **kwargs: Any) -> InitializeResponse:
        del kwargs
        self._record("initialize", {"protocol_version": protocol_version})
        return InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=AgentCapabilities(load_session=self.loads),
        )

    async def new_session(self, cwd: str, mcp_servers: Any = None, **kwargs: Any) -> Any:
        del kwargs
        servers = [s.model_dump(by_alias=True, exclude_none=True) for s in mcp_servers or ()]
        session_id = f"fake-{uuid.uuid4().hex[:12]}"
        self._record("session", {"cwd": cwd, "mcp_servers": servers, "session_id": session_id})
        self._history_path(session_id).write_text("[]", encoding="utf-8")
        return NewSessionResponse(session_id=session_id)

    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: Any = None, **kwargs: Any
    ) -> LoadSessionResponse:
        del mcp_servers, kwargs
        path = self._history_path(session_id)
        if not self.loads or not path.exists():
            raise RequestError.resource_not_found(session_id)
        history = json.loads(path.read_text(encoding="utf-8"))
        self._record("loaded", {"cwd": cwd, "session_id": session_id, "history": history})
        for text in history:  # a loading agent replays the conversation to the client
            await self.conn.session_update(session_id, update_agent_message_text(f"(was) {text}"))
        return LoadSessionResponse()

    def _history_path(self, session_id: str) -> Path:
        return self.out / f"history-{session_id}.json"

    async def cancel(self, session_id: str, **kwargs: Any) -> None:
        del session_id, kwargs
        self._record("cancelled", {})
        self.cancelled.set()

    async def prompt(self, prompt: Any, session_id: str, **kwargs: Any) -> PromptResponse:
        del kwargs
        path = self._history_path(session_id)
        history = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
        self._record("prompt", {"text": prompt[0].text, "session_id": session_id})
        path.write_text(json.dumps([*history, prompt[0].text]), encoding="utf-8")
        stop = "end_turn"
        usage: Usage | None = None
        for step in self.steps:
            if "say" in step:
                await self.conn.session_update(session_id, update_agent_message_text(step["say"]))
            elif "plan" in step:
                entries = [plan_entry(text) for text in step["plan"]]
                await self.conn.session_update(session_id, update_plan(entries))
            elif "tool" in step:
                await self.conn.session_update(
                    session_id, start_tool_call("call-1", step["tool"], kind="execute")
                )
            elif "ask" in step:
                ask = step["ask"]
                call = ToolCallUpdate(
                    tool_call_id="call-ask",
                    title=ask.get("title", "a tool"),
                    kind=ask.get("kind", "execute"),
                    raw_input=ask.get("input", {}),
                )
                options = [
                    PermissionOption(option_id="yes-1", name="Allow", kind="allow_once"),
                    PermissionOption(option_id="no-1", name="Reject", kind="reject_once"),
                ]
                answer = await self.conn.request_permission(
                    session_id=session_id, tool_call=call, options=options
                )
                outcome = answer.outcome
                chosen = getattr(outcome, "option_id", None) or outcome.outcome
                self._record(step.get("record", "ask"), {"outcome": chosen})
                # Whether the client had cancelled the turn before this answer arrived.
                self._record(
                    f"{step.get('record', 'ask')}_order",
                    {"cancelled_first": self.cancelled.is_set()},
                )
                self._record(f"{step.get('record', 'ask')}_meta", answer.field_meta or {})
            elif "run" in step:
                done = await asyncio.to_thread(
                    subprocess.run, step["run"], capture_output=True, text=True, check=False
                )
                self._record(
                    step.get("record", "run"),
                    {"code": done.returncode, "stdout": done.stdout, "stderr": done.stderr},
                )
            elif "wait_cancel" in step:
                await self.cancelled.wait()
                return PromptResponse(stop_reason="cancelled")
            elif "garbage" in step:
                sys.stdout.write(step["garbage"] + "\n")
                sys.stdout.flush()
            elif "exit" in step:
                os._exit(int(step["exit"]))
            elif "stop" in step:
                stop = step["stop"]
            elif _REPORTS & step.keys():
                usage = await self._report(session_id, step) or usage
        return PromptResponse(stop_reason=stop, usage=usage)  # type: ignore[arg-type]

    async def _report(self, session_id: str, step: dict[str, Any]) -> Usage | None:
        """The usage, usage-in-the-response and JSON-RPC error steps."""
        if "usage" in step:
            used = step["usage"]
            cost = used.get("cost")
            update = UsageUpdate(
                session_update="usage_update",
                used=used.get("used", 0),
                size=used.get("size", 200_000),
                cost=None if cost is None else Cost(amount=cost, currency="USD"),
            )
            await self.conn.session_update(session_id, update)
            return None
        if "prompt_usage" in step:
            got = step["prompt_usage"]
            return Usage(
                input_tokens=got["input_tokens"],
                output_tokens=got["output_tokens"],
                total_tokens=got["input_tokens"] + got["output_tokens"],
            )
        error = step["rpc_error"]
        once = error.get("once")
        if once is not None:
            # Fails only the first attempt: a retry of the task finds the marker and goes on.
            if (self.out / f"{once}.json").exists():
                return None
            self._record(once, {})
        raise RequestError(-32603, error["message"], error.get("data"))

    def _record(self, name: str, value: dict[str, Any]) -> None:
        target = self.out / f"{name}.json"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(value), encoding="utf-8")
        tmp.replace(target)


def main() -> None:
    """Run the agent on stdio."""
    steps = json.loads(os.environ.get("FAKE_ACP_SCRIPT", "[]"))
    agent: Any = FakeAgent(steps)  # the SDK calls only the methods a session uses
    asyncio.run(run_agent(agent))


if __name__ == "__main__":
    main()
