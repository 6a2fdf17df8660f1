"""Assignee profiles: what command runs a task for an assignee, where, and how many at once."""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kanban_core.board.domain import Task
from kanban_core.board.validation import WorkspaceSpec
from kanban_core.permission_policy import DEFAULT_POLICY, PermissionPolicy


class Preset(enum.StrEnum):
    """Ready-made commands for the common coding agents."""

    CLAUDE_CODE = "claude-code"
    CODEX = "codex"
    GEMINI = "gemini"
    COMMAND = "command"  # the profile gives its own argv
    DEMO = "demo"  # the built-in worker that needs no network or model
    # Agents spoken to over the Agent Client Protocol: the supervisor is their ACP client.
    CLAUDE_CODE_ACP = "claude-code-acp"  # npm @zed-industries/claude-code-acp
    CODEX_ACP = "codex-acp"  # npm @zed-industries/codex-acp
    GEMINI_ACP = "gemini-acp"  # Gemini CLI's own ACP mode
    ACP = "acp"  # any ACP agent; the profile gives its argv


#: Presets whose agents speak ACP on their stdio (the prompt travels in the protocol, not argv).
ACP_PRESETS = frozenset({Preset.CLAUDE_CODE_ACP, Preset.CODEX_ACP, Preset.GEMINI_ACP, Preset.ACP})
#: Presets whose agents print Claude Code's ``--output-format stream-json`` lines on stdout.
STREAM_JSON_PRESETS = frozenset({Preset.CLAUDE_CODE})
#: Presets whose profile must give its own ``command``.
COMMAND_PRESETS = frozenset({Preset.COMMAND, Preset.ACP})


#: Placeholders a command template may use; each is substituted as one whole argv element.
PLACEHOLDERS = (
    "{prompt}",
    "{task_id}",
    "{run_id}",
    "{workspace}",
    "{mcp_config}",
    "{agent_session_id}",
)

PRESET_COMMANDS: dict[Preset, tuple[str, ...]] = {
    # Permission prompts go to the run (the MCP server is named "kanban" in the config the
    # supervisor writes); stream-json lines become the run's log, progress and usage.
    Preset.CLAUDE_CODE: (
        "claude",
        "-p",
        "{prompt}",
        "--mcp-config",
        "{mcp_config}",
        "--permission-prompt-tool",
        "mcp__kanban__kanban_permission",
        "--output-format",
        "stream-json",
        "--verbose",
    ),
    Preset.CODEX: (
        "codex",
        "exec",
        "-c",
        'mcp_servers.kanban.command="kanban"',
        "-c",
        'mcp_servers.kanban.args=["mcp"]',
        "{prompt}",
    ),
    Preset.GEMINI: ("gemini", "-p", "{prompt}"),
    Preset.DEMO: (sys.executable, "-m", "kanban_core.dispatch.demo_worker"),
    Preset.CLAUDE_CODE_ACP: ("claude-code-acp",),
    Preset.CODEX_ACP: ("codex-acp",),
    Preset.GEMINI_ACP: ("gemini", "--acp"),
}


class SandboxMode(enum.StrEnum):
    """How a profile's agents are contained."""

    AUTO = "auto"  # bubblewrap where it works; elsewhere run uncontained, and say so loudly
    REQUIRED = "required"  # bubblewrap or the run does not start
    OFF = "off"  # never (the agent has the user's full authority)


@dataclass(frozen=True, slots=True)
class SandboxPolicy:
    """A profile's ``sandbox`` section."""

    mode: SandboxMode = SandboxMode.AUTO
    network: bool = True
    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON (it travels in the worker spec)."""
        return {
            "mode": self.mode.value,
            "network": self.network,
            "read": list(self.read),
            "write": list(self.write),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SandboxPolicy:
        """The policy from ``to_json``; an empty mapping is the default."""
        return cls(
            mode=SandboxMode(raw.get("mode", SandboxMode.AUTO.value)),
            network=bool(raw.get("network", True)),
            read=tuple(raw.get("read", ())),
            write=tuple(raw.get("write", ())),
        )


@dataclass(frozen=True, slots=True)
class AssigneeProfile:
    """One configured assignee."""

    name: str
    command: tuple[str, ...]
    preset: Preset = Preset.COMMAND
    workspace: WorkspaceSpec | None = None
    repo: str | None = None
    max_in_progress: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    pass_env: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    max_runtime_s: int | None = None
    allow_dirty_base: bool = False
    first_turn_args: tuple[str, ...] = ()
    resume_args: tuple[str, ...] = ()
    sandbox: SandboxPolicy = field(default_factory=SandboxPolicy)
    permissions: PermissionPolicy = DEFAULT_POLICY
    max_cost_micro_usd: int | None = None  # a budget for tasks that set none of their own
    max_tokens: int | None = None
    progress_interval_s: float | None = 3.0  # None: no live progress from this profile
    #: Where its tasks run when created without --host / --label: an enrolled host, or a label.
    host: str | None = None
    label: str | None = None

    @property
    def protocol(self) -> str:
        """How the supervisor talks to the agent: ``acp``, ``stream-json`` (argv in, Claude
        Code's JSON lines out) or ``cli`` (argv in, exit status out)."""
        if self.preset in ACP_PRESETS:
            return "acp"
        return "stream-json" if self.preset in STREAM_JSON_PRESETS else "cli"


#: Extra arguments for workspace turns: the first turn of a session names the agent's session,
#: later ones resume it, so each session keeps its own conversation with the agent.
SESSION_ARGS: dict[Preset, tuple[tuple[str, ...], tuple[str, ...]]] = {
    Preset.CLAUDE_CODE: (
        ("--session-id", "{agent_session_id}"),
        ("--resume", "{agent_session_id}"),
    ),
}

DEMO_PROFILE = AssigneeProfile(
    name="demo", command=PRESET_COMMANDS[Preset.DEMO], preset=Preset.DEMO
)


def worker_prompt(task: Task) -> str:
    """The instruction handed to a coding agent; the task itself is read through the board."""
    return (
        f"You are working on kanban task {task.ref}: {task.title}\n"
        f"Read the full task with `kanban context {task.ref}` (or the kanban_show MCP tool). "
        "Work only inside the current directory. Renew your lease with `kanban heartbeat` "
        "during long steps. When the work is done, run "
        '`kanban complete --summary "<what you did, for the next person>"`; if you need a '
        'human decision or credentials, run `kanban block "<what you need>"` and stop.'
    )


def render_command(template: tuple[str, ...], values: Mapping[str, str]) -> list[str]:
    """Substitute placeholders; each placeholder is one argv element, never shell text."""
    argv = []
    for part in template:
        for placeholder in PLACEHOLDERS:
            if placeholder in part:
                part = part.replace(placeholder, values.get(placeholder.strip("{}"), ""))
        argv.append(part)
    return argv
