"""Real git repositories for the workspace tests: api (with a bare origin), web, a managed root."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Claim, Kanban, KernelSettings
from kanban_core.board.domain import EventKind, RunOutcome
from kanban_core.board.recovery import FailurePolicy
from kanban_core.config import KanbanConfig
from kanban_core.profiles import DEMO_PROFILE, AssigneeProfile
from kanban_core.storage import Query
from kanban_core.workspaces.interactive import store, turns
from kanban_core.workspaces.interactive.config import RepoConfig, WorkspacesConfig
from kanban_core.workspaces.interactive.gitflow import GitFlow
from kanban_core.workspaces.interactive.layout import managed_root
from kanban_core.workspaces.interactive.records import Caller, ChatPlace, Turn, Workspace
from kanban_core.workspaces.interactive.service import Created, WorkspaceService
from kanban_core.workspaces.interactive.turns import TurnContext
from tests.gitrepos import bare_origin, git, isolated_git as isolated_git, make_repo

WS = "ws-1700000000-4f2a9c"
WS2 = "ws-1700000001-b00b1e"

Entries = list[tuple[str, dict[str, object]]]


@pytest.fixture(autouse=True)
def _git_env(isolated_git: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git isolated, and worktree cleanup as configured (no override from the environment)."""
    monkeypatch.delenv("KANBAN_DISABLE_WORKTREE_CLEANUP", raising=False)


@pytest.fixture
def repos(tmp_path: Path) -> Path:
    """The directory holding the user's checkouts (outside the managed root)."""
    path = tmp_path / "src"
    path.mkdir()
    return path


@pytest.fixture
def api(repos: Path) -> Path:
    """A checkout on ``main`` with one commit and no remote."""
    return make_repo(repos, "api")


@pytest.fixture
def origin(tmp_path: Path, api: Path) -> Path:
    """A bare ``origin`` of api holding ``main``, with ``origin/HEAD`` set in api."""
    return bare_origin(api, tmp_path / "remotes" / "api.git")


@pytest.fixture
def web(repos: Path) -> Path:
    """A second, unrelated checkout on ``main``."""
    return make_repo(repos, "web")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def root(tmp_path: Path, home: Path) -> Path:
    """The managed root, as the gateway resolves it from a configured data dir."""
    data = tmp_path / "data"
    data.mkdir()
    return managed_root(data, home)


@pytest.fixture
def locks(home: Path) -> Path:
    return home / "locks"


class Journal:
    """Records creation journal entries, as the store would persist them."""

    def __init__(self, hook: Callable[[str, Mapping[str, object]], None] | None = None) -> None:
        self.entries: Entries = []
        self.hook = hook

    def __call__(self, kind: str, payload: Mapping[str, object]) -> None:
        self.entries.append((kind, dict(payload)))
        if self.hook is not None:
            self.hook(kind, payload)

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]


@pytest.fixture
def journal() -> Journal:
    return Journal()


# --- the workspace service on the fixture board -------------------------------------------------

AGENT = "coder"
TTL_S = 600


