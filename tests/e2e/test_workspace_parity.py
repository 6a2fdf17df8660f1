"""Workspace parity tests P-1…P-10 (reference/workspaces.md §4.1), driven from chat end to end.

Each test runs the real gateway (``gateway.app.Gateway``) in the test's event loop with the
Telegram adapter — the real python-telegram-bot — pointed at the loopback fake Bot API. Commands,
replies, buttons and notifications all go through it. Agent turns are run by the real
dispatcher and worker supervisor, whose agent is ``tests/support/fake_agent.py`` (it writes the
files its message names, can block until released, or fail). Repositories are real git
checkouts with bare remotes; pull requests go to a fake GitHub REST server on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.access import Role, required_role
from gateway.routing import action_argv, command_argv
from kanban_core import KernelSettings
from kanban_core.workspaces.interactive import store, turns
from kanban_core.workspaces.interactive.records import TurnStatus, WorkspaceStatus
from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.workspace_support import (
    BOB,
    CAROL,
    MALLORY,
    OTHER_CHAT,
    ChatGateway,
    FakeGitHub,
    Project,
    button,
    source_state,
    write_config,
)
from tests.gitrepos import git, isolated_git as isolated_git, remote_heads
from tests.support.fake_telegram import ALICE, BOT_USERNAME, FakeTelegram, running

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta

PG_URL = os.environ.get("KANBAN_TEST_PG_URL", "")
HEADER = re.compile(r"^spirit\([a-z0-9._/-]+\): ")

Open = Callable[..., Awaitable[ChatGateway]]


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite by default; ``parametrize("db_url", [...], indirect=True)`` adds PostgreSQL."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'kanban.db'}"
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL (set KANBAN_TEST_PG_URL)")
    import psycopg

    from kanban_core.storage import Database
    from kanban_core.storage.migrate import ensure_schema

    name = f"kanban_ws_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    ensure_schema(db)
    db.close()
    try:
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def project(tmp_path: Path, isolated_git: None, monkeypatch: pytest.MonkeyPatch) -> Project:
    for name in ("KANBAN_CONFIG", "KANBAN_DB_URL", "KANBAN_DISABLE_WORKTREE_CLEANUP"):
        monkeypatch.delenv(name, raising=False)
    return Project.make(tmp_path)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with running() as server:
        yield server


@pytest.fixture
async def github() -> AsyncIterator[FakeGitHub]:
    server = FakeGitHub()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def open_gateway(
    project: Project, telegram: FakeTelegram, github: FakeGitHub, db_url: str
) -> AsyncIterator[Open]:
    """Start the gateway with config overrides (``lease_ttl_s=…``); stopped at the end."""
    opened: list[ChatGateway] = []

    async def start(**overrides: Any) -> ChatGateway:
        write_config(project, telegram_url=telegram.base_url, github_url=github.url, **overrides)
        settings = KernelSettings(home=project.home, db_url=db_url)
        gateway = ChatGateway(project, telegram, settings)
        opened.append(gateway)
        await gateway.start()
        return gateway

    try:
        yield start
    finally:
        for gateway in opened:
            await gateway.close()


@pytest.fixture
async def gw(open_gateway: Open) -> ChatGateway:
    return await open_gateway()


async def new_workspace(
    gw: ChatGateway, title: str, *repos: str, body: str = "", user: dict[str, Any] = ALICE
) -> str:
    """``/ws new`` from chat; returns the workspace id once its first turn has completed."""
    mark = gw.mark()
    flags = " ".join(f"--repo {r}" for r in repos)
    reply = await gw.say(f'/ws new "{title}" {flags}' + (f' --body "{body}"' if body else ""))
    assert "Created ws-" in reply.text, reply.text
    ws_id = re.search(r"(ws-[0-9a-z-]+)", reply.text)
    assert ws_id is not None
    if "wait " not in body:
        # The completion is announced when the agent reports it; the turn is settled when its
        # supervisor sees the agent exit, a moment later.
        await gw.notice("completed", after=mark)
        await gw.until(lambda: ready(gw, ws_id.group(1)), what="the first turn to settle")
    return ws_id.group(1)


def ready(gw: ChatGateway, ws_id: str) -> bool:
    return gw.workspace(ws_id).status is WorkspaceStatus.READY


# -- P-1 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_p1_single_repo_happy_path(
    gw: ChatGateway, project: Project, github: FakeGitHub
) -> None:
    api, origin = project.repos["api"], project.remotes["api"]
    source_before = source_state(api)
    remote_before = remote_heads(origin)
    mark = gw.mark()

    reply = await gw.say('/ws new "Add login" --repo api --body "write login.py; wait p1"')
    assert "Created ws-" in reply.text, reply.text
    ws = gw.workspace()
    assert "subscribed" in reply.text or ws.id in reply.text

    # The agent works: the workspace is running, in a worktree under the managed root.
    await gw.until(lambda: project.waiting_pid("p1"), what="the agent to start")
    assert gw.workspace(ws.id).status is WorkspaceStatus.RUNNING
    (repo,) = ws.repos
    assert re.fullmatch(r"kanban/[0-9a-z]+-add-login", ws.branch), ws.branch
    assert repo.worktree.is_relative_to(project.root)
    assert git(repo.worktree, "branch", "--show-current") == ws.branch
    assert (repo.worktree / "login.py").is_file()
    project.release("p1")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws.id), what="ready after the turn")
    assert source_state(api) == source_before
    assert not (api / "login.py").exists()

    diff = await gw.say("/diff")
    assert "login.py" in diff.text, diff.text
    # Added and untracked until the commit: "?" in the file list, a new file in the patch.
    assert re.search(r"^\s*\?\s+login\.py", diff.text, re.M), diff.text
    assert "1 untracked" in diff.text, diff.text
    assert "new file mode" in diff.text, diff.text

    # /commit asks first; nothing is committed until the requester confirms.
    card = gw.card_of(await gw.say("/commit"))
    assert "login.py" in card.text or "Commit" in card.text
    head_before = git(repo.worktree, "rev-parse", "HEAD")
    assert git(repo.worktree, "rev-parse", "HEAD") == head_before
    done = await gw.press(card, "Confirm")
    assert "committed" in done.text, done.text
    message = git(repo.worktree, "log", "-1", "--format=%B")
    assert HEADER.match(message.splitlines()[0]), message
    assert f"Task: t{ws.task_id}" in message, message
    assert remote_heads(origin) == remote_before  # nothing pushed

    # /pr: a card; still nothing on the remote until it is confirmed.
    pr_card = gw.card_of(await gw.say("/pr"))
    assert remote_heads(origin) == remote_before
    assert not github.pulls
    opened = await gw.press(pr_card, "Confirm")
    assert "opened PR #1" in opened.text, opened.text
    [pull] = github.pulls
    assert (pull["head"]["ref"], pull["base"]["ref"], pull["repo"]) == (
        ws.branch,
        "main",
        "acme/api",
    )
    assert pull["html_url"] in opened.text
    assert f"refs/heads/{ws.branch}" in remote_heads(origin)
    assert gw.workspace(ws.id).repos[0].pr_url == pull["html_url"]
    assert source_state(api) == source_before

    ops = {(op, outcome) for _repo, op, _who, _ap, outcome, _detail in gw.audit(ws.id)}
    assert {("commit", "ok"), ("push", "ok"), ("pr", "ok")} <= ops, ops


# -- the "done when": two repositories, two sessions, a queue, review, ship, archive -----


async def test_two_repos_two_sessions_queue_review_commit_push_pr_archive(
    gw: ChatGateway, project: Project, github: FakeGitHub
) -> None:
    remotes_before = {name: remote_heads(bare) for name, bare in project.remotes.items()}
    sources_before = {name: source_state(repo) for name, repo in project.repos.items()}
    ws_id = await new_workspace(
        gw, "Login everywhere", "api", "web", body="write api/login.py; write web/login.js"
    )
    ws = gw.workspace(ws_id)
    assert [r.slug for r in ws.repos] == ["api", "web"]
    assert all(r.worktree.is_relative_to(project.root) for r in ws.repos)
    assert all(r.branch == ws.branch for r in ws.repos)

    # A second session; plain text in the bound chat talks to it.
    reply = await gw.say("/new-session")
    assert "session 2 started" in reply.text, reply.text
    reply = await gw.say("write web/app.js; wait s2")
    assert "sent to the agent" in reply.text, reply.text
    await gw.until(lambda: project.waiting_pid("s2"), what="session 2's turn to run")

    # While it runs, follow-ups queue and the chat is told their positions.
    first = await gw.say("/follow-up write api/tests.py")
    second = await gw.say("write web/docs.md")
    assert "queued (position 1)" in first.text, first.text
    assert "queued (position 2)" in second.text, second.text
    queue = await gw.say("/queue")
    assert "1. write api/tests.py" in queue.text
    assert "2. write web/docs.md" in queue.text

    mark = gw.mark()
    project.release("s2")
    await gw.until(
        lambda: len(project.calls()) == 4 and ready(gw, ws_id), what="the queue to drain"
    )
    await gw.notice("completed", after=mark)
    messages = [call["message"] for call in project.calls()]
    assert messages[1:] == ["write web/app.js; wait s2", "write api/tests.py", "write web/docs.md"]
    s1, s2 = gw.sessions(ws_id)
    assert {c["agent_session_id"] for c in project.calls()[1:]} == {s2.agent_session_id}
    assert [t.status for t in gw.turns(s2.id)] == [TurnStatus.COMPLETED] * 3
    assert len(gw.turns(s1.id)) == 1

    # Review: with no active repo, reads show every repository.
    diff = await gw.say("/diff")
    for path in ("login.py", "tests.py", "login.js", "app.js", "docs.md"):
        assert path in diff.text, (path, diff.text)
    assert "repo api" in diff.text
    assert "repo web" in diff.text

    # Writes must name a repository: a button per repo, never a guess.
    which = await gw.say("/commit")
    assert "several repositories" in which.text, which.text
    card = gw.card_of(await gw.press(gw.card_of(which), "api"))
    committed = await gw.press(card, "Confirm")
    assert "committed" in committed.text, committed.text
    assert "in api" in committed.text, committed.text
    card = gw.card_of(await gw.say("/web commit"))
    committed = await gw.press(card, "Confirm")
    assert "in web" in committed.text, committed.text
    for repo in gw.workspace(ws_id).repos:
        subject = git(repo.worktree, "log", "-1", "--format=%s")
        assert HEADER.match(subject), subject
        assert git(repo.worktree, "status", "--porcelain") == ""
    assert {n: remote_heads(b) for n, b in project.remotes.items()} == remotes_before

    # Push web after confirming; the PR for api pushes api after its confirmation only.
    card = gw.card_of(await gw.say("/push --repo web"))
    assert {n: remote_heads(b) for n, b in project.remotes.items()} == remotes_before
    pushed = await gw.press(card, "Confirm")
    assert "pushed" in pushed.text, pushed.text
    assert f"refs/heads/{ws.branch}" in remote_heads(project.remotes["web"])
    assert remote_heads(project.remotes["api"]) == remotes_before["api"]
    card = gw.card_of(await gw.say("/repo:api pr"))
    assert remote_heads(project.remotes["api"]) == remotes_before["api"]
    opened = await gw.press(card, "Confirm")
    assert "opened PR #1" in opened.text, opened.text
    [pull] = github.pulls
    assert (pull["repo"], pull["head"]["ref"], pull["base"]["ref"]) == (
        "acme/api",
        ws.branch,
        "main",
    )
    assert f"refs/heads/{ws.branch}" in remote_heads(project.remotes["api"])

    # Archive: hidden from the list, everything kept.
    archived = await gw.say("/ws archive")
    assert "archived" in archived.text, archived.text
    assert ws_id not in (await gw.say("/ws list")).text
    assert ws_id in (await gw.say("/ws list --archived")).text
    assert all(r.worktree.is_dir() for r in gw.workspace(ws_id).repos)
    assert {n: source_state(r) for n, r in project.repos.items()} == sources_before
    ops = [(repo, op, outcome) for repo, op, _who, _ap, outcome, _d in gw.audit(ws_id)]
    for expected in (
        ("api", "commit", "ok"),
        ("web", "commit", "ok"),
        ("web", "push", "ok"),
        ("api", "push", "ok"),
        ("api", "pr", "ok"),
        (None, "archive", "ok"),
    ):
        assert expected in ops, (expected, ops)


# -- P-2 -----------------------------------------------------------------------------------------


async def test_p2_routing_to_the_active_repo_and_by_prefix(gw: ChatGateway) -> None:
    ws_id = await new_workspace(gw, "Routing", "api", "web", body="write api/a.py; write web/w.js")
    assert "commands now apply to api" in (await gw.say("/set-active-repo api")).text

    status = await gw.say("/git-status")
    assert "repo api" in status.text, status.text
    assert "repo web" not in status.text, status.text
    status = await gw.say("/web git-status")
    assert "repo web" in status.text, status.text
    assert "repo api" not in status.text, status.text
    status = await gw.say("/repo:web gs")
    assert "repo web" in status.text, status.text
    assert "repo api" not in status.text, status.text
    assert gw.workspace(ws_id).active_repo == "api"  # a prefix does not switch

    assert "commands now apply to web" in (await gw.say("/set-active-repo web")).text
    api, web = gw.workspace(ws_id).repos
    api_head = git(api.worktree, "rev-parse", "HEAD")
    card = gw.card_of(await gw.say("/commit"))
    assert "in web" in card.text
    assert "w.js" in card.text
    assert "a.py" not in card.text
    done = await gw.press(card, "Confirm")
    assert "in web" in done.text, done.text
    assert git(web.worktree, "status", "--porcelain") == ""
    assert git(api.worktree, "rev-parse", "HEAD") == api_head
    assert git(api.worktree, "status", "--porcelain") == "?? a.py"


# -- P-3 -----------------------------------------------------------------------------------------


async def test_p3_switching_sessions_keeps_each_history(gw: ChatGateway, project: Project) -> None:
    ws_id = await new_workspace(gw, "Sessions", "api", body="write one.py")
    mark = gw.mark()
    await gw.say("write two.py")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id))
    (s1,) = gw.sessions(ws_id)
    s1_history = (await gw.say("/sessions show 1")).text
    assert "write one.py" in s1_history
    assert "write two.py" in s1_history

    assert "session 2 started" in (await gw.say("/new-session")).text
    mark = gw.mark()
    await gw.say("write three.py")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id))
    assert "session 1 is now active" in (await gw.say("/sessions use 1")).text
    assert (await gw.say("/sessions show 1")).text == s1_history
    s2_history = (await gw.say("/sessions show 2")).text
    assert "write three.py" in s2_history
    assert "write one.py" not in s2_history

    _, s2 = gw.sessions(ws_id)
    assert s1.agent_session_id != s2.agent_session_id
    assert s1.agent_session_id in s1_history
    assert s2.agent_session_id in s2_history
    assert len(gw.turns(s1.id)) == 2
    assert len(gw.turns(s2.id)) == 1
    assert all(t.session_id == s2.id for t in gw.turns(s2.id))

    # Back in session 1, the agent resumes session 1's conversation, in the same files.
    mark = gw.mark()
    await gw.say("write four.py")
    await gw.notice("completed", after=mark)
    calls = [(c["agent_session_id"], c["resume"], c["message"]) for c in project.calls()]
    assert calls == [
        (s1.agent_session_id, "0", "Sessions\n\nwrite one.py"),
        (s1.agent_session_id, "1", "write two.py"),
        (s2.agent_session_id, "0", "write three.py"),
        (s1.agent_session_id, "1", "write four.py"),
    ]
    assert len({c["cwd"] for c in project.calls()}) == 1
    (worktree,) = (r.worktree for r in gw.workspace(ws_id).repos)
    assert {p.name for p in worktree.glob("*.py")} == {"one.py", "two.py", "three.py", "four.py"}


# -- P-4 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_p4_follow_ups_queue_while_the_agent_runs(gw: ChatGateway, project: Project) -> None:
    ws_id = await new_workspace(gw, "Queue", "api", body="wait q1")
    await gw.until(lambda: project.waiting_pid("q1"))
    first = await gw.say("also add tests; write tests.py")
    second = await gw.say("/follow-up and docs; write docs.md")
    assert "queued (position 1)" in first.text, first.text
    assert "queued (position 2)" in second.text, second.text
    assert len(project.calls()) == 1  # nothing started beside the running turn

    project.release("q1")
    await gw.until(lambda: len(project.calls()) == 3 and ready(gw, ws_id), what="the queue")
    calls = project.calls()
    assert [c["message"] for c in calls[1:]] == [
        "also add tests; write tests.py",
        "and docs; write docs.md",
    ]
    (session,) = gw.sessions(ws_id)
    assert {c["agent_session_id"] for c in calls} == {session.agent_session_id}
    assert [c["resume"] for c in calls] == ["0", "1", "1"]
    assert "the queue is empty" in (await gw.say("/queue")).text


async def test_p4a_a_failed_turn_pauses_the_queue_until_someone_chooses(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Fails", "api", body="wait qa; fail")
    await gw.until(lambda: project.waiting_pid("qa"))
    queued = await gw.say("write later.py")
    assert "queued (position 1)" in queued.text, queued.text

    mark = gw.mark()
    project.release("qa")
    notice = await gw.notice("paused", after=mark)
    assert "nothing runs until you choose" in notice.text, notice.text
    assert [key["text"] for row in notice.keyboard or [] for key in row] == [
        "Run next",
        "Clear queue",
    ]
    (session,) = gw.sessions(ws_id)
    assert session.queue_paused
    assert gw.workspace(ws_id).status is WorkspaceStatus.FAILED
    [turn] = gw.turns(session.id)
    assert turn.status is TurnStatus.FAILED
    assert gw.read(lambda tx: [q.text for q in store.queued(tx, session.id)]) == ["write later.py"]
    shown = await gw.say("/queue")
    assert "PAUSED" in shown.text, shown.text
    assert "write later.py" in shown.text, shown.text
    # A new message does not jump the paused queue either: it queues behind it.
    behind = await gw.say("write much_later.py")
    assert "queued (position 2)" in behind.text, behind.text
    assert "PAUSED" in behind.text, behind.text
    assert len(project.calls()) == 1
    assert gw.board.get(gw.workspace(ws_id).task_id).status.value == "blocked"

    # A viewer may look but not choose; the operator's press runs the next one.
    refused = await gw.press(notice, "Run next", user=CAROL)
    assert "needs the operator role" in refused.text, refused.text
    mark = gw.mark()
    started = await gw.press(notice, "Run next")
    assert "started turn" in started.text, started.text
    await gw.until(lambda: len(project.calls()) == 3 and ready(gw, ws_id), what="the queue")
    assert [c["message"] for c in project.calls()[1:]] == ["write later.py", "write much_later.py"]


async def test_p4b_queued_follow_ups_survive_a_gateway_restart(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Restart", "api", body="wait qb")
    await gw.until(lambda: project.waiting_pid("qb"))
    assert "queued (position 1)" in (await gw.say("write after_restart.py")).text

    await gw.restart()
    shown = await gw.say("/queue")
    assert "1. write after_restart.py" in shown.text, shown.text
    project.release("qb")
    await gw.until(lambda: len(project.calls()) == 2 and ready(gw, ws_id), what="the queue")
    assert project.calls()[1]["message"] == "write after_restart.py"
    (worktree,) = (r.worktree for r in gw.workspace(ws_id).repos)
    assert (worktree / "after_restart.py").is_file()


# -- P-5 -----------------------------------------------------------------------------------------


async def committed_and_dirty(gw: ChatGateway, title: str) -> str:
    """A workspace on api with one confirmed (unpushed) commit and an untracked file."""
    ws_id = await new_workspace(gw, title, "api", body="write done.py")
    card = gw.card_of(await gw.say("/commit"))
    assert "committed" in (await gw.press(card, "Confirm")).text
    mark = gw.mark()
    await gw.say("write dirty.py")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id))
    return ws_id


async def test_p5_force_push_waits_for_an_approver(gw: ChatGateway, project: Project) -> None:
    ws_id = await committed_and_dirty(gw, "Force")
    ws = gw.workspace(ws_id)
    (repo,) = ws.repos
    origin = project.remotes["api"]
    card = gw.card_of(await gw.say("/push"))
    assert "pushed" in (await gw.press(card, "Confirm")).text
    # Someone else pushes to the workspace branch: a plain push is now refused.
    other = project.tmp / "other-clone"
    git(project.tmp, "clone", "-q", "--branch", ws.branch, str(origin), str(other))
    (other / "theirs.txt").write_text("theirs\n", encoding="utf-8")
    git(other, "add", "theirs.txt")
    git(other, "commit", "-q", "-m", "theirs")
    git(other, "push", "-q", "origin", ws.branch)
    git(repo.worktree, "fetch", "-q", "origin")
    card = gw.card_of(await gw.say("/commit"))
    assert "committed" in (await gw.press(card, "Confirm")).text
    ours = git(repo.worktree, "rev-parse", "HEAD")
    remote_before = remote_heads(origin)

    refused = await gw.say("/push")
    plain = await gw.press(gw.card_of(refused), "Confirm") if refused.keyboard else refused
    assert "⚠" in plain.text, plain.text
    assert remote_heads(origin) == remote_before

    card = gw.card_of(await gw.say("/push --force-with-lease"))
    assert "FORCE" in card.text, card.text
    assert "an approver must approve it" in card.text, card.text
    assert [key["text"] for row in card.keyboard or [] for key in row] == ["Approve", "Deny"]
    # The operator who asked cannot approve their own high-risk request.
    own = await gw.press(card, "Approve")
    assert "needs the approver role" in own.text, own.text
    assert remote_heads(origin) == remote_before

    approved = await gw.press(card, "Approve", user=BOB)
    assert "pushed" in approved.text, approved.text
    assert f"refs/heads/{ws.branch} {ours}" in remote_heads(origin)
    again = await gw.press(card, "Approve", user=BOB)
    assert "already used" in again.text, again.text
    rows = [(op, who, outcome) for _r, op, who, _ap, outcome, _d in gw.audit(ws_id)]
    assert ("push", "telegram:42", "requested") in rows
    assert ("push", "telegram:7", "approved") in rows
    assert ("push", "telegram:7", "ok") in rows


async def test_p5_delete_with_unsaved_work_needs_approval_denial_cancels_and_restart_keeps_it(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await committed_and_dirty(gw, "Risky delete")
    ws = gw.workspace(ws_id)
    (repo,) = ws.repos
    head = git(repo.worktree, "rev-parse", "HEAD")

    card = gw.card_of(await gw.say("/ws delete"))
    assert "work would be lost" in card.text
    assert "an approver must approve it" in card.text
    assert "1 unpushed commit" in card.text, card.text
    assert "1 untracked" in card.text, card.text
    denied = await gw.press(card, "Deny", user=BOB)
    assert "cancelled" in denied.text, denied.text
    used = await gw.press(card, "Approve", user=BOB)
    assert "already used" in used.text, used.text
    assert repo.worktree.is_dir()
    assert (repo.worktree / "dirty.py").is_file()
    assert git(repo.worktree, "rev-parse", "HEAD") == head

    # A fresh request survives a gateway restart; the approver's click then works.
    card = gw.card_of(await gw.say("/ws delete"))
    await gw.restart()
    assert repo.worktree.is_dir()
    deleted = await gw.press(card, "Approve", user=BOB)
    assert "cancelled" not in deleted.text, deleted.text
    assert "⚠" not in deleted.text, deleted.text
    assert not ws.container.exists()
    assert git(project.repos["api"], "rev-parse", f"refs/heads/{ws.branch}") == head
    assert gw.read(lambda tx: store.get(tx, ws_id)) is None
    rows = [(op, who, outcome) for _r, op, who, _ap, outcome, _d in gw.audit(ws_id)]
    assert ("delete", "telegram:7", "denied") in rows
    assert ("delete", "telegram:7", "approved") in rows
    assert ("delete", "telegram:7", "ok") in rows


# -- P-6 -----------------------------------------------------------------------------------------


async def test_p6_archive_and_unarchive_keep_everything(gw: ChatGateway) -> None:
    ws_id = await new_workspace(gw, "Archive me", "api", body="write kept.py")
    await gw.say("/new-session")
    mark = gw.mark()
    await gw.say("write kept_too.py")
    await gw.notice("completed", after=mark)
    await gw.until(lambda: ready(gw, ws_id))
    ws = gw.workspace(ws_id)
    (repo,) = ws.repos
    branch_oid = git(repo.worktree, "rev-parse", ws.branch)
    histories = [(await gw.say(f"/sessions show {n}")).text for n in (1, 2)]

    assert "archived" in (await gw.say("/ws archive")).text
    assert ws_id not in (await gw.say("/ws list")).text
    assert ws_id in (await gw.say("/ws list --archived")).text
    assert gw.workspace(ws_id).archived
    assert (repo.worktree / "kept.py").is_file()
    assert (repo.worktree / "kept_too.py").is_file()
    refused = await gw.say("write while_archived.py")
    assert "archived" in refused.text, refused.text

    assert "unarchived" in (await gw.say(f"/ws unarchive {ws_id}")).text
    assert ws_id in (await gw.say("/ws list")).text
    after = gw.workspace(ws_id)
    assert not after.archived
    assert after.status is WorkspaceStatus.READY
    assert [(await gw.say(f"/sessions show {n}")).text for n in (1, 2)] == histories
    assert len(gw.sessions(ws_id)) == 2
    assert git(repo.worktree, "rev-parse", ws.branch) == branch_oid
    assert len(gw.read(lambda tx: store.sessions(tx, ws_id))) == 2


# -- P-7 -----------------------------------------------------------------------------------------


async def test_p7_delete_removes_only_the_managed_workspace(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Clean one", "api", body="just look around")
    ws = gw.workspace(ws_id)
    api = project.repos["api"]
    decoy = project.root / "ws-0000000000-abcdef"
    decoy.mkdir()
    (decoy / "precious.txt").write_text("mine\n", encoding="utf-8")
    victim = project.tmp / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep\n", encoding="utf-8")
    (project.root / "evil").symlink_to(victim)
    outside = project.tmp / "elsewhere" / "api-side"
    git(api, "worktree", "add", "-q", "-b", "side", str(outside))
    registered = git(api, "worktree", "list", "--porcelain")

    card = gw.card_of(await gw.say("/ws delete"))
    # Nothing would be lost (no changes, nothing unpushed): the requester's confirmation.
    assert "an approver" not in card.text, card.text
    done = await gw.press(card, "Confirm")
    assert "⚠" not in done.text, done.text
    assert not ws.container.exists()
    assert (decoy / "precious.txt").read_text(encoding="utf-8") == "mine\n"
    assert (victim / "keep.txt").read_text(encoding="utf-8") == "keep\n"
    assert (project.root / "evil").is_symlink()
    assert (outside / "README.md").is_file()
    still = git(api, "worktree", "list", "--porcelain")
    assert str(outside) in still
    assert ws.repos[0].worktree.as_posix() not in still
    assert len(still.split("\n\n")) == len(registered.split("\n\n")) - 1
    assert git(api, "rev-parse", "--verify", f"refs/heads/{ws.branch}")


async def test_a12_a_symlink_inside_the_container_is_removed_not_followed(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Symlinked", "api", body="just look around")
    ws = gw.workspace(ws_id)
    victim = project.tmp / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep\n", encoding="utf-8")
    (ws.container / "evil").symlink_to(victim)

    card = gw.card_of(await gw.say("/ws delete"))
    done = await gw.press(card, "Confirm")
    assert (victim / "keep.txt").read_text(encoding="utf-8") == "keep\n"
    assert "⚠" not in done.text, done.text
    assert not ws.container.exists()
    assert gw.read(lambda tx: store.get(tx, ws_id)) is None


# -- P-8 -----------------------------------------------------------------------------------------


WORDS = sorted(
    {
        "new-session": "", "follow-up": "fix it", "summary": "", "run": "test",
        "git-status": "", "diff": "src/", "commit": "", "push": "", "pr": "", "attach": "#1",
        "stop": "", "queue": "run", "set-active-repo": "web", "sessions": "", "approve": "x",
        "deny": "x",
    }.items()
)  # fmt: skip


@pytest.mark.parametrize(("word", "args"), WORDS)
def test_p8_every_form_of_a_command_routes_to_the_same_argv_and_gate(word: str, args: str) -> None:
    repos = ("api", "web")
    canonical = command_argv(word, args, repos)
    assert canonical.refusal is None
    assert canonical.argv[0] == "ws"
    forms = [
        command_argv(word.replace("-", "_"), args, repos),
        command_argv(f"{word.replace('-', '_')}@{BOT_USERNAME}", args, repos),
        command_argv(f"{word.upper()}@{BOT_USERNAME}", args, repos),
        action_argv(f"k:{word} {args}".rstrip(), repos),
    ]
    assert [f.argv for f in forms] == [canonical.argv] * len(forms)
    sub = canonical.argv[1]
    gate = required_role("ws", sub, canonical.argv[2] if len(canonical.argv) > 2 else None)
    assert gate is not None
    if word not in ("git-status", "summary", "diff", "sessions"):
        assert gate >= Role.OPERATOR, (word, gate)


async def test_p8_typed_forms_and_buttons_meet_the_same_role_gate(gw: ChatGateway) -> None:
    await new_workspace(gw, "Parity", "api", body="write p.py")
    typed = [
        "/git-status",
        "/git_status",
        f"/git_status@{BOT_USERNAME}",
        "/gs",
        f"/GS@{BOT_USERNAME}",
    ]
    answers = [(await gw.say(text, user=CAROL)).text for text in typed]
    assert all(a.startswith("repo api") for a in answers), answers

    status = await gw.say("/git-status", user=CAROL)
    for form in ("/commit", f"/commit@{BOT_USERNAME}", "/new-session", "/new_session"):
        refused = await gw.say(form, user=CAROL)
        assert "needs the operator role" in refused.text, (form, refused.text)
    pressed = await gw.press(gw.card_of(status), "Commit", user=CAROL)
    assert "needs the operator role" in pressed.text, pressed.text

    # The same button and the same typed command, from an operator, both make a commit card.
    by_button = gw.card_of(await gw.press(gw.card_of(status), "Commit"))
    by_text = gw.card_of(await gw.say("/commit"))
    first_line = by_text.text.splitlines()[0]
    assert by_button.text.splitlines()[0] == first_line
    assert first_line.startswith("Commit 1 file(s) in api")


# -- P-9 -----------------------------------------------------------------------------------------


async def test_p9_a_killed_worker_ends_its_turn_once_and_pauses_the_queue(
    open_gateway: Open, project: Project
) -> None:
    gw = await open_gateway(lease_ttl_s=3)
    ws_id = await new_workspace(gw, "Crash", "api", body="write half.py; wait p9")
    agent = await gw.until(lambda: project.waiting_pid("p9"))
    assert agent is not None
    assert "queued (position 1)" in (await gw.say("write after_crash.py")).text
    task_id = gw.workspace(ws_id).task_id
    run = gw.board.get(task_id).current_run_id
    assert run is not None
    [supervisor] = gw.supervisor_pids()

    mark = gw.mark()
    os.kill(supervisor, signal.SIGKILL)
    os.kill(agent, signal.SIGKILL)
    await gw.restart()  # a gateway restart on top: nothing may be counted twice

    notice = await gw.notice("paused", after=mark)
    assert "Run next" in str(notice.keyboard), notice.keyboard
    (session,) = gw.sessions(ws_id)
    turn = gw.read(lambda tx: store.turn_by_run(tx, run))
    assert turn is not None
    assert turn.status is TurnStatus.FAILED
    assert turn.ended_ms is not None
    assert turn.after_heads.get("api")
    assert session.queue_paused
    assert gw.workspace(ws_id).status is WorkspaceStatus.FAILED
    assert gw.read(lambda tx: [q.text for q in store.queued(tx, session.id)]) == [
        "write after_crash.py"
    ]

    # Replaying the end of the run (a stale supervisor, a second settle) changes nothing.
    assert turns.finish(gw.board, run) is False
    assert gw.read(lambda tx: store.turn_by_run(tx, run)) == turn
    assert len([t for t in gw.turns(session.id) if t.status is TurnStatus.FAILED]) == 1
    assert not any(t.status is TurnStatus.COMPLETED for t in gw.turns(session.id))
    assert len(project.calls()) == 1
    assert len([n for n in gw.notices(after=mark) if "paused" in n.text]) == 1


# -- P-10 ----------------------------------------------------------------------------------------


async def test_p10_strangers_and_viewers_are_refused_and_audited(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Guarded", "api", body="write secret_work.py")
    card = gw.card_of(await gw.say("/ws delete"))
    approve = button(card, "Approve")

    stranger = await gw.say('/ws new "mine now" --repo api', user=MALLORY)
    assert "not allowed" in stranger.text, stranger.text
    assert ws_id not in stranger.text, stranger.text
    assert len(gw.read(lambda tx: store.listing(tx, archived=False))) == 1
    pressed = await gw.press_data(card, approve, user=MALLORY)
    assert "not allowed" in pressed.text, pressed.text
    assert "Guarded" not in pressed.text, pressed.text
    viewer = await gw.press_data(card, approve, user=CAROL)
    assert "needs the operator role" in viewer.text, viewer.text
    await gw.say_unanswered("write pwned.py", user=MALLORY)
    await gw.say_unanswered("write pwned.py", user=MALLORY, chat=OTHER_CHAT)

    # The approver decides; a captured callback replayed later is refused by everyone.
    assert "cancelled" in (await gw.press(card, "Deny", user=BOB)).text
    for who in (MALLORY, CAROL, ALICE, BOB):
        replay = await gw.press_data(card, approve, user=who)
        assert (
            "already used" in replay.text
            or "not allowed" in replay.text
            or ("needs the operator role" in replay.text)
        ), replay.text
    (repo,) = gw.workspace(ws_id).repos
    assert (repo.worktree / "secret_work.py").is_file()
    assert not (repo.worktree / "pwned.py").exists()
    assert len(project.calls()) == 1
    refusals = [
        (e.user_id, e.detail) for e in gw.board.audit_log(limit=1000) if e.outcome == "refused"
    ]
    assert ("9", "unknown user") in refusals
    assert any(user == "8" and "operator" in (detail or "") for user, detail in refusals)
    rows = [(op, who, outcome) for _r, op, who, _ap, outcome, _d in gw.audit(ws_id)]
    assert ("decide", "telegram:7", "refused") in rows


# -- plain text ----------------------------------------------------------------------------------


async def test_plain_text_is_a_follow_up_in_a_bound_chat_and_ignored_elsewhere(
    gw: ChatGateway, project: Project
) -> None:
    ws_id = await new_workspace(gw, "Chatter", "api", body="write a.py")
    mark = gw.mark()
    reply = await gw.say("please write b.py\nwrite b.py")
    assert "sent to the agent" in reply.text, reply.text
    await gw.notice("completed", after=mark)
    await gw.say_unanswered("write c.py", chat=OTHER_CHAT)
    assert [c["message"] for c in project.calls()][1:] == ["please write b.py\nwrite b.py"]
    (worktree,) = (r.worktree for r in gw.workspace(ws_id).repos)
    assert (worktree / "b.py").is_file()
    assert not (worktree / "c.py").exists()
