"""A fake ``claude`` (Claude Code's print mode) for tests of the ``claude-code`` preset.

It parses the flags the preset passes (``-p PROMPT --mcp-config FILE --permission-prompt-tool
mcp__SERVER__TOOL --output-format stream-json --verbose``) and refuses what the real one refuses
(stream-json without --verbose, a permission tool on a server the config does not name). It starts
the MCP servers of the config with the official MCP SDK's client (real MCP over stdio) and
prints stream-json lines as it follows a script, JSON in ``FAKE_CLAUDE_SCRIPT``:

- ``{"say": text}``: an assistant text message;
- ``{"tool": name, "input": {...}, "record": file}``: an assistant ``tool_use``, then the
  permission tool is asked; its answer is written to ``$FAKE_CLAUDE_OUT/<file>.json`` and a
  ``tool_result`` line follows (an error when denied);
- ``{"mcp": tool, "arguments": {...}, "record": file}``: a direct call of a kanban tool;
- ``{"usage": {"input_tokens": n, "output_tokens": n}}``: an assistant message with usage;
- ``{"todo": [[content, status], ...]}``: a TodoWrite tool_use (the plan);
- ``{"garbage": text}``: a raw line that is not a stream message;
- ``{"result": {...}}``: the result line (``text``, ``is_error``, ``cost``, ``input_tokens``,
  ``output_tokens``); ``{"exit": code}``: exit now;
- ``{"idle": seconds}``: keep running (until killed, at most that long);
- ``{"await_usage": tokens}``: poll ``kanban_show`` until the run shows that many input tokens
  (the supervisor reads stdout on its own time; a real Claude does not wait for it).

Each step's effect is also noted in ``$FAKE_CLAUDE_OUT/argv.json`` (the parsed flags) so tests can
check what the supervisor passed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

OUT = Path(os.environ.get("FAKE_CLAUDE_OUT", "."))
SESSION = str(uuid.uuid4())


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def record(name: str, value: Any) -> None:
    tmp = OUT / f".{name}.tmp"
    tmp.write_text(json.dumps(value), encoding="utf-8")
    tmp.replace(OUT / f"{name}.json")


def assistant(content: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
    message: dict[str, Any] = {
        "id": f"msg_{uuid.uuid4().hex[:12]}",
        "type": "message",
        "role": "assistant",
        "model": "fake-claude",
        "content": content,
    }
    if usage is not None:
        message["usage"] = usage
    emit({"type": "assistant", "message": message, "session_id": SESSION})


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="claude")
    parser.add_argument("prompt", nargs="?")
    parser.add_argument("-p", "--print", action="store_true")
    parser.add_argument("--mcp-config")
    parser.add_argument("--permission-prompt-tool")
    parser.add_argument("--output-format", choices=("text", "json", "stream-json"), default="text")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--session-id")
    parser.add_argument("--resume")
    args = parser.parse_args(argv)
    if args.output_format == "stream-json" and args.print and not args.verbose:
        parser.error("When using --print, --output-format=stream-json requires --verbose")
    return args


def mcp_servers(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    servers: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))["mcpServers"]
    return servers


async def main(argv: list[str]) -> int:
    args = parse(argv)
    record("argv", vars(args) | {"mcp_tool_timeout": os.environ.get("MCP_TOOL_TIMEOUT")})
    steps: list[dict[str, Any]] = json.loads(os.environ.get("FAKE_CLAUDE_SCRIPT", "[]"))
    servers = mcp_servers(args.mcp_config)
    permission: tuple[str, str] | None = None
    if args.permission_prompt_tool:
        prefix, server, tool = args.permission_prompt_tool.split("__", 2)
        if prefix != "mcp" or server not in servers:
            sys.stderr.write(f"MCP server {server!r} for the permission prompt tool not found\n")
            return 1
        permission = (server, tool)
    async with AsyncExitStack() as stack:
        sessions: dict[str, ClientSession] = {}
        for name, spec in servers.items():
            params = StdioServerParameters(
                command=spec["command"], args=spec.get("args", []), env=spec.get("env")
            )
            read, write = await stack.enter_async_context(stdio_client(params))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            sessions[name] = session
        tools = {
            name: [tool.name for tool in (await session.list_tools()).tools]
            for name, session in sessions.items()
        }
        emit(
            {
                "type": "system",
                "subtype": "init",
                "session_id": SESSION,
                "model": "fake-claude",
                "permissionMode": "default",
                "tools": [
                    "Bash",
                    "Read",
                    "Edit",
                    *(f"mcp__{s}__{t}" for s in tools for t in tools[s]),
                ],
                "mcp_servers": [{"name": name, "status": "connected"} for name in sessions],
            }
        )
        for step in steps:
            code = await run_step(step, sessions, permission)
            if code is not None:
                return code
    return 0


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    value: dict[str, Any] = json.loads(text)
    return value


async def use_tool(
    step: dict[str, Any], sessions: dict[str, ClientSession], permission: tuple[str, str] | None
) -> None:
    """A tool_use, the permission prompt, and the tool's result as Claude reports it."""
    use_id = f"toolu_{uuid.uuid4().hex[:12]}"
    tool_input = step.get("input", {})
    assistant([{"type": "tool_use", "id": use_id, "name": step["tool"], "input": tool_input}])
    if permission is None:
        answer = {"behavior": "deny", "message": "no permission prompt tool"}
    else:
        server, tool = permission
        arguments = {"tool_name": step["tool"], "input": tool_input, "tool_use_id": use_id}
        answer = await call(sessions[server], tool, arguments)
    record(step.get("record", "answer"), answer)
    denied = answer.get("behavior") != "allow"
    result = {
        "type": "tool_result",
        "tool_use_id": use_id,
        "content": answer.get("message", "denied") if denied else "done",
        "is_error": denied,
    }
    emit({"type": "user", "message": {"role": "user", "content": [result]}, "session_id": SESSION})


