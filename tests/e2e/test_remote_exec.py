"""A command asked in chat on one host runs on the host holding the workspace, and is answered.

Two ``kanban gateway`` processes, each with its own ``$KANBAN_HOME`` and enrolled host, share one
PostgreSQL board; gateway A runs the Telegram connection (the real python-telegram-bot against
the loopback fake), host B holds a workspace made there with ``kanban ws new`` in a real git
repository. ``/kanban ws diff`` and a confirmed commit sent to A run on B and come back to the
chat, as does a follow-up (the agent's turn runs on B), an unarchive (B recreates the worktree)
and a terminal's `kanban ws status` on A;
a request asked while B is stopped runs once after B's restart; a replay is refused; one running
when B is killed (kill -9) is reported interrupted after the restart and not run again; a
request for a missing host expires with a message; a revoked host is refused at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kanban_core.storage import Database, Query
from tests.e2e import test_telegram as telegram_e2e
from tests.gitrepos import GIT_ENV, git, make_repo, write
from tests.support.fake_telegram import ALICE_ID, TOKEN_ENV, FakeTelegram, Sent
from tests.support.network import until
from tests.support.processes import spawn_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
ROOT = Path(__file__).resolve().parents[2]
FAKE_AGENT = ROOT / "tests" / "support" / "fake_agent.py"
LEASE_S = 2
EXPIRY_S = 15
WAIT = 60.0


@dataclass
class Host:
    """One machine: its home, its environment, and its gateway process (when running)."""

    name: str
    home: Path
    env: dict[str, str]
    log: Path
    process: asyncio.subprocess.Process | None = None

    def kanban(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "kanban_core", *argv],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=WAIT,
            check=False,
        )

    async def start(self) -> None:
        self.process = await spawn_gateway(self.env, self.log, cwd=self.home, append=True)
        await until(lambda: "gateway ready" in self.text(), WAIT)

    async def stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await self.process.wait() == 0, self.text()
        self.process = None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


def _config(fake: FakeTelegram, name: str, tmp_path: Path, repo: Path) -> dict[str, Any]:
    """config.example.yaml as a user adapts it: Telegram on the fake, alice an operator."""
    document: dict[str, Any] = yaml.safe_load(
        (ROOT / "config.example.yaml").read_text(encoding="utf-8")
    )
    document["gateway"]["lease_seconds"] = LEASE_S
    telegram = document["platforms"]["telegram"]
    telegram.update(
        enabled=True,
        token_env=TOKEN_ENV,
        api_base_url=f"{fake.base_url}/{name}",
        poll_timeout=1,
    )
    document["access"]["users"] = {f"telegram:{ALICE_ID}": "operator"}
    agent_dir = tmp_path / f"agent-{name}"
    agent_dir.mkdir()
    document["assignees"] = {
        "fake": {
            "preset": "command",
            "command": [sys.executable, str(FAKE_AGENT), "{prompt}"],
            "workspace": "worktree",
            "env": {"FAKE_AGENT_DIR": str(agent_dir)},
            "sandbox": {"write": [str(agent_dir)]},
        }
    }
    data = tmp_path / f"data-{name}"
    data.mkdir()
    workspaces = document["workspaces"]
    workspaces.update(agent="fake", managed_root=str(data), request_expiry_seconds=EXPIRY_S)
    # A script that notes each start, then takes its time: B is killed while it runs.
    slow = (
        "import os, pathlib, time; "
        "pathlib.Path('RUNS').open('a').write(f'{os.getpid()}\\n'); time.sleep(120)"
    )
    workspaces["repos"] = {
        "api": {"path": str(repo), "scripts": {"slow": [sys.executable, "-c", slow]}}
    }
    return document


@pytest.fixture
async def hosts(
    fake: FakeTelegram, board_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, Host]]:
    (tmp_path / "src").mkdir()
    repo = make_repo(tmp_path / "src", "api")
    made = []
    for name, host_name in (("a", "build-1"), ("b", "build-2")):
        home = tmp_path / name
        home.mkdir()
        document = _config(fake, name, tmp_path, repo)
        (home / "config.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "KANBAN_HOME": str(home),
            "KANBAN_DB_URL": board_url,
            "PTB_TIMEDELTA": "1",
            TOKEN_ENV: fake.token,
            **GIT_ENV,
        }
        host = Host(host_name, home, env, tmp_path / f"{name}.log")
        enrolled = host.kanban("host", "enroll", "--name", host_name)
        assert enrolled.returncode == 0, enrolled.stderr
        made.append(host)
    a, b = made
    yield a, b
    for host in made:
        if host.process is not None and host.process.returncode is None:
            host.process.kill()
            await host.process.wait()


def _rows(url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    db = Database(url)
    try:
        with db.transaction(write=True) as tx:
            if sql.lstrip().upper().startswith("SELECT"):
                return [tuple(r) for r in tx.fetchall(Query("e2e", sql), params)]
            tx.execute(Query("e2e", sql), params)
            return []
    finally:
        db.close()


async def _said(fake: FakeTelegram, needle: str, *, after: int = 0, timeout: float = WAIT) -> Sent:  # noqa: ASYNC109
    """The first message to alice after the ``after``-th that contains ``needle``, waited for."""

    def find() -> Sent | None:
        return next((m for m in fake.sent_to(ALICE_ID)[after:] if needle in m.text), None)

    await fake.wait_for(lambda: find() is not None, timeout)
    found = find()
    assert found is not None
    return found


async def _ask(fake: FakeTelegram, text: str) -> int:
    """Send ``text`` to gateway A; the request number from its immediate answer."""
    before = len(fake.sent_to(ALICE_ID))
    await fake.push_text(text)
    reply = await _said(fake, "sent to host", after=before)
    found = re.search(r"sent to host build-2 \(request (\d+)\)", reply.text)
    assert found, reply.text
    return int(found.group(1))


async def _answer(fake: FakeTelegram, request_id: int) -> Sent:
    return await _said(fake, f"host build-2 · request {request_id} ·")


async def test_chat_commands_on_host_a_run_on_host_b_and_are_answered(
    fake: FakeTelegram, board_url: str, hosts: tuple[Host, Host]
) -> None:
    a, b = hosts
    await a.start()  # first: it takes the Telegram connection and the leader lease
    await until(lambda: "a" in fake.pollers, WAIT)
    made = b.kanban("ws", "new", "Notes", "--repo", "api")
    assert made.returncode == 0, made.stderr
    [(ws_id, worktree)] = _rows(
        board_url, "SELECT workspace_id, worktree_path FROM workspace_repos"
    )
    shown = a.kanban("ws", "show", ws_id, "--json")
    assert '"host": "build-2"' in shown.stdout, shown.stderr
    await b.start()
    write(Path(worktree) / "NOTES.md", "remote diff works\n")

    # /ws diff asked on A runs on B (its disk), and the diff comes back to the chat.
    started = time.monotonic()
    diff_id = await _ask(fake, f"/kanban ws diff --ws {ws_id}")
    diffed = await _answer(fake, diff_id)
    print(f"\ndiff on another host → reply in chat: {time.monotonic() - started:.2f} s")
    assert "remote diff works" in diffed.text or "NOTES.md" in diffed.text, diffed.text

    # A commit is a confirmation card from B; pressing Confirm (on A) is sent to B as well.
    commit_id = await _ask(fake, f'/kanban ws commit "add notes" --ws {ws_id}')
    card = await _answer(fake, commit_id)
    confirm = next(d for d in card.callback_data if d.startswith("ap:"))
    before = len(fake.sent_to(ALICE_ID))
    await fake.press(card, confirm)
    confirmed = await _said(fake, "sent to host build-2", after=before)
    approve_id = int(re.findall(r"request (\d+)", confirmed.text)[0])
    approved = await _answer(fake, approve_id)
    assert "committed" in approved.text, approved.text
    assert git(Path(worktree), "log", "-1", "--format=%s").endswith("add notes")

    # A follow-up asked on A is a turn of the agent on B (queued behind the first one, or not).
    follow_id = await _ask(fake, f'/kanban ws follow-up "write FOLLOW.md" --ws {ws_id}')
    started_turn = await _answer(fake, follow_id)
    assert "sent to the agent" in started_turn.text or "queued" in started_turn.text
    await until(lambda: (Path(worktree) / "FOLLOW.md").exists(), WAIT)

    # A terminal on A waits for B's answer and prints it.
    status = a.kanban("ws", "status", "--ws", ws_id)
    assert status.returncode == 0, status.stderr
    assert "sent to host build-2 (request" in status.stdout
    assert "FOLLOW.md" in status.stdout or "api" in status.stdout

    # ws show reads worktree health only on B; ws summary asked on A answers the board's part at
    # once and sends its changed files to B, whose status comes back to the chat.
    there = json.loads(a.kanban("ws", "show", ws_id, "--json").stdout)
    assert (there["local"], there["health"]) == (False, {"api": None})
    here = json.loads(b.kanban("ws", "show", ws_id, "--json").stdout)
    assert (here["local"], here["health"]) == (True, {"api": "ok"})
    before = len(fake.sent_to(ALICE_ID))
    summary_id = await _ask(fake, f"/kanban ws summary --ws {ws_id}")
    asked = await _said(fake, "changed files: on host build-2's disk", after=before)
    assert f"sent to host build-2 (request {summary_id})" in asked.text, asked.text
    summed = await _answer(fake, summary_id)
    assert "repo api" in summed.text, summed.text

    # Archive touches only the board: asked on A, it is done there at once. Unarchive recreates
    # removed worktrees, so it is sent to B, which recreates this one on its disk.
    await until(lambda: _open_turns(board_url, ws_id) == 0, WAIT)
    archived = a.kanban("ws", "archive", ws_id)
    assert archived.returncode == 0, archived.stderr
    assert "archived" in archived.stdout
    assert "sent to host" not in archived.stdout
    shutil.rmtree(worktree)
    unarchive_id = await _ask(fake, f"/kanban ws unarchive {ws_id}")
    unarchived = await _answer(fake, unarchive_id)
    assert f"{ws_id} unarchived" in unarchived.text, unarchived.text
    assert "recreated from branch" in unarchived.text, unarchived.text
    assert git(Path(worktree), "rev-parse", "--abbrev-ref", "HEAD").startswith("kanban/")

    # B stopped: the request waits; after B's restart it runs, once.
    await b.stop()
    write(Path(worktree) / "LATER.md", "after the restart\n")
    later_id = await _ask(fake, f"/kanban ws diff --ws {ws_id}")
    assert _rows(board_url, "SELECT state FROM exec_requests WHERE id = :id", id=later_id) == [
        ("pending",)
    ]
    await b.start()
    later = await _answer(fake, later_id)
    assert "LATER.md" in later.text or "after the restart" in later.text, later.text
    await until(lambda: len(_replies(fake, later_id)) == 1, 5)

    # A done request set back to pending is a replay: refused and audited, not run again.
    _rows(board_url, "UPDATE exec_requests SET state = 'pending' WHERE id = :id", id=diff_id)
    await until(
        lambda: (
            _rows(board_url, "SELECT state FROM exec_requests WHERE id = :id", id=diff_id)
            == [("refused",)]
        ),
        WAIT,
    )
    audit = _rows(board_url, "SELECT detail FROM audit_log WHERE outcome = 'refused'")
    assert any(f"spent by request {diff_id}" in (d or "") for (d,) in audit), audit

    # B killed (kill -9) while running a request: after its restart it is reported interrupted,
    # and not run again.
    slow_id = await _ask(fake, f"/kanban ws run slow --ws {ws_id}")
    runs = Path(worktree) / "RUNS"
    await until(lambda: runs.exists(), WAIT)
    assert b.process is not None
    b.process.kill()
    await b.process.wait()
    await b.start()
    interrupted = await _answer(fake, slow_id)
    assert f"request {slow_id} was interrupted" in interrupted.text, interrupted.text
    assert _rows(board_url, "SELECT state FROM exec_requests WHERE id = :id", id=slow_id) == [
        ("failed",)
    ]
    [pid] = runs.read_text(encoding="utf-8").split()  # it ran once
    os.kill(int(pid), signal.SIGKILL)  # the killed gateway's orphan

    # B stopped and unseen for ten minutes: the request expires unrun and the chat is told.
    await b.stop()
    _rows(
        board_url,
        "UPDATE hosts SET last_seen_ms = last_seen_ms - 600000 WHERE name = 'build-2'",
    )
    missing_id = await _ask(fake, f"/kanban ws status --ws {ws_id}")
    expired = await _said(fake, f"request {missing_id} expired unrun", timeout=EXPIRY_S + WAIT)
    assert "the host is missing" in expired.text, expired.text

    # A revoked host: refused at once, in one line, and nothing is queued.
    revoked = a.kanban("hosts", "revoke", "build-2")
    assert revoked.returncode == 0, revoked.stderr
    before = len(fake.sent_to(ALICE_ID))
    await fake.push_text(f"/kanban ws diff --ws {ws_id}")
    refused = await _said(fake, "revoked", after=before)
    assert "host 'build-2' was revoked" in refused.text
    assert _rows(board_url, "SELECT count(*) FROM exec_requests WHERE id > :id", id=missing_id) == [
        (0,)
    ]
    assert fake.token not in a.text() + b.text()


def _open_turns(url: str, ws_id: str) -> int:
    sql = (
        "SELECT count(*) FROM workspace_turns WHERE workspace_id = :ws "
        "AND status IN ('pending', 'running')"
    )
    [(count,)] = _rows(url, sql, ws=ws_id)
    return int(count)


def _replies(fake: FakeTelegram, request_id: int) -> list[Sent]:
    needle = f"host build-2 · request {request_id} ·"
    return [m for m in fake.sent_to(ALICE_ID) if needle in m.text]
