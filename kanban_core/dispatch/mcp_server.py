"""``kanban mcp``: the board's worker tools served over MCP on stdio, acting as the caller's run."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from kanban_core.board.domain import Actor, RunId, RunProof, TaskId, format_task_id, parse_task_id
from kanban_core.board.kanban import Kanban
from kanban_core.board.validation import parse_duration, parse_metadata
from kanban_core.dispatch.door import PERMISSION_TOOL
from kanban_core.errors import KanbanError, ValidationError

__all__ = [
    "TOOL_NAMES",
    "BoardTools",
    "RemoteTools",
    "build_server",
    "run_stdio",
    "serve_remote",
    "serve_stdio",
]

logger = logging.getLogger(__name__)

#: How many of a task's newest events kanban_show returns (an agent's context is finite).
SHOW_EVENTS = 50

Payload = dict[str, Any]

_TASK_ID = {"type": "string", "description": "a task id like t5"}
_OWN_TASK = {"type": "string", "description": "a task id like t5 (default: your own task)"}
_STRINGS: dict[str, Any] = {
    "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
}


@dataclass(frozen=True, slots=True)
class _ToolSpec:
    name: str
    description: str
    properties: Mapping[str, Mapping[str, Any]]
    required: tuple[str, ...] = ()
    read_only: bool = False
    open_schema: bool = False  # the caller's contract may grow fields; they are ignored

    def to_tool(self) -> types.Tool:
        schema = {
            "type": "object",
            "properties": {name: dict(prop) for name, prop in self.properties.items()},
            "required": list(self.required),
            "additionalProperties": self.open_schema,
        }
        return types.Tool(
            name=self.name,
            description=self.description,
            input_schema=schema,
            annotations=types.ToolAnnotations(read_only_hint=self.read_only),
        )


_SPECS: tuple[_ToolSpec, ...] = (
    _ToolSpec(
        "kanban_show",
        "Show a task (default: your own) with its parents, children, comments, runs and its "
        f"last {SHOW_EVENTS} events. Any task may be read.",
        {"task_id": _OWN_TASK},
        read_only=True,
    ),
    _ToolSpec(
        "kanban_complete",
        "Mark your task done with a handoff for whoever comes next: a summary (what you did, "
        "what is left), optional metadata (a JSON object, e.g. files changed) and/or a short "
        "result line. Give a summary or a result. Only your own task, and only while your run "
        "is current.",
        {
            "task_id": _OWN_TASK,
            "summary": {"type": "string", "description": "the handoff: what was done and how"},
            "metadata": {"type": "object", "description": "structured facts about the work"},
            "result": {"type": "string", "description": "a short result line"},
        },
    ),
    _ToolSpec(
        "kanban_block",
        "Stop and ask a human: blocks your task until someone unblocks it. Say exactly what "
        "you need (a decision, a credential, access); the reason is recorded as a comment.",
        {"task_id": _OWN_TASK, "reason": {"type": "string", "description": "what you need"}},
        required=("reason",),
    ),
    _ToolSpec(
        "kanban_heartbeat",
        "Renew your run's lease during long work so it is not reclaimed as stalled; an "
        "optional note records progress.",
        {"task_id": _OWN_TASK, "note": {"type": "string", "description": "a progress note"}},
    ),
    _ToolSpec(
        "kanban_comment",
        "Add a comment to any task; it is signed with your run's identity.",
        {"task_id": _TASK_ID, "body": {"type": "string", "description": "the comment"}},
        required=("task_id", "body"),
    ),
    _ToolSpec(
        "kanban_create",
        "Create a task (e.g. a subtask or follow-up) for an assignee; with parents it waits "
        "for them. An idempotency_key makes retries return the same task.",
        {
            "title": {"type": "string", "description": "a one-line title"},
            "assignee": {"type": "string", "description": "who works on it (a worker profile)"},
            "body": {"type": "string", "description": "spec, context, acceptance criteria"},
            "parents": _STRINGS | {"description": "task ids this one waits for"},
            "tenant": {"type": "string", "description": "namespace (default: KANBAN_TENANT)"},
            "priority": {"type": "integer", "description": "higher runs first (default 0)"},
            "triage": {"type": "boolean", "description": "park as a rough idea, never auto-run"},
            "idempotency_key": {"type": "string", "description": "a retry with it is a no-op"},
            "max_runtime": {"type": "string", "description": "per-attempt cap: 90s, 30m, 2h"},
            "skills": _STRINGS | {"description": "skills the worker must load"},
        },
        required=("title", "assignee"),
    ),
    _ToolSpec(
        "kanban_link",
        "Make child_id wait for parent_id (a dependency between existing tasks).",
        {"parent_id": _TASK_ID, "child_id": _TASK_ID},
        required=("parent_id", "child_id"),
    ),
)

#: Claude Code's --permission-prompt-tool contract; answered by the run's supervisor.
_PERMISSION_SPEC = _ToolSpec(
    PERMISSION_TOOL,
    "Not for the agent to call: the run's permission prompt (Claude Code's "
    "--permission-prompt-tool). Returns, as JSON text, "
    '{"behavior": "allow", "updatedInput": {...}} or {"behavior": "deny", "message": "..."}.',
    {
        "tool_name": {"type": "string", "description": "the tool the agent wants to use"},
        "input": {"type": "object", "description": "the tool call's input"},
        "tool_use_id": {"type": "string", "description": "the tool call's id"},
    },
    required=("tool_name", "input"),
    open_schema=True,
)
_SPECS = (*_SPECS, _PERMISSION_SPEC)

TOOL_NAMES = tuple(spec.name for spec in _SPECS)


class _Args:
    """A tool call's raw arguments, read with the checks the input schema promises."""

    def __init__(self, spec: _ToolSpec, raw: Mapping[str, Any] | None) -> None:
        self._raw = dict(raw or {})
        unknown = sorted(set(self._raw) - set(spec.properties))
        if unknown:
            # Refused rather than ignored: an `author` argument must not look like it worked.
            raise ValidationError(
                f"unknown argument(s) {', '.join(unknown)}; "
                f"{spec.name} takes {', '.join(spec.properties) or 'no arguments'}"
            )
        missing = [name for name in spec.required if self._raw.get(name) is None]
        if missing:
            raise ValidationError(f"missing required argument(s): {', '.join(missing)}")

    def text(self, name: str) -> str | None:
        value = self._raw.get(name)
        if value is None or isinstance(value, str):
            return value
        raise ValidationError(f"{name} must be a string")

    def required_text(self, name: str) -> str:
        value = self.text(name)
        if value is None or not value.strip():
            raise ValidationError(f"{name} must not be empty")
        return value

    def task(self, name: str) -> TaskId | None:
        value = self.text(name)
        return None if value is None else parse_task_id(value)

    def required_task(self, name: str) -> TaskId:
        task_id = self.task(name)
        if task_id is None:
            raise ValidationError(f"{name} is required")
        return task_id

    def tasks(self, name: str) -> list[TaskId]:
        return [parse_task_id(value) for value in self.strings(name)]

    def strings(self, name: str) -> list[str]:
        value = self._raw.get(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return list(value)
        raise ValidationError(f"{name} must be a string or a list of strings")

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self._raw.get(name)
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, str):
            # Some clients send objects JSON-encoded; the CLI's --metadata rules apply then.
            return parse_metadata(value)
        raise ValidationError(f"{name} must be a JSON object")

    def integer(self, name: str) -> int | None:
        value = self._raw.get(name)
        # bool is an int in Python but not in JSON Schema.
        if value is None or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise ValidationError(f"{name} must be an integer")

    def flag(self, name: str) -> bool:
        value = self._raw.get(name)
        if value is None or isinstance(value, bool):
            return bool(value)
        raise ValidationError(f"{name} must be true or false")