async def await_usage(session: ClientSession, tokens: int) -> None:
    with anyio.fail_after(60):
        while True:
            runs = (await call(session, "kanban_show", {}))["runs"]
            if runs and (runs[-1].get("input_tokens") or 0) >= tokens:
                return
            await anyio.sleep(0.05)


async def run_step(
    step: dict[str, Any],
    sessions: dict[str, ClientSession],
    permission: tuple[str, str] | None,
) -> int | None:
    if "say" in step:
        assistant([{"type": "text", "text": step["say"]}])
    elif "tool" in step:
        await use_tool(step, sessions, permission)
    elif "mcp" in step:
        reply = await call(sessions["kanban"], step["mcp"], step.get("arguments", {}))
        if "record" in step:
            record(step["record"], reply)
    elif "usage" in step:
        assistant([{"type": "text", "text": "thinking it over"}], usage=step["usage"])
    elif "todo" in step:
        todos = [{"content": c, "status": s, "activeForm": c} for c, s in step["todo"]]
        assistant(
            [
                {
                    "type": "tool_use",
                    "id": "toolu_todo",
                    "name": "TodoWrite",
                    "input": {"todos": todos},
                }
            ]
        )
    elif "garbage" in step:
        sys.stdout.write(step["garbage"] + "\n")
        sys.stdout.flush()
    elif "result" in step:
        spec = step["result"]
        emit(
            {
                "type": "result",
                "subtype": spec.get("subtype", "success"),
                "is_error": spec.get("is_error", False),
                "result": spec.get("text", ""),
                "num_turns": spec.get("turns", 1),
                "session_id": SESSION,
                "total_cost_usd": spec.get("cost", 0.0),
                "usage": {
                    "input_tokens": spec.get("input_tokens", 0),
                    "output_tokens": spec.get("output_tokens", 0),
                    "cache_read_input_tokens": 0,
                },
            }
        )
    elif "await_usage" in step:
        await await_usage(sessions["kanban"], int(step["await_usage"]))
    elif "idle" in step:
        await anyio.sleep(float(step["idle"]))
    elif "exit" in step:
        return int(step["exit"])
    return None


if __name__ == "__main__":
    sys.exit(anyio.run(main, sys.argv[1:]))
