"""The workspace parity harness: the real gateway, chatting over the real python-telegram-bot.

``ChatGateway`` runs ``gateway.app.Gateway`` in this event loop with a config.yaml that enables
the Telegram adapter against :class:`~tests.support.fake_telegram.FakeTelegram`, the real
dispatcher and worker supervisors, and an assignee whose command is the fake agent
(``tests/support/fake_agent.py``). Repositories are real git checkouts with bare remotes; pull
requests go to :class:`FakeGitHub`, a REST fake on 127.0.0.1. Nothing leaves the machine.

Every wait is on a condition with a deadline: a reply to a given message, a notification, a
file the fake agent writes, or a row in the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from gateway.app import Gateway
from kanban_core import Kanban, KernelSettings
from kanban_core.workspaces.interactive import approvals, store
from kanban_core.workspaces.interactive.records import Session, Turn, Workspace
from tests.gitrepos import GIT_ENV, bare_origin, git, make_repo
from tests.support.fake_telegram import ALICE, ALICE_ID, TOKEN, FakeTelegram, Sent
from tests.support.processes import host_pid

T = TypeVar("T")

FAKE_AGENT = Path(__file__).resolve().parents[1] / "support" / "fake_agent.py"

TELEGRAM_TOKEN_ENV = "KANBAN_TEST_TELEGRAM_TOKEN"  # noqa: S105 - a variable name
GITHUB_TOKEN_ENV = "KANBAN_TEST_GITHUB_TOKEN"  # noqa: S105 - a variable name
GITHUB_TOKEN = "ghp_fake_test_token_000"  # noqa: S105 - the fake's own
#: The group chat the workspace is bound to, and one that never is.
CHAT = -1_000_777
OTHER_CHAT = -1_000_888
BOB = {"id": 7, "is_bot": False, "first_name": "Bob", "username": "bob"}
CAROL = {"id": 8, "is_bot": False, "first_name": "Carol", "username": "carol"}
MALLORY = {"id": 9, "is_bot": False, "first_name": "Mallory", "username": "mallory"}
ROLES = {
    f"telegram:{ALICE_ID}": "operator",
    f"telegram:{BOB['id']}": "approver",
    f"telegram:{CAROL['id']}": "viewer",
}
#: A turn is two Python processes (supervisor, agent) plus `kanban complete`: seconds, not ms.
TURN_S = 60.0
REPLY_S = 30.0


# -- git -----------------------------------------------------------------------------------------


def source_state(repo: Path) -> str:
    """What must not change in a person's own checkout: status, HEAD, stashes, branches."""
    return "\n".join(
        (
            git(repo, "status", "--porcelain=v2", "--untracked-files=all"),
            git(repo, "rev-parse", "HEAD"),
            git(repo, "stash", "list"),
            # The workspace branch lives in the same ref store; the user's branch must not move.
            git(repo, "rev-parse", "refs/heads/main"),
            git(repo, "worktree", "list", "--porcelain").split("\n\n")[0],
        )
    )


@dataclass
class Project:
    """Checkouts ``api`` and ``web`` (each with a bare origin), a home and a managed root."""

    tmp: Path
    home: Path
    data: Path
    src: Path
    agent_dir: Path
    repos: dict[str, Path] = field(default_factory=dict)
    remotes: dict[str, Path] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        """The managed root the gateway resolves from ``workspaces.managed_root``."""
        return self.data / ".kanban-workspaces"

    @classmethod
    def make(cls, tmp: Path, names: tuple[str, ...] = ("api", "web")) -> Project:
        home, data, src, agent_dir = (tmp / n for n in ("home", "data", "src", "agent"))
        for path in (home, data, src, agent_dir):
            path.mkdir()
        project = cls(tmp, home, data, src, agent_dir)
        for name in names:
            repo = make_repo(src, name, message=f"start {name}")
            project.repos[name] = repo
            project.remotes[name] = bare_origin(repo, tmp / "remotes" / f"{name}.git")
        return project

    def calls(self) -> list[dict[str, Any]]:
        """Every call the fake agent logged, oldest first."""
        log = self.agent_dir / "calls.jsonl"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]

    def release(self, name: str) -> None:
        """Let a fake agent blocked on ``wait <name>`` go on."""
        (self.agent_dir / f"release-{name}").write_text("go", encoding="utf-8")

    def waiting_pid(self, name: str) -> int | None:
        """The pid of the fake agent blocked on ``wait <name>``, once it is there."""
        path = self.agent_dir / f"waiting-{name}"
        if not path.exists():
            return None
        # The agent noted its pid inside its sandbox's own pid namespace (an empty file: it
        # is writing it right now).
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            return None
        noted = int(text)
        return host_pid(noted, f"FAKE_AGENT_DIR={self.agent_dir}", f"wait {name}")


