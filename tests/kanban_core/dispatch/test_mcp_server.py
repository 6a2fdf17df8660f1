"""`kanban mcp` driven as a real subprocess through the MCP SDK's own stdio client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from kanban_core import Actor, Claim, Kanban, KernelSettings, RunOutcome, TaskId, TaskStatus
from kanban_core.commands import build_parser
from tests.kanban_core.support import db_now, set_columns, snapshot

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[3]
TOOLS = {
    "kanban_show",
    "kanban_complete",
    "kanban_block",
    "kanban_heartbeat",
    "kanban_comment",
    "kanban_create",
    "kanban_link",
    "kanban_permission",
}
# Spawning the server imports the SDK and opens the board; a loaded CI box needs slack.
STARTUP_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0
OPERATOR = Actor(name="alice")
T1, T2 = TaskId(1), TaskId(2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> KernelSettings:
    """A SQLite file both this process and the server subprocess open."""
    return KernelSettings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'kanban.db'}")


@pytest.fixture
def kanban(settings: KernelSettings) -> Iterator[Kanban]:
    with Kanban.open(settings) as board:
        yield board


@pytest.fixture
def claim(kanban: Kanban) -> Claim:
    """t1 claimed for the worker (profile "coder", run r1); t2 is someone else's ready task."""
    kanban.create(OPERATOR, title="the worker's task", assignee="coder")
    kanban.create(OPERATOR, title="another task", assignee="coder")
    granted = kanban.claim(OPERATOR, T1, ttl_s=600)
    assert granted is not None
    return granted


@pytest.fixture
def server_env(settings: KernelSettings, claim: Claim) -> dict[str, str]:
    return {
        "KANBAN_HOME": str(settings.home),
        "KANBAN_DB_URL": settings.db_url,
        "KANBAN_TASK": claim.task.ref,
        "KANBAN_RUN_ID": str(claim.run_id),
        "KANBAN_RUN_TOKEN": claim.token,
        "KANBAN_TENANT": "acme",
    }


@pytest.fixture
def server_log(tmp_path: Path) -> Iterator[Path]:
    """The server's stderr; whatever a test did, no traceback may end up there."""
    path = tmp_path / "server.log"
    yield path
    if path.exists():
        assert "Traceback" not in path.read_text(encoding="utf-8")


@asynccontextmanager
async def connect(env: dict[str, str], log: Path) -> AsyncIterator[ClientSession]:
    """Spawn ``python -m kanban_core mcp`` and hand back an initialized client session."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kanban_core", "mcp"], env=env, cwd=ROOT
    )
    with log.open("a", encoding="utf-8") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            with anyio.fail_after(STARTUP_TIMEOUT):
                await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool; check the result is one JSON object, flagged as an error iff it is one."""
    with anyio.fail_after(CALL_TIMEOUT):
        result = await session.call_tool(tool, arguments)
    assert len(result.content) == 1
    text = result.content[0]
    assert text.type == "text"
    payload = json.loads(text.text)
    assert isinstance(payload, dict)
    assert result.structured_content == payload
    assert result.is_error == ("error" in payload)
    if "error" in payload:
        assert list(payload) == ["error"]
        assert isinstance(payload["error"], str)
        assert payload["error"]
        assert "\n" not in payload["error"]
    else:
        assert payload["ok"] is True
    return payload


async def test_lists_exactly_the_eight_tools(server_env, server_log):
    async with connect(server_env, server_log) as session:
        with anyio.fail_after(CALL_TIMEOUT):
            listed = await session.list_tools()

    tools = {tool.name: tool for tool in listed.tools}
    assert set(tools) == TOOLS
    required = {name: set(tool.input_schema.get("required", ())) for name, tool in tools.items()}
    assert required == {
        "kanban_show": set(),
        "kanban_complete": set(),
        "kanban_block": {"reason"},
        "kanban_heartbeat": set(),
        "kanban_comment": {"task_id", "body"},
        "kanban_create": {"title", "assignee"},
        "kanban_link": {"parent_id", "child_id"},
        "kanban_permission": {"tool_name", "input"},
    }
    for tool in tools.values():
        assert tool.description
        assert tool.input_schema["type"] == "object"
        # Claude Code's permission contract may grow fields; the board's own tools may not.
        open_schema = tool.name == "kanban_permission"
        assert tool.input_schema["additionalProperties"] is open_schema
        properties = tool.input_schema["properties"]
        # Identity comes from the environment, never from an argument.
        assert "author" not in properties
        assert required[tool.name] <= set(properties)
    assert set(tools["kanban_create"].input_schema["properties"]) == {
        "title",
        "assignee",
        "body",
        "parents",
        "tenant",
        "priority",
        "triage",
        "idempotency_key",
        "max_runtime",
        "skills",
    }
    assert tools["kanban_complete"].input_schema["properties"]["metadata"]["type"] == "object"


