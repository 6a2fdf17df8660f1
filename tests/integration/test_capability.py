"""The run's capability: the ``kanban`` CLI and ``kanban mcp`` of an agent, with no database.

A real RunDoor serves a real board from this process; the CLI and the MCP server run as
subprocesses whose environment holds only the capability (socket and run credentials), as an
agent's does, and a HOME with no board in it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from kanban_core import (
    Actor,
    Claim,
    Kanban,
    KernelSettings,
    PermissionDecision,
    TaskId,
    TaskStatus,
)
from kanban_core.board.domain import RunProof
from kanban_core.commands.capability import RunCredentials, RunDoor
from kanban_core.dispatch.door import SOCKET_ENV
from kanban_core.dispatch.permission_tool import PermissionGate
from kanban_core.permission_policy import DEFAULT_POLICY
from tests.kanban_core.support import snapshot
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

OPERATOR = Actor(name="alice")
T1, T2 = TaskId(1), TaskId(2)
TIMEOUT = 60


@pytest.fixture
def settings(tmp_path: Path) -> KernelSettings:
    return KernelSettings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'kanban.db'}")


@pytest.fixture
def board(settings: KernelSettings) -> Iterator[Kanban]:
    with Kanban.open(settings) as opened:
        yield opened


@pytest.fixture
def claims(board: Kanban) -> tuple[Claim, Claim]:
    """t1 claimed by our worker (run r1), t2 claimed by another worker (run r2)."""
    board.create(OPERATOR, title="the worker's task", assignee="coder")
    board.create(OPERATOR, title="another worker's task", assignee="coder")
    mine, theirs = board.claim(OPERATOR, T1, ttl_s=600), board.claim(OPERATOR, T2, ttl_s=600)
    assert mine is not None
    assert theirs is not None
    return mine, theirs


@pytest.fixture
def door(settings: KernelSettings, claims: tuple[Claim, Claim]) -> Iterator[Path]:
    """Run r1's capability, served like its supervisor serves it; yields the socket path."""
    mine, _ = claims
    private = Path(tempfile.mkdtemp(prefix="kanban-test-"))
    errors: list[str] = []
    served = RunDoor(
        RunProof(T1, mine.run_id, mine.token),
        "coder",
        lambda: Kanban.open(settings),
        on_error=errors.append,
    )
    path = served.start(private)
    yield path
    served.close()
    shutil.rmtree(private, ignore_errors=True)
    assert errors == []


@pytest.fixture
def agent_env(tmp_path: Path, door: Path, claims: tuple[Claim, Claim]) -> dict[str, str]:
    """An agent's environment: the capability, nothing that names the database."""
    mine, _ = claims
    home = tmp_path / "agent-home"
    home.mkdir()
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        SOCKET_ENV: str(door),
        "KANBAN_TASK": "t1",
        "KANBAN_RUN_ID": str(mine.run_id),
        "KANBAN_RUN_TOKEN": mine.token,
    }


def kanban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kanban_core", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )


def test_the_cli_of_a_run_reads_and_completes_its_own_task_through_the_capability(
    board: Kanban, agent_env: dict[str, str], tmp_path: Path
):
    shown = kanban(agent_env, "show", "t1", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["task"]["title"] == "the worker's task"
    assert kanban(agent_env, "context").returncode == 0
    beat = kanban(agent_env, "heartbeat", "--note", "half way")
    assert beat.returncode == 0, beat.stderr
    note = kanban(agent_env, "comment", "t2", "a note for my sibling")
    assert note.returncode == 0, note.stderr
    (comment,) = board.detail(T2).comments
    assert comment.author != "alice"  # the run's identity, not a name the agent chose
    assert "r1" in comment.author

    done = kanban(agent_env, "complete", "--summary", "did it")
    assert done.returncode == 0, done.stderr
    assert board.get(T1).status is TaskStatus.DONE
    # Nothing was created where the agent's HOME would put a default board.
    assert list((tmp_path / "agent-home").iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ("complete", "t2", "--summary", "not mine"),
        ("block", "t2", "stop"),
        ("heartbeat", "t2"),
        ("archive", "t2"),
        ("unblock", "t2"),
        ("reclaim", "t2"),
        ("edit", "t2", "--title", "mine now"),
        ("assign", "t2", "evil"),
        ("claim", "--next"),
        ("dispatch",),
        ("list",),
        ("log", "t2"),
        ("create", "escape", "--assignee", "coder", "--workspace", "dir:/home"),
        ("create", "escape", "--assignee", "coder", "--workspace=dir:/home"),
        ("create", "escape", "--assignee", "coder", "--repo", "/srv/secret-repo"),
        ("--db", "sqlite:////tmp/other.db", "list"),
        ("worker",),
        ("gateway",),
        (),
    ],
)
def test_the_cli_of_a_run_is_refused_everything_but_its_own_task(
    board: Kanban, agent_env: dict[str, str], args: tuple[str, ...]
):
    before = snapshot(board)

    refused = kanban(agent_env, *args)

    assert refused.returncode != 0, refused.stdout
    assert refused.stderr.startswith("kanban: "), refused.stderr
    assert snapshot(board) == before


def test_another_runs_token_or_a_missing_one_opens_nothing(
    board: Kanban, agent_env: dict[str, str], claims: tuple[Claim, Claim]
):
    _, theirs = claims
    before = snapshot(board)

    borrowed = kanban(
        agent_env | {"KANBAN_RUN_ID": str(theirs.run_id), "KANBAN_RUN_TOKEN": theirs.token},
        "complete",
        "t2",
        "--summary",
        "with their token",
    )
    forged = kanban(agent_env | {"KANBAN_RUN_TOKEN": "x" * 43}, "complete", "--summary", "x")
    bare = {k: v for k, v in agent_env.items() if k != "KANBAN_RUN_TOKEN"}
    missing = kanban(bare, "complete", "--summary", "no token")

    assert borrowed.returncode == 1
    assert "belongs to another run" in borrowed.stderr
    assert forged.returncode == 1
    assert "belongs to another run" in forged.stderr
    assert missing.returncode == 1
    assert "incomplete" in missing.stderr
    assert snapshot(board) == before