def write_config(
    project: Project,
    *,
    telegram_url: str,
    github_url: str,
    lease_ttl_s: int = 30,
    approvals_cfg: dict[str, Any] | None = None,
) -> Path:
    """config.yaml in the project's home: telegram on the fake, the fake agent, both repos."""
    document = {
        "dispatcher": {
            "dispatch_interval_seconds": 1,
            "lease_ttl_seconds": lease_ttl_s,
            "terminate_grace_seconds": 2,
            "backoff_base_seconds": 1,
            "backoff_cap_seconds": 2,
        },
        "assignees": {
            "fake": {
                "preset": "command",
                # By path, not ``-m``: ``-m`` would import from the agent's cwd, where it may
                # just have written a tests.py.
                "command": [sys.executable, str(FAKE_AGENT), "{prompt}"],
                "workspace": "worktree",
                "env": {"FAKE_AGENT_DIR": str(project.agent_dir)},
                "sandbox": {"write": [str(project.agent_dir)]},
            }
        },
        "workspaces": {
            "managed_root": str(project.data),
            "agent": "fake",
            "approvals": approvals_cfg or {"ttl_seconds": 900},
            "github": {"use": "rest", "api_base": github_url, "token_env": GITHUB_TOKEN_ENV},
            "repos": {
                name: {"path": str(path), "github_repo": f"acme/{name}"}
                for name, path in project.repos.items()
            },
        },
        "gateway": {"notify_poll_ms": 50, "notify_backoff_base_seconds": 1},
        "platforms": {
            "telegram": {
                "enabled": True,
                "token_env": TELEGRAM_TOKEN_ENV,
                "api_base_url": telegram_url,
                "poll_timeout": 1,
            }
        },
        "access": {"users": ROLES},
    }
    path = project.home / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


# -- a fake GitHub REST API ----------------------------------------------------------------------


@dataclass
class FakeGitHub:
    """``GET /rate_limit`` and ``/repos/{owner}/{repo}/pulls`` on 127.0.0.1, token-checked."""

    token: str = GITHUB_TOKEN
    pulls: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/rate_limit", self._rate_limit)
        app.router.add_post("/repos/{owner}/{repo}/pulls", self._create)
        app.router.add_get("/repos/{owner}/{repo}/pulls", self._list)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _authorized(self, request: web.Request) -> bool:
        self.requests.append((request.method, request.path))
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _rate_limit(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Bad credentials"}, status=401)
        return web.json_response({"resources": {"core": {"remaining": 5000}}})

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Bad credentials"}, status=401)
        body = await request.json()
        owner, repo = request.match_info["owner"], request.match_info["repo"]
        number = len(self.pulls) + 1
        pull = {
            "number": number,
            "html_url": f"https://github.com/{owner}/{repo}/pull/{number}",
            "state": "open",
            "merged_at": None,
            "head": {"ref": body["head"]},
            "base": {"ref": body["base"]},
            "title": body["title"],
            "body": body["body"],
            "draft": body["draft"],
            "repo": f"{owner}/{repo}",
        }
        self.pulls.append(pull)
        return web.json_response(pull, status=201)

    async def _list(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"message": "Bad credentials"}, status=401)
        head = request.query.get("head", "").partition(":")[2]
        repo = f"{request.match_info['owner']}/{request.match_info['repo']}"
        found = [p for p in self.pulls if p["repo"] == repo and p["head"]["ref"] == head]
        return web.json_response(found)


# -- the gateway, driven from chat ---------------------------------------------------------------


