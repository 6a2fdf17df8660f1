"""The ``kanban_permission`` MCP tool: Claude Code's permission prompt, answered by the run.

Claude Code (``claude -p --permission-prompt-tool mcp__kanban__kanban_permission``) calls the tool
with ``{"tool_name", "input", "tool_use_id"}`` before a tool call its own rules do not allow, and
reads the text of the result as JSON: ``{"behavior": "allow", "updatedInput": {...}}`` or
``{"behavior": "deny", "message": "..."}``. The request takes the same path as an ACP agent's
``session/request_permission``: the profile's policy, then a person through the board.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kanban_core.dispatch.acp_session import AgentAsk, PermissionAsker, Verdict
from kanban_core.dispatch.door import PERMISSION_TOOL
from kanban_core.permission_policy import ToolKind

if TYPE_CHECKING:
    from kanban_core.board.domain import Actor
    from kanban_core.board.kanban import Kanban
    from kanban_core.permission_policy import PermissionPolicy

__all__ = ["PERMISSION_TOOL", "PermissionGate", "ask_from_claude", "kind_of", "reply"]

#: The MCP server's name in the config the supervisor writes; Claude prefixes its tools with it.
SERVER_NAME = "kanban"
#: The board's own tools as Claude names them: fenced by the run already, never asked about.
OWN_TOOLS_PREFIX = f"mcp__{SERVER_NAME}__"

#: Claude Code's built-in tools by the policy's kinds; any other tool is ``other``.
_KINDS: dict[str, ToolKind] = {
    "Read": ToolKind.READ,
    "NotebookRead": ToolKind.READ,
    "LS": ToolKind.READ,
    "Glob": ToolKind.SEARCH,
    "Grep": ToolKind.SEARCH,
    "Edit": ToolKind.EDIT,
    "MultiEdit": ToolKind.EDIT,
    "Write": ToolKind.EDIT,
    "NotebookEdit": ToolKind.EDIT,
    "Bash": ToolKind.EXECUTE,
    "BashOutput": ToolKind.EXECUTE,
    "KillShell": ToolKind.EXECUTE,
    "KillBash": ToolKind.EXECUTE,
    "WebFetch": ToolKind.FETCH,
    "WebSearch": ToolKind.FETCH,
    # Bookkeeping: a subagent's own tool calls come back through this tool one by one.
    "TodoWrite": ToolKind.THINK,
    "Task": ToolKind.THINK,
    "Agent": ToolKind.THINK,
    "ExitPlanMode": ToolKind.THINK,
}
_PATH_KEYS = ("file_path", "notebook_path", "path")
#: Which input field says what a call does, by tool; the tool's name when none does.
_SUMMARY_KEYS = ("command", "url", "query", "file_path", "notebook_path", "pattern", "path")
_SUMMARY_CHARS = 500
_DETAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class PermissionGate:
    """What a run's door needs to answer permission requests: the policy, the workspace, and
    where the run's log notes go."""

    policy: PermissionPolicy
    workspace: Path
    ttl_s: int
    note: Callable[[str], None] = lambda _line: None

    def asker(self, board: Kanban, actor: Actor) -> PermissionAsker:
        """The run's asker on ``board``, acting as ``actor`` (the run's worker)."""
        from kanban_core.dispatch.permission_asker import BoardAsker

        assert actor.run is not None
        return BoardAsker(
            board=board,
            actor=actor,
            task_id=actor.run.task_id,
            run_id=actor.run.run_id,
            policy=self.policy,
            workspace=self.workspace,
            ttl_s=self.ttl_s,
            note=self.note,
        )


def kind_of(tool_name: str) -> ToolKind:
    """The policy's kind of one of Claude Code's tools."""
    return _KINDS.get(tool_name, ToolKind.OTHER)


def ask_from_claude(tool_name: str, tool_input: Mapping[str, Any]) -> AgentAsk:
    """The ask of a Claude Code tool call: its kind, what it does, the paths it names.

    A command's tool name is the command itself, as ACP agents title it: so a rule's
    ``tool: ["pytest*"]`` matches ``pytest -q``, and "allow for this run" allows that command
    again, not every command.
    """
    kind = kind_of(tool_name)
    command = tool_input.get("command")
    name = command if kind is ToolKind.EXECUTE and isinstance(command, str) else tool_name
    paths = tuple(
        value
        for key in _PATH_KEYS
        if isinstance(value := tool_input.get(key), str)
        # An empty search path means the working directory, which is the workspace.
        and not (key == "path" and value == "")
    )
    return AgentAsk(
        tool_kind=kind.value,
        tool_name=_bounded(name, 200) or tool_name,
        summary=summary_of(tool_name, tool_input),
        paths=paths,
        detail=_bounded(
            json.dumps(dict(tool_input), ensure_ascii=False, default=str), _DETAIL_CHARS
        ),
    )


def summary_of(tool_name: str, tool_input: Mapping[str, Any]) -> str:
    """One line saying what a tool call does (its command, URL, file or pattern)."""
    for key in _SUMMARY_KEYS:
        value = tool_input.get(key)
        if isinstance(value, str) and value.strip():
            return _bounded(value, _SUMMARY_CHARS)
    return _bounded(tool_name, _SUMMARY_CHARS) or "a tool"


def reply(
    arguments: Mapping[str, Any] | None,
    asker: PermissionAsker,
    cancelled: threading.Event,
    note: Callable[[str], None],
) -> dict[str, Any]:
    """The tool's answer to one request, in Claude Code's shape; never raises for bad input."""
    args = dict(arguments or {})
    tool_name = args.get("tool_name")
    tool_input = args.get("input", {})
    if not isinstance(tool_name, str) or not tool_name.strip():
        return deny("the permission request named no tool; nothing was allowed")
    if not isinstance(tool_input, dict):
        return deny("the tool's input is not a JSON object; nothing was allowed")
    if tool_name.startswith(OWN_TOOLS_PREFIX):
        # The run's door checks these itself: a worker may only change its own task.
        return allow(tool_input)
    ask = ask_from_claude(tool_name, tool_input)
    answer = asker.ask(ask, cancelled)
    note(f"permission {ask.tool_kind} {ask.summary!r}: {answer.verdict.value}")
    if answer.verdict is Verdict.DENY:
        return deny(answer.message or "denied")
    return allow(tool_input)


def allow(tool_input: Mapping[str, Any]) -> dict[str, Any]:
    """Allow the call with its input unchanged."""
    return {"behavior": "allow", "updatedInput": dict(tool_input)}


def deny(message: str) -> dict[str, Any]:
    """Deny the call; Claude is told ``message``."""
    return {"behavior": "deny", "message": message}


def _bounded(text: str, limit: int) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