def test_garbage_on_the_socket_is_answered_with_an_error_and_the_door_stays_open(
    board: Kanban, agent_env: dict[str, str], door: Path
):
    for garbage in (b"not json\n", b"[1, 2]\n", b'{"run_id": 1}\n', b"\xff\xfe\n"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(str(door))
            sock.sendall(garbage)
            sock.shutdown(socket.SHUT_WR)
            reply = json.loads(sock.makefile("rb").readline())
        assert list(reply) == ["error"], reply

    assert kanban(agent_env, "show", "t1").returncode == 0


# -- kanban mcp inside a run -------------------------------------------------------------------


@asynccontextmanager
async def mcp_session(env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kanban_core", "mcp"], env=env
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        with anyio.fail_after(TIMEOUT):
            await session.initialize()
        yield session


async def _tool(session: ClientSession, name: str, **arguments: Any) -> dict[str, Any]:
    with anyio.fail_after(TIMEOUT):
        result = await session.call_tool(name, arguments)
    payload: dict[str, Any] = json.loads(result.content[0].text)  # type: ignore[union-attr]
    return payload


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_kanban_mcp_in_a_run_serves_the_tools_through_the_capability(
    board: Kanban, agent_env: dict[str, str], anyio_backend: str
):
    del anyio_backend
    async with mcp_session(agent_env) as session:
        shown = await _tool(session, "kanban_show")
        other = await _tool(session, "kanban_complete", task_id="t2", summary="not mine")
        done = await _tool(session, "kanban_complete", summary="done over MCP")

    assert shown["task"]["title"] == "the worker's task"
    assert "error" in other
    assert done == {"ok": True, "task_id": "t1", "status": "done"}
    assert board.get(T2).status is TaskStatus.RUNNING
    assert board.get(T1).status is TaskStatus.DONE


# -- permission requests: served beside everything else ---------------------------------------


@pytest.fixture
def gated(
    settings: KernelSettings, claims: tuple[Claim, Claim], tmp_path: Path
) -> Iterator[tuple[RunDoor, dict[str, str]]]:
    """Run r1's door answering permission requests by the default policy; and its agent's env."""
    mine, _ = claims
    private = Path(tempfile.mkdtemp(prefix="kanban-test-"))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    served = RunDoor(
        RunProof(T1, mine.run_id, mine.token),
        "coder",
        lambda: Kanban.open(settings),
        permissions=PermissionGate(DEFAULT_POLICY, workspace, ttl_s=600),
    )
    path = served.start(private)
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(tmp_path),
        SOCKET_ENV: str(path),
        "KANBAN_TASK": "t1",
        "KANBAN_RUN_ID": str(mine.run_id),
        "KANBAN_RUN_TOKEN": mine.token,
    }
    yield served, env
    served.close()
    shutil.rmtree(private, ignore_errors=True)


def _ask_in_thread(env: dict[str, str], command: str) -> tuple[threading.Thread, list[Any]]:
    replies: list[Any] = []
    request = {
        "tool": "kanban_permission",
        "arguments": {"tool_name": "Bash", "input": {"command": command}, "tool_use_id": "t"},
    }
    asking = threading.Thread(
        target=lambda: replies.append(RunCredentials(env).call(request)["payload"])
    )
    asking.start()
    return asking, replies


def test_a_waiting_permission_request_holds_up_no_heartbeat_comment_or_verdict(
    board: Kanban, gated: tuple[RunDoor, dict[str, str]]
):
    _, env = gated
    asking, replies = _ask_in_thread(env, "make deploy")
    (request,) = wait_for(lambda: board.open_permissions(T1), TIMEOUT, "the request")

    # All through the same door while the request waits for a person.
    beat = kanban(env, "heartbeat", "--note", "still here")
    note = kanban(env, "comment", "t1", "waiting on a person")
    assert (beat.returncode, note.returncode) == (0, 0), beat.stderr + note.stderr
    assert replies == []
    assert asking.is_alive()

    board.answer_permission(OPERATOR, request.ref, PermissionDecision.ALLOW_ONCE)
    asking.join(TIMEOUT)
    assert replies == [{"behavior": "allow", "updatedInput": {"command": "make deploy"}}]
    done = kanban(env, "complete", "--summary", "deployed")
    assert done.returncode == 0, done.stderr
    assert board.get(T1).status is TaskStatus.DONE


def test_closing_the_door_withdraws_a_waiting_request_as_a_denial(
    board: Kanban, gated: tuple[RunDoor, dict[str, str]]
):
    door, env = gated
    asking, replies = _ask_in_thread(env, "sleep 1000")
    wait_for(lambda: board.open_permissions(T1), TIMEOUT, "the request")

    door.close()
    asking.join(TIMEOUT)

    assert replies == [
        {"behavior": "deny", "message": "the run is stopping; the request was withdrawn"}
    ]


def test_the_policy_answers_at_once_and_bad_requests_are_denied_not_crashed(
    board: Kanban, gated: tuple[RunDoor, dict[str, str]]
):
    _, env = gated

    def ask(arguments: Any) -> Any:
        request = {"tool": "kanban_permission", "arguments": arguments}
        return RunCredentials(env).call(request)["payload"]

    inside = ask({"tool_name": "Write", "input": {"file_path": "a.txt", "content": "x"}})
    outside = ask({"tool_name": "Read", "input": {"file_path": "/etc/shadow"}})
    no_tool = ask({"input": {}})
    bad_input = ask({"tool_name": "Bash", "input": "rm -rf /"})

    assert inside == {"behavior": "allow", "updatedInput": {"file_path": "a.txt", "content": "x"}}
    assert outside["behavior"] == "deny"
    assert "outside the workspace" in outside["message"]
    assert no_tool["behavior"] == "deny"
    assert bad_input == {
        "behavior": "deny",
        "message": "the tool's input is not a JSON object; nothing was allowed",
    }
    assert board.open_permissions() == []