class ChatGateway:
    """The real gateway in this event loop; the test speaks through the fake Telegram."""

    def __init__(self, project: Project, telegram: FakeTelegram, settings: KernelSettings) -> None:
        self.project = project
        self.telegram = telegram
        self.settings = settings
        self.environ = {
            **os.environ,
            **GIT_ENV,
            "KANBAN_HOME": str(project.home),
            "KANBAN_DB_URL": settings.db_url,
            TELEGRAM_TOKEN_ENV: TOKEN,
            GITHUB_TOKEN_ENV: GITHUB_TOKEN,
        }
        self.environ.pop("KANBAN_CONFIG", None)
        self._gateway: Gateway | None = None
        self._task: asyncio.Task[int] | None = None
        #: Every gateway started: their spawners hold the supervisors until they are reaped.
        self._started: list[Gateway] = []
        self.board = Kanban.open(settings)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the gateway and wait until the adapter polls (it then answers everything)."""
        polls = len(self.telegram.calls_of("getUpdates"))
        self._gateway = Gateway(self.settings, self.environ)
        self._started.append(self._gateway)
        self._task = asyncio.create_task(self._gateway.run(), name="gateway")
        await self.telegram.wait_for(
            lambda: len(self.telegram.calls_of("getUpdates")) > polls or self._task_died(),
            REPLY_S,
        )
        if self._task_died():
            await self._task  # raises what stopped it

    def _task_died(self) -> bool:
        return self._task is not None and self._task.done()

    async def stop(self) -> None:
        """SIGTERM-equivalent: drain and stop (worker supervisors keep running)."""
        if self._gateway is None or self._task is None:
            return
        self._gateway.stop.set()
        try:
            assert await asyncio.wait_for(self._task, 30) == 0
        finally:
            self._gateway, self._task = None, None

    async def restart(self) -> None:
        """Stop the gateway and start a new one on the same board and chat."""
        await self.stop()
        await self.start()

    async def close(self) -> None:
        """Let every agent finish, stop the gateway, reap the supervisors, close the board."""
        try:
            for path in self.project.agent_dir.iterdir():
                if path.name.startswith("waiting-"):
                    self.project.release(path.name.removeprefix("waiting-"))
            with contextlib.suppress(AssertionError):
                await self.until(self._workers_done, timeout=20, what="the supervisors to exit")
            await self.stop()
        finally:
            self.kill_workers()
            self.board.close()

    def workers_done(self) -> bool:
        """Whether every supervisor this test's gateways started has exited."""
        return self._workers_done()

    def _workers_done(self) -> bool:
        return all(gateway.spawner.running() == 0 for gateway in self._started)

    def kill_workers(self) -> None:
        """SIGKILL whatever this test started that still runs (by recorded pid), then reap."""
        agents = {int(call["pid"]) for call in self.project.calls()}
        pids = {pid for pid in agents if _is_fake_agent(pid)}
        pids |= {pid for g in self._started for pid in g.spawner.live_pids()}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for gateway in self._started:
            gateway.spawner.wait_all(timeout=10)

    def supervisor_pids(self) -> list[int]:
        """The worker supervisors' pids, from the board's runs."""
        from kanban_core.storage import Query

        query = Query("test_worker_pids", "SELECT worker_pid FROM task_runs")
        with self.board.db.transaction(write=False) as tx:
            return [int(row[0]) for row in tx.fetchall(query, {}) if row[0]]

    # -- chat -----------------------------------------------------------------------------------

    async def say(
        self,
        text: str,
        *,
        user: dict[str, Any] = ALICE,
        chat: int = CHAT,
        timeout: float = REPLY_S,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> Sent:
        """Send ``text`` as ``user`` and return the reply (its first part; the last has buttons)."""
        update = self.telegram.message_update(text, chat_id=chat, chat_type="group", user=user)
        message_id = update["message"]["message_id"]
        await self.telegram.push(update)
        found = await self.telegram.wait_for(lambda: self._reply_to(message_id), timeout)
        assert found is not None
        return found

    async def say_unanswered(
        self, text: str, *, user: dict[str, Any] = ALICE, chat: int = CHAT
    ) -> int:
        """Send ``text`` and prove it got no reply: a later command from the same place is
        answered, and the conversation is handled in order, so nothing came before it."""
        update = self.telegram.message_update(text, chat_id=chat, chat_type="group", user=user)
        message_id = int(update["message"]["message_id"])
        await self.telegram.push(update)
        await self.say("/kanban help", chat=chat)
        assert self._reply_to(message_id) is None, f"{text!r} was answered"
        return message_id

    def _reply_to(self, message_id: int) -> Sent | None:
        return next((m for m in self.telegram.sent if m.reply_to == message_id), None)

    def card_of(self, reply: Sent) -> Sent:
        """The part of a reply that carries its buttons (the last part)."""
        after = [
            m
            for m in self.telegram.sent
            if m.chat_id == reply.chat_id and m.message_id >= reply.message_id and m.keyboard
        ]
        assert after, f"no buttons under the reply {reply.text!r}"
        return after[0]

    async def press(
        self,
        card: Sent,
        label: str,
        *,
        user: dict[str, Any] = ALICE,
        timeout: float = REPLY_S,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> Sent:
        """Press the button labelled ``label`` under ``card``; the reply to the press."""
        data = button(card, label)
        return await self.press_data(card, data, user=user, timeout=timeout)

    async def press_data(
        self,
        card: Sent,
        data: str,
        *,
        user: dict[str, Any] = ALICE,
        timeout: float = REPLY_S,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> Sent:
        """Deliver a callback query with ``data`` under ``card`` (a replay may reuse old data)."""
        before = {m.message_id for m in self.telegram.sent}
        update = self.telegram.press_update(card, data, user=user)
        await self.telegram.push(update)
        [found] = await self.telegram.wait_for(
            lambda: [
                m
                for m in self.telegram.sent
                if m.reply_to == card.message_id and m.message_id not in before
            ][:1],
            timeout,
        )
        return found

    def mark(self) -> int:
        """A position in the chat's history; ``notice`` looks only after it."""
        return len(self.telegram.sent)

    async def notice(
        self,
        needle: str,
        *,
        after: int = 0,
        chat: int = CHAT,
        timeout: float = TURN_S,  # noqa: ASYNC109 - each wait states its own deadline
    ) -> Sent:
        """Wait for a notification (not a reply) in ``chat`` containing ``needle``."""
        [found] = await self.telegram.wait_for(
            lambda: [
                m
                for m in self.telegram.sent[after:]
                if m.chat_id == chat and m.reply_to is None and needle in m.text
            ][:1],
            timeout,
        )
        return found

    def notices(self, *, after: int = 0, chat: int = CHAT) -> list[Sent]:
        """Every notification in ``chat`` since ``after``."""
        return [m for m in self.telegram.sent[after:] if m.chat_id == chat and m.reply_to is None]

    # -- the board ------------------------------------------------------------------------------

    def read(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(tx)`` in a read transaction of the test's own board connection."""
        with self.board.db.transaction(write=False) as tx:
            return fn(tx)

    def workspace(self, ws_id: str | None = None) -> Workspace:
        """A workspace by id, or the only one on the board."""
        if ws_id is None:
            found = self.read(lambda tx: store.listing(tx, archived=False))
            found += self.read(lambda tx: store.listing(tx, archived=True))
            assert len(found) == 1, [w.id for w in found]
            return found[0]
        ws = self.read(lambda tx: store.get(tx, ws_id))
        assert ws is not None, ws_id
        return ws

    def sessions(self, ws_id: str) -> list[Session]:
        return self.read(lambda tx: store.sessions(tx, ws_id))

    def turns(self, session_id: str) -> list[Turn]:
        """A session's turns, oldest first."""
        return list(reversed(self.read(lambda tx: store.session_turns(tx, session_id, limit=50))))

    def audit(self, ws_id: str) -> list[tuple[Any, ...]]:
        """(repo, op, principal, approval_id, outcome, detail), oldest first."""
        rows = self.read(lambda tx: approvals.audit_rows(tx, ws_id, limit=500))
        return [row[1:] for row in reversed(rows)]

    async def until(
        self,
        predicate: Callable[[], T],
        *,
        timeout: float = TURN_S,  # noqa: ASYNC109 - each wait states its own deadline
        what: str = "",
    ) -> T:
        """Wait for a condition on the board or the disk (re-checked every 50 ms)."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            if time.monotonic() > deadline:
                raise AssertionError(f"not within {timeout}s: {what or predicate}")
            await asyncio.sleep(0.05)
        return result


def button(card: Sent, label: str) -> str:
    """The callback data of the button labelled ``label``."""
    for row in card.keyboard or []:
        for key in row:
            if key["text"] == label:
                return str(key["callback_data"])
    labels = [key["text"] for row in card.keyboard or [] for key in row]
    raise AssertionError(f"no button {label!r} under {card.text!r} (buttons: {labels})")


def _is_fake_agent(pid: int) -> bool:
    """Whether ``pid`` is still a fake agent (a recorded pid may have been reused since)."""
    try:
        return FAKE_AGENT.name.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
