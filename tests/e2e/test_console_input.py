"""The console gateway process with awkward input: restarts, bytes that are not UTF-8, a 1 MB
line, and its first words (greeting, ``help``, a clean stdout).

Each test runs ``python -m gateway.cli gateway`` (the console) as in test_gateway_console, types
on its stdin and reads its stdout; waits are on lines or board rows, with timeouts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kanban_core import Kanban, KernelSettings
from kanban_core.board.audit import AuditEntry
from tests.conftest import PG_URL, create_pg_database, drop_pg_database
from tests.e2e.test_gateway_console import GatewayProcess, gateway_env
from tests.gateway.support import wait_until
from tests.gitrepos import GIT_ENV, make_repo
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FAKE_AGENT = ROOT / "tests" / "support" / "fake_agent.py"
R = "\ufffd"
#: A turn is two Python processes (supervisor, agent) plus `kanban complete`: seconds, not ms.
TURN_S = 90.0


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """The board the gateway serves: the default SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{home / 'kanban.db'}"
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL (set KANBAN_TEST_PG_URL)")
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def start(home: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start console gateways on this home (``env`` replaces variables); killed at the end."""
    started: list[GatewayProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> GatewayProcess:
        gateway = GatewayProcess(home, gateway_env(home) | GIT_ENV | (env or {}), args)
        started.append(gateway)
        return gateway

    yield factory
    for gateway in started:
        gateway.kill()


def console_audit(url: str, home: Path) -> list[AuditEntry]:
    with Kanban.open(KernelSettings(home=home, db_url=url)) as board:
        entries = board.audit_log(limit=100)
    return [e for e in reversed(entries) if e.platform == "console"]


# -- delivery ids are unique across restarts ----------------------------------------------------


def workspace_config(home: Path, tmp_path: Path) -> dict[str, Any]:
    """config.example.yaml as a user would adapt it: the fake agent, one repository ``web``."""
    document: dict[str, Any] = yaml.safe_load(
        (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    )
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    (tmp_path / "src").mkdir()
    web = make_repo(tmp_path / "src", "web", message="start web")
    document["assignees"] = {
        "fake": {
            "preset": "command",
            "command": [sys.executable, str(FAKE_AGENT), "{prompt}"],
            "workspace": "worktree",
            "env": {"FAKE_AGENT_DIR": str(agent_dir)},
            # The agent records what it got outside its workspace: the jail must let it write there.
            "sandbox": {"write": [str(agent_dir)]},
        }
    }
    workspaces = document["workspaces"]
    workspaces.update(agent="fake", managed_root=str(tmp_path / "data"))
    workspaces["repos"] = {"web": {"path": str(web)}}
    (tmp_path / "data").mkdir()
    (home / "config.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    return document


def agent_messages(tmp_path: Path) -> list[str]:
    log = tmp_path / "agent" / "calls.jsonl"
    if not log.exists():
        return []
    import json

    return [json.loads(line)["message"] for line in log.read_text(encoding="utf-8").splitlines()]


def turn_reply(line: str) -> bool:
    return "already received" in line or line.startswith(("sent to the agent", "queued"))


def test_workspaces_and_follow_ups_after_a_restart_are_new(start, home, tmp_path):
    workspace_config(home, tmp_path)

    first = start()
    first.type('/ws new "Before restart" --repo web')
    made = first.out.wait_for(lambda line: "— Before restart" in line, timeout=TURN_S)
    assert made.startswith("Created ws-"), made
    first.type("/follow-up before one")
    assert "already" not in first.out.wait_for(turn_reply, timeout=TURN_S)
    first.type("> before two")
    assert "already" not in first.out.wait_for(turn_reply, timeout=TURN_S)
    wait_for(
        lambda: {"before one", "before two"} <= set(agent_messages(tmp_path)),
        TURN_S,
        "the agent to get both follow-ups",
    )
    code, err = first.terminate()
    assert code == 0, err

    # The same lines, in the same order, from a new process: nothing may be taken for a repeat.
    second = start()
    second.type('/ws new "After restart" --repo web')
    made = second.out.wait_for(lambda line: "restart" in line and "ws-" in line, timeout=TURN_S)
    assert made.startswith("Created ws-"), made
    assert made.endswith("— After restart"), made
    second.type("/follow-up after one")
    assert "already" not in second.out.wait_for(turn_reply, timeout=TURN_S)
    second.type("> after two")
    assert "already" not in second.out.wait_for(turn_reply, timeout=TURN_S)
    wait_for(
        lambda: {"after one", "after two"} <= set(agent_messages(tmp_path)),
        TURN_S,
        "the agent to get the follow-ups sent after the restart",
    )
    code, err = second.terminate()
    assert code == 0, err


# -- bytes that are not UTF-8, NUL ----------------------------------------------------------------


def locale_env(locale: str, db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIO"))}
    env.pop("PYTHONUTF8", None)
    return env | {"LC_ALL": locale, "KANBAN_DB_URL": db_url}


@pytest.mark.parametrize(
    "locale",
    [
        pytest.param("C.UTF-8", id="strict-utf8"),  # stdin decoding raised: the reader died
        pytest.param("C", id="c-locale"),  # surrogateescape: the audit insert raised
    ],
)
def test_bad_bytes_are_answered_audited_and_the_console_goes_on(start, home, db_url, locale):
    gateway = start(env=locale_env(locale, db_url) | {"KANBAN_HOME": str(home)})
    gateway.type(b"list \xff\xfe caf\xe9")
    assert "unrecognized arguments" in gateway.out.wait_for(lambda line: "usage error" in line)
    gateway.type(b"show t1 \x00")
    gateway.out.wait_for(lambda line: "⚠" in line)
    gateway.type(b"> \xff")  # no workspace: the console says so
    gateway.out.wait_for(lambda line: "no workspace is bound" in line)
    gateway.type("list")
    gateway.out.wait_for(lambda line: line == "(no matching tasks)")
    code, err = gateway.terminate()
    assert code == 0, err
    assert "Traceback" not in err

    texts = [e.text for e in console_audit(db_url, home)]
    assert texts == [f"list {R}{R} caf{R}", f"show t1 {R}", "list"]


# -- a 1 MB line -----------------------------------------------------------------------------------


def test_a_megabyte_line_is_refused_at_once_and_the_console_goes_on(start, home):
    gateway = start()
    gateway.type('create "' + "x" * 1_000_000 + '"')
    gateway.type("list")
    # Splitting it used to take 13-51 s on the event loop; now it is refused before splitting.
    refused = gateway.out.wait_for(lambda line: "too long" in line, timeout=10)
    assert refused.startswith("⚠ the command is too long (1,000,009 characters"), refused
    assert "the limit is 16,384" in refused
    gateway.out.wait_for(lambda line: line == "(no matching tasks)", timeout=10)
    code, err = gateway.terminate()
    assert code == 0, err


# -- first words -----------------------------------------------------------------------------------


def test_the_greeting_is_accurate_help_works_and_stdout_is_only_chat(start, home):
    gateway = start()
    assert "`help`" in gateway.out.seen[0]
    gateway.out.wait_for(lambda line: line.strip().startswith("> text"))  # follow-ups explained

    gateway.type("help")
    gateway.out.wait_for(lambda line: line.strip().startswith("create") and "a task" in line)
    gateway.type("help create")
    gateway.out.wait_for(lambda line: line.startswith("usage: /kanban create"))
    gateway.type("> hello")
    gateway.out.wait_for(lambda line: "no workspace is bound" in line)
    code, err = gateway.terminate()
    assert code == 0, err

    stdout = "\n".join(gateway.out.seen)
    assert "usage error" not in stdout
    assert " INFO " not in stdout
    # Logs go to stderr, and in console mode only warnings and errors unless --log-level says so.
    assert " INFO " not in err, err
    assert "alembic" not in err, err


def test_log_level_info_brings_the_info_lines_back_on_stderr(start, home):
    gateway = start("--log-level", "INFO")
    code, err = gateway.terminate()
    assert code == 0, err
    assert "gateway ready" in err
    assert " INFO gateway.app: shutdown complete" in err
    assert all(" INFO " not in line for line in gateway.out.seen)


# -- the reader survives whatever the gateway does with a line -----------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_a_line_the_gateway_fails_on_does_not_end_the_reader():
    """In process, over a real pipe: the sink raises on the first line and answers the next."""
    import io

    from adapters.console import ConsoleAdapter
    from gateway import Document, IncomingMessage

    read_fd, write_fd = os.pipe()
    stdout = io.StringIO()
    seen: list[IncomingMessage] = []

    async def sink(message: IncomingMessage) -> Document | None:
        seen.append(message)
        if len(seen) == 1:
            raise RuntimeError("boom")
        return Document.text(f"echo {message.text}")

    with os.fdopen(read_fd, encoding="utf-8") as stdin:
        console = ConsoleAdapter(stdin=stdin, stdout=stdout)
        await console.start(sink)
        os.write(write_fd, b"first\nsecond \xff\n")
        os.close(write_fd)
        await wait_until(lambda: "echo second" in stdout.getvalue(), "the second reply")
        await console.stop()

    out = stdout.getvalue()
    assert "⚠ internal error" in out
    assert f"echo second {R}" in out
    assert [m.delivery_id.rsplit("-", 1)[1] for m in seen] == ["1", "2"]
    assert len({m.delivery_id.rsplit("-", 1)[0] for m in seen}) == 1
    assert ConsoleAdapter()._run != console._run  # a new process numbers under a new prefix