class BoardTools:
    """The tools as plain calls: a name and raw arguments in, a JSON object out.

    The actor is fixed for the process (built from its environment by the CLI), so no argument
    can change who is acting; scope and fencing are the facade's.
    """

    def __init__(self, board: Kanban, actor: Actor, environ: Mapping[str, str]) -> None:
        self.board = board
        self.actor = actor
        self.environ = environ
        self._handlers: dict[str, Callable[[_Args], Payload]] = {
            "kanban_show": self._show,
            "kanban_complete": self._complete,
            "kanban_block": self._block,
            "kanban_heartbeat": self._heartbeat,
            "kanban_comment": self._comment,
            "kanban_create": self._create,
            "kanban_link": self._link,
        }
        self._specs = {spec.name: spec for spec in _SPECS}

    def tools(self) -> list[types.Tool]:
        """The tool list, in a stable order."""
        return [spec.to_tool() for spec in _SPECS]

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> Payload:
        """Run one tool; every failure comes back as ``{"error": "<one line>"}``."""
        if name == PERMISSION_TOOL:
            # Outside a worker run there is no policy, no workspace and no one to ask.
            return {
                "behavior": "deny",
                "message": "permission prompts are answered only inside a worker run; denied",
            }
        try:
            spec = self._specs.get(name)
            if spec is None:
                raise ValidationError(
                    f"unknown tool {name!r}; the tools are {', '.join(TOOL_NAMES)}"
                )
            return {"ok": True} | self._handlers[name](_Args(spec, arguments))
        except KanbanError as exc:
            return {"error": " ".join(str(exc).splitlines())}
        except Exception as exc:
            # The agent gets no internals; the operator finds the traceback in the worker's log.
            logger.exception("kanban mcp: %s failed", name)
            return {"error": f"internal error: {type(exc).__name__}"}

    def _own_task(self, args: _Args) -> TaskId:
        task_id = args.task("task_id")
        if task_id is not None:
            return task_id
        if self.actor.run is not None:
            return self.actor.run.task_id
        raw = self.environ.get("KANBAN_TASK")
        if raw:
            return parse_task_id(raw)
        raise ValidationError("task_id is required (this server has no task of its own)")

    def _show(self, args: _Args) -> Payload:
        detail = self.board.detail(self._own_task(args), event_limit=SHOW_EVENTS)
        return {
            "task": detail.task.to_json(),
            "parents": [format_task_id(p) for p in detail.parents],
            "children": [format_task_id(c) for c in detail.children],
            "comments": [c.to_json() for c in detail.comments],
            "events": [e.to_json() for e in detail.events],
            "runs": [r.to_json() for r in detail.runs],
        }

    def _complete(self, args: _Args) -> Payload:
        task_id = self._own_task(args)
        summary, result = args.text("summary"), args.text("result")
        metadata = args.mapping("metadata")
        if not (summary or "").strip() and not (result or "").strip():
            raise ValidationError("give a summary (the handoff) or a result")
        task = self.board.complete(
            self.actor, task_id, result=result, summary=summary, metadata=metadata
        )
        return {"task_id": task.ref, "status": task.status.value}

    def _block(self, args: _Args) -> Payload:
        task_id = self._own_task(args)
        task = self.board.block(self.actor, task_id, args.required_text("reason"))
        return {"task_id": task.ref, "status": task.status.value}

    def _heartbeat(self, args: _Args) -> Payload:
        task_id = self._own_task(args)
        expires_ms = self.board.heartbeat(self.actor, task_id, args.text("note"))
        return {"task_id": format_task_id(task_id), "lease_expires_at": expires_ms // 1000}

    def _comment(self, args: _Args) -> Payload:
        task_id = args.required_task("task_id")
        comment_id = self.board.comment(self.actor, task_id, args.required_text("body"))
        return {"task_id": format_task_id(task_id), "comment_id": comment_id}

    def _create(self, args: _Args) -> Payload:
        tenant = args.text("tenant")
        if tenant is None:
            tenant = self.environ.get("KANBAN_TENANT") or None
        priority = args.integer("priority")
        outcome = self.board.create(
            self.actor,
            title=args.required_text("title"),
            assignee=args.required_text("assignee"),
            body=args.text("body"),
            parents=args.tasks("parents"),
            tenant=tenant,
            priority=0 if priority is None else priority,
            triage=args.flag("triage"),
            idempotency_key=args.text("idempotency_key"),
            max_runtime_s=parse_duration(args.text("max_runtime")),
            skills=args.strings("skills"),
        )
        task = outcome.task
        return {"task_id": task.ref, "status": task.status.value, "created": outcome.created}

    def _link(self, args: _Args) -> Payload:
        parent, child = args.required_task("parent_id"), args.required_task("child_id")
        created = self.board.link(self.actor, parent, child)
        return {
            "parent_id": format_task_id(parent),
            "child_id": format_task_id(child),
            "linked": created,
        }


class RemoteTools:
    """The same tools inside a worker run, answered by the run's supervisor over its capability.

    The agent's process holds no database; each call travels to the supervisor, which runs it
    as the run (see ``kanban_core.commands.capability``).
    """

    def __init__(self, call: Callable[[Mapping[str, Any]], Payload], actor: Actor) -> None:
        self._call = call
        self.actor = actor

    def tools(self) -> list[types.Tool]:
        """The tool list, in a stable order."""
        return [spec.to_tool() for spec in _SPECS]

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> Payload:
        """Run one tool at the supervisor; every failure comes back as ``{"error": ...}``."""
        try:
            reply = self._call({"tool": name, "arguments": dict(arguments or {})})
        except KanbanError as exc:
            payload: Any = {"error": " ".join(str(exc).splitlines())}
        else:
            payload = reply.get("payload")
            if not isinstance(payload, dict):
                payload = {"error": "the supervisor sent no answer"}
        if name == PERMISSION_TOOL and "error" in payload:
            # Claude reads only a behavior: a prompt that could not be answered is a denial.
            return {"behavior": "deny", "message": f"not decided: {payload['error']}"}
        return dict(payload)


def build_server(tools: BoardTools | RemoteTools) -> Server[Any]:
    """The MCP server (SDK low-level API): tools/list and tools/call over ``tools``.

    The low-level server is used so the input schemas are exactly the ones above and every
    argument error reaches the agent as ``{"error": ...}``, not as an SDK validation dump.
    """

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        del ctx, params
        return types.ListToolsResult(tools=tools.tools())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        del ctx
        # The facade blocks (database I/O); a thread keeps the protocol loop answering.
        payload = await anyio.to_thread.run_sync(tools.call, params.name, params.arguments)
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(payload, ensure_ascii=False))],
            structured_content=payload,
            is_error="error" in payload,
        )

    run = tools.actor.run
    scope = (
        f"You are the worker of {format_task_id(run.task_id)}; you may change only that task."
        if run is not None
        else "You act as the local user."
    )
    return Server(
        "kanban",
        instructions=f"Kanban board tools. {scope} Every tool returns a JSON object: "
        '{"ok": true, ...} on success, {"error": "..."} when refused.',
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(tools: BoardTools | RemoteTools) -> None:
    """Serve on this process's stdin/stdout until the client closes stdin."""
    server = build_server(tools)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def run_stdio(board: Kanban, actor: Actor, environ: Mapping[str, str]) -> None:
    """Blocking entry for ``kanban mcp``; the caller owns (and closes) the board."""
    if not logging.getLogger().handlers:
        # stdout is the protocol channel; diagnostics go to stderr (the worker's log).
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    anyio.run(serve_stdio, BoardTools(board, actor, environ))


def serve_remote(call: Callable[[Mapping[str, Any]], Payload], environ: Mapping[str, str]) -> None:
    """Blocking entry for ``kanban mcp`` inside a worker run: every call goes to the supervisor."""
    if not logging.getLogger().handlers:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    run = None
    task, run_id = environ.get("KANBAN_TASK", ""), environ.get("KANBAN_RUN_ID", "")
    if task and run_id.isdigit():
        # Only for the server's instructions text; the supervisor decides who is acting.
        with contextlib.suppress(KanbanError):
            run = RunProof(parse_task_id(task), RunId(int(run_id)), "")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve_stdio, RemoteTools(call, Actor(name="worker", run=run)))