async def test_show_reads_own_task_by_default_and_any_task_by_id(server_env, server_log):
    async with connect(server_env, server_log) as session:
        own = await call(session, "kanban_show")
        other = await call(session, "kanban_show", task_id="t2")
        missing = await call(session, "kanban_show", task_id="t99")

    assert set(own) == {"ok", "task", "parents", "children", "comments", "events", "runs"}
    assert own["task"]["id"] == "t1"
    assert own["task"]["status"] == "running"
    assert [event["kind"] for event in own["events"]] == ["created", "claimed"]
    assert [(run["id"], run["profile"], run["status"]) for run in own["runs"]] == [
        (1, "coder", "running")
    ]
    assert other["task"]["id"] == "t2"
    assert other["runs"] == []
    assert missing == {"error": "no such task: t99"}


async def test_show_returns_only_the_last_50_events(kanban, server_env, server_log):
    for n in range(60):
        kanban.comment(OPERATOR, T1, f"note {n}")

    async with connect(server_env, server_log) as session:
        shown = await call(session, "kanban_show")

    assert len(shown["events"]) == 50
    assert shown["events"][-1]["payload"] == kanban.detail(T1).events[-1].payload
    assert len(shown["comments"]) == 60


async def test_complete_lands_the_handoff_on_the_run(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        refused = await call(session, "kanban_complete", summary="  ")
        done = await call(
            session,
            "kanban_complete",
            summary="added the endpoint; docs still to do",
            metadata={"files": 3, "tests": ["test_api.py"]},
            result="endpoint added",
        )

    assert "summary" in refused["error"]
    assert done == {"ok": True, "task_id": "t1", "status": "done"}
    task = kanban.get(T1)
    assert task.status is TaskStatus.DONE
    assert task.result == "endpoint added"
    [run] = kanban.runs(T1)
    assert run.outcome is RunOutcome.COMPLETED
    assert run.summary == "added the endpoint; docs still to do"
    assert run.metadata == {"files": 3, "tests": ["test_api.py"]}


async def test_block_needs_a_reason(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        before = snapshot(kanban)
        missing = await call(session, "kanban_block")
        blank = await call(session, "kanban_block", reason="   ")
        assert snapshot(kanban) == before
        blocked = await call(session, "kanban_block", reason="need the staging API key")

    assert "reason" in missing["error"]
    assert "reason" in blank["error"]
    assert blocked == {"ok": True, "task_id": "t1", "status": "blocked"}
    detail = kanban.detail(T1)
    assert detail.task.status is TaskStatus.BLOCKED
    assert [(c.author, c.body) for c in detail.comments] == [
        ("coder@r1", "BLOCKED: need the staging API key")
    ]
    assert detail.runs[0].outcome is RunOutcome.BLOCKED


async def test_heartbeat_extends_the_lease(kanban, server_env, server_log):
    # A lease about to run out: the heartbeat must push it a whole TTL into the future.
    now = db_now(kanban)
    set_columns(kanban, T1, lease_expires_ms=now + 1_000)

    async with connect(server_env, server_log) as session:
        beat = await call(session, "kanban_heartbeat", note="halfway through the migration")

    lease = kanban.get(T1).lease_expires_ms
    assert lease is not None
    assert lease >= now + 600_000
    assert beat == {"ok": True, "task_id": "t1", "lease_expires_at": lease // 1000}
    last = kanban.detail(T1).events[-1]
    assert (last.kind, last.payload) == ("heartbeat", {"note": "halfway through the migration"})


async def test_comment_is_signed_with_the_run_identity(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        forged = await call(session, "kanban_comment", task_id="t2", body="hi", author="alice")
        added = await call(session, "kanban_comment", task_id="t2", body="t1 needs your output")
        empty = await call(session, "kanban_comment", task_id="t2", body=" ")

    assert "author" in forged["error"]
    assert added["ok"] is True
    assert added["task_id"] == "t2"
    assert "body" in empty["error"]
    comments = kanban.detail(T2).comments
    assert [(c.id, c.author, c.body) for c in comments] == [
        (added["comment_id"], "coder@r1", "t1 needs your output")
    ]


async def test_create_and_link(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        first = await call(
            session,
            "kanban_create",
            title="write the docs",
            assignee="writer",
            body="document the endpoint",
            parents="t1",
            priority=5,
            idempotency_key="docs-for-t1",
            max_runtime="30m",
            skills=["markdown", "api"],
        )
        retry = await call(
            session,
            "kanban_create",
            title="write the docs",
            assignee="writer",
            idempotency_key="docs-for-t1",
        )
        second = await call(session, "kanban_create", title="publish", assignee="writer")
        linked = await call(session, "kanban_link", parent_id=first["task_id"], child_id="t4")
        again = await call(session, "kanban_link", parent_id="t3", child_id="t4")
        cycle = await call(session, "kanban_link", parent_id="t4", child_id="t3")
        bad_duration = await call(
            session, "kanban_create", title="x", assignee="w", max_runtime="soon"
        )

    assert first == {"ok": True, "task_id": "t3", "status": "todo", "created": True}
    assert retry == {"ok": True, "task_id": "t3", "status": "todo", "created": False}
    assert second == {"ok": True, "task_id": "t4", "status": "ready", "created": True}
    assert linked == {"ok": True, "parent_id": "t3", "child_id": "t4", "linked": True}
    assert again["linked"] is False
    assert "cycle" in cycle["error"]
    assert "duration" in bad_duration["error"]

    docs = kanban.detail(TaskId(3))
    assert docs.parents == (T1,)
    assert docs.children == (TaskId(4),)
    assert docs.task.created_by == "coder@r1"
    assert docs.task.tenant == "acme"
    assert (docs.task.assignee, docs.task.priority) == ("writer", 5)
    assert docs.task.max_runtime_s == 1800
    assert docs.task.skills == ("markdown", "api")
    assert docs.task.body == "document the endpoint"
    assert kanban.get(TaskId(4)).status is TaskStatus.TODO


async def test_another_tasks_state_is_refused(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        before = snapshot(kanban)
        refusals = [
            await call(session, "kanban_complete", task_id="t2", summary="done it for you"),
            await call(session, "kanban_block", task_id="t2", reason="not mine"),
            await call(session, "kanban_heartbeat", task_id="t2"),
        ]
        assert snapshot(kanban) == before

    for refusal in refusals:
        assert "scoped to t1" in refusal["error"]
    assert kanban.get(T2).status is TaskStatus.READY


async def test_a_stale_run_changes_nothing(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        # The operator takes the task back and a new attempt starts while this worker still runs.
        kanban.reclaim(OPERATOR, T1, "stuck")
        retry = kanban.claim(OPERATOR, T1, ttl_s=600)
        assert retry is not None
        before = snapshot(kanban)
        refusals = [
            await call(session, "kanban_complete", summary="late", metadata={"late": True}),
            await call(session, "kanban_block", reason="late"),
            await call(session, "kanban_heartbeat", note="late"),
        ]
        assert snapshot(kanban) == before

    for refusal in refusals:
        assert "r1" in refusal["error"]
    task = kanban.get(T1)
    assert (task.status, task.current_run_id) == (TaskStatus.RUNNING, retry.run_id)


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


MALFORMED: list[tuple[str, dict[str, Any], str]] = [
    ("kanban_complete", {"summary": "s", "metadata": [1, 2]}, "metadata must be a JSON object"),
    ("kanban_complete", {"summary": "s", "metadata": 5}, "metadata must be a JSON object"),
    ("kanban_complete", {"summary": "s", "metadata": "{oops"}, "not valid JSON"),
    ("kanban_complete", {"summary": "s", "metadata": "[1]"}, "must be a JSON object"),
    ("kanban_complete", {"summary": "s", "metadata": _deep(40)}, "nested too deeply"),
    ("kanban_complete", {"summary": "s", "metadata": "[" * 30_000}, "nested too deeply"),
    ("kanban_complete", {"summary": 42}, "summary must be a string"),
    ("kanban_show", {"task_id": "banana"}, "not a task id"),
    ("kanban_show", {"task_id": 1}, "task_id must be a string"),
    ("kanban_comment", {"task_id": "t-1", "body": "x"}, "not a task id"),
    ("kanban_comment", {"body": "x"}, "missing required argument(s): task_id"),
    ("kanban_link", {"parent_id": "t1", "child_id": "t1"}, "cannot depend on itself"),
    ("kanban_create", {"title": "x", "assignee": "w", "parents": [1]}, "list of strings"),
    ("kanban_create", {"title": "x", "assignee": "w", "priority": "high"}, "integer"),
    ("kanban_create", {"title": "x", "assignee": "w", "priority": True}, "integer"),
    ("kanban_create", {"title": "x", "assignee": "w", "triage": "yes"}, "true or false"),
    ("kanban_create", {"title": "x", "assignee": "bad name"}, "not a valid name"),
    ("kanban_heartbeat", {"lease": 60}, "unknown argument(s) lease"),
    ("kanban_nope", {}, "unknown tool"),
]


async def test_malformed_arguments_are_refused(kanban, server_env, server_log):
    # One server for every case: each spawn costs seconds of SDK import.
    before = snapshot(kanban)
    async with connect(server_env, server_log) as session:
        refusals = [(tool, await call(session, tool, **args)) for tool, args, _ in MALFORMED]

    for (tool, refused), (_, _, fragment) in zip(refusals, MALFORMED, strict=True):
        assert fragment in refused["error"], (tool, refused)
    assert snapshot(kanban) == before


async def test_metadata_may_arrive_json_encoded(kanban, server_env, server_log):
    async with connect(server_env, server_log) as session:
        done = await call(session, "kanban_complete", summary="s", metadata='{"files": 1}')

    assert done["status"] == "done"
    assert kanban.runs(T1)[0].metadata == {"files": 1}


async def test_a_server_without_run_credentials_acts_as_the_local_user(
    kanban, claim, settings, server_log
):
    env = {"KANBAN_HOME": str(settings.home), "KANBAN_DB_URL": settings.db_url}
    env["KANBAN_USER"] = "alice"
    kanban.create(OPERATOR, title="a third task")
    async with connect(env, server_log) as session:
        no_default = await call(session, "kanban_show")
        commented = await call(session, "kanban_comment", task_id="t3", body="looks good")
        heartbeat = await call(session, "kanban_heartbeat", task_id="t1")

    assert "task_id is required" in no_default["error"]
    assert commented["ok"] is True
    assert kanban.detail(TaskId(3)).comments[0].author == "alice"
    assert "run credentials" in heartbeat["error"]


def test_incomplete_worker_credentials_refuse_to_start(settings):
    env = {"KANBAN_HOME": str(settings.home), "KANBAN_TASK": "t1", "KANBAN_RUN_ID": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "kanban_core", "mcp"],
        env={"PATH": os.environ.get("PATH", "")} | env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )

    assert done.returncode == 1
    assert "credentials are incomplete" in done.stderr
    assert done.stdout == ""


def test_an_unexpected_failure_is_logged_not_shown(kanban, claim, monkeypatch, caplog):
    from kanban_core.dispatch.mcp_server import BoardTools

    def broken(task_id: TaskId, **options: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(kanban, "detail", broken)
    tools = BoardTools(kanban, Actor(name="coder", run=claim.proof), {})

    assert tools.call("kanban_show", {}) == {"error": "internal error: RuntimeError"}
    [record] = caplog.records
    assert record.exc_info is not None
    assert "secret internals" in str(record.exc_info[1])


def test_the_mcp_verb_is_local_only():
    assert "mcp" in build_parser().verb_parsers
    assert "mcp" not in build_parser(local_verbs=False).verb_parsers


def test_other_verbs_never_import_the_sdk(settings, kanban):
    probe = (
        "import sys\n"
        "from kanban_core.cli import main\n"
        "code = main(['list'])\n"
        "sys.exit(code or (3 if any(m == 'mcp' or m.startswith('mcp.') for m in sys.modules) "
        "else 0))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={
            "PATH": os.environ.get("PATH", ""),
            "KANBAN_HOME": str(settings.home),
            "KANBAN_DB_URL": settings.db_url,  # the board the kanban fixture made
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
        check=False,
    )

    assert done.returncode == 0, done.stderr
