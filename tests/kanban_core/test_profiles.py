"""profiles: the presets' commands and how the supervisor talks to each kind of agent."""

from __future__ import annotations

import pytest

from kanban_core.dispatch.door import PERMISSION_TOOL
from kanban_core.dispatch.permission_tool import SERVER_NAME
from kanban_core.profiles import PRESET_COMMANDS, AssigneeProfile, Preset


def test_claude_code_asks_the_runs_permission_tool_and_streams_json():
    argv = PRESET_COMMANDS[Preset.CLAUDE_CODE]
    tool = argv[argv.index("--permission-prompt-tool") + 1]
    # Claude names an MCP tool mcp__<server>__<tool>, the server as the supervisor's config does.
    assert tool == f"mcp__{SERVER_NAME}__{PERMISSION_TOOL}"
    assert argv[argv.index("--output-format") + 1] == "stream-json"
    assert "--verbose" in argv  # print mode refuses stream-json without it
    assert argv[argv.index("--mcp-config") + 1] == "{mcp_config}"


@pytest.mark.parametrize(
    ("preset", "protocol"),
    [
        (Preset.CLAUDE_CODE, "stream-json"),
        (Preset.CLAUDE_CODE_ACP, "acp"),
        (Preset.ACP, "acp"),
        (Preset.CODEX, "cli"),
        (Preset.GEMINI, "cli"),
        (Preset.COMMAND, "cli"),
    ],
)
def test_each_preset_names_how_the_supervisor_reads_its_agent(preset, protocol):
    profile = AssigneeProfile(name="a", command=("x",), preset=preset)
    assert profile.protocol == protocol