@dataclass
class Kit:
    """The service layer over the fixture board, with repos api and web (each with a bare origin).

    The dispatcher and the worker supervisor are played in-process: ``claim`` then
    ``turns.begin``; ``board.complete`` (or ``record_failure``) then ``turns.finish``.
    """

    board: Kanban
    config: KanbanConfig
    api: Path
    web: Path
    api_remote: Path
    web_remote: Path
    data: Path
    tmp: Path

    @property
    def svc(self) -> WorkspaceService:
        return WorkspaceService(self.board, self.config, allow_paths=False)

    @property
    def root(self) -> Path:
        return self.svc.root

    def configure(self, **changes: Any) -> None:
        """Replace workspace settings (the service re-reads config per call, as commands do)."""
        self.config = replace(self.config, workspaces=replace(self.config.workspaces, **changes))

    def caller(
        self,
        principal: str = "telegram:1",
        name: str = "alice",
        *,
        may_approve: bool = False,
        key: str | None = None,
        chat: str = "100",
    ) -> Caller:
        return Caller(principal, name, ChatPlace("telegram", chat), may_approve, key)

    def flow(self, environ: dict[str, str] | None = None) -> GitFlow:
        return GitFlow(self.svc, environ or {})

    def create(
        self, title: str = "Add login", repos: tuple[str, ...] = ("api", "web"), **kwargs: Any
    ) -> Created:
        caller = kwargs.pop("caller", None) or self.caller()
        body = kwargs.pop("body", None)
        return self.svc.create(caller, title=title, body=body, repos=list(repos), **kwargs)

    def get(self, ws: Workspace | str) -> Workspace:
        return self.svc.get(ws if isinstance(ws, str) else ws.id)

    def claim(self, ws: Workspace) -> Claim:
        claim = self.board.claim(Actor("dispatcher"), ws.task_id, ttl_s=TTL_S)
        assert claim is not None, "the workspace task was not ready"
        return claim

    def begin(self, ws: Workspace) -> tuple[Claim, TurnContext]:
        """The dispatcher claims the task; the supervisor binds the pending turn to the run."""
        claim = self.claim(ws)
        context = turns.begin(self.board, ws.task_id, claim.run_id)
        assert context is not None
        return claim, context

    def complete(self, claim: Claim, summary: str = "done") -> bool:
        """The agent completes; the supervisor ends the turn."""
        self.board.complete(Actor(AGENT, run=claim.proof), claim.task.id, summary=summary)
        return turns.finish(self.board, claim.run_id)

    def crash(
        self,
        claim: Claim,
        error: str = "the agent exited with code 3",
        outcome: RunOutcome = RunOutcome.CRASHED,
    ) -> None:
        """The supervisor records a crash (the turn is settled separately)."""
        self.board.record_failure(
            Actor("supervisor"), claim.task.id, claim.run_id, outcome, error, FailurePolicy()
        )

    def run_turn(self, ws: Workspace, summary: str = "done") -> TurnContext:
        claim, context = self.begin(ws)
        assert self.complete(claim, summary)
        return context

    def turn(self, turn_id: str) -> Turn:
        with self.board.db.transaction(write=False) as tx:
            found = store.turn(tx, turn_id)
        assert found is not None
        return found

    def task_row(self, ws: Workspace) -> tuple[Any, ...]:
        with self.board.db.transaction(write=False) as tx:
            row = tx.fetchone(
                Query(
                    "test_task_row",
                    "SELECT status, block_kind, workspace_kind, max_retries, assignee "
                    "FROM tasks WHERE id = :id",
                ),
                {"id": ws.task_id},
            )
        assert row is not None
        return tuple(row)

    def audit_ops(self, ws_id: str) -> list[tuple[str, str]]:
        with self.board.db.transaction(write=False) as tx:
            rows = tx.fetchall(
                Query(
                    "test_audit",
                    "SELECT op, outcome FROM workspace_audit WHERE workspace_id = :ws ORDER BY id",
                ),
                {"ws": ws_id},
            )
        return [(str(r[0]), str(r[1])) for r in rows]

    def count(self, table: str, where: str = "1 = 1", **params: Any) -> int:
        with self.board.db.transaction(write=False) as tx:
            sql = f"SELECT count(*) FROM {table} WHERE {where}"
            return int(tx.scalar(Query("test_count", sql), params))

    def notices(self, ws: Workspace) -> list[dict[str, Any]]:
        return [
            e.payload or {}
            for e in self.board.detail(ws.task_id).events
            if e.kind == EventKind.WORKSPACE_NOTICE.value
        ]


def source_state(repo: Path) -> tuple[str, str, str]:
    """What must never change in a user's checkout: status, stash list and HEAD."""
    return (
        git(repo, "status", "--porcelain=v2", "--branch", "--untracked-files=all"),
        git(repo, "stash", "list"),
        git(repo, "rev-parse", "HEAD"),
    )


def make_kit(board: Kanban, tmp_path: Path) -> Kit:
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    api = make_repo(src, "api")
    web = make_repo(src, "web")
    remotes = tmp_path / "remotes"
    remotes.mkdir(exist_ok=True)
    api_remote = bare_origin(api, remotes / "api.git")
    web_remote = bare_origin(web, remotes / "web.git")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    config = KanbanConfig(
        assignees={
            DEMO_PROFILE.name: DEMO_PROFILE,
            AGENT: AssigneeProfile(name=AGENT, command=("true",)),
            "codex": AssigneeProfile(name="codex", command=("true",)),
        },
        workspaces=WorkspacesConfig(
            managed_root=data,
            agent=AGENT,
            repos={
                "api": RepoConfig("api", api, github_repo="o/api"),
                "web": RepoConfig("web", web, github_repo="o/web"),
            },
        ),
    )
    return Kit(board, config, api, web, api_remote, web_remote, data, tmp_path)


@pytest.fixture
def kit(board: Kanban, tmp_path: Path) -> Kit:
    return make_kit(board, tmp_path)


@pytest.fixture
def durable_url(db_url: str, tmp_path: Path) -> str:
    """The fixture's database, but one that survives closing the board (a file for SQLite)."""
    return f"sqlite:///{tmp_path / 'kanban.db'}" if db_url.startswith("sqlite") else db_url


@pytest.fixture
def durable_board(durable_url: str, tmp_path: Path) -> Iterator[Kanban]:
    settings = KernelSettings(home=tmp_path / "home", db_url=durable_url)
    with Kanban.open(settings) as kanban:
        yield kanban


def reopen(board: Kanban) -> Kanban:
    """Close the board and open it again (a gateway restart)."""
    board.close()
    return Kanban.open(board.settings)
