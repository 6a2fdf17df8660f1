"""Our ACP client against the real Claude Code ACP adapter (npm), without network or credentials.

``.ci/run`` installs ``@zed-industries/claude-code-acp`` and names it in
``KANBAN_TEST_CLAUDE_ACP``. The adapter runs in bubblewrap with no network at all: it answers
``initialize`` and ``session/new``, and refuses the prompt for want of a login, which must reach
us as a session error, not a hang or a crash.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kanban_core.dispatch.acp_session import AgentAsk, Answer, SessionSpec, Verdict, run_session

pytestmark = pytest.mark.integration

ADAPTER = os.environ.get("KANBAN_TEST_CLAUDE_ACP", "")


class DenyAll:
    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        del ask, cancelled
        return Answer(Verdict.DENY)


@pytest.mark.skipif(
    not ADAPTER and not os.environ.get("CI"),
    reason="KANBAN_TEST_CLAUDE_ACP is not set (.ci/run installs the adapter)",
)
def test_the_real_claude_code_adapter_speaks_our_handshake_and_stops_at_its_login(tmp_path: Path):
    assert ADAPTER, ".ci/run must install the adapter and set KANBAN_TEST_CLAUDE_ACP"
    home = tmp_path / "home"
    home.mkdir()
    jail = ["bwrap", "--unshare-net", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    jail += ["--bind", str(tmp_path), str(tmp_path), "--", ADAPTER]
    agent = subprocess.Popen(
        jail,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(home)},
    )
    assert agent.stdin is not None
    assert agent.stdout is not None
    lines: list[str] = []
    spec = SessionSpec(
        cwd=str(tmp_path),
        prompt="say hello",
        mcp_command=sys.executable,
        mcp_args=("-m", "kanban_core", "mcp"),
        mcp_env={},
    )
    try:
        result = run_session(
            spec, agent.stdin, agent.stdout, DenyAll(), lines.append, threading.Event()
        )
    finally:
        agent.kill()
        agent.wait()
    assert result.stop_reason is None
    assert result.error is not None
    assert "authentication" in result.error.lower()
