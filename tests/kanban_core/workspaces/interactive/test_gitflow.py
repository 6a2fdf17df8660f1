"""Git from chat on real worktrees: status, diff, commit, push, PR, attach and scripts."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core.errors import KanbanError, ValidationError
from kanban_core.workspaces.gitops.commits import SPIRIT_HEADER_RE, NothingToCommit
from kanban_core.workspaces.gitops.github import GhMissing
from kanban_core.workspaces.gitops.push import PushRefused, PushRejected
from kanban_core.workspaces.interactive.approvals import ApprovalRefused
from kanban_core.workspaces.interactive.config import GitHubConfig, RepoConfig
from kanban_core.workspaces.interactive.gitbase import Card, WhichRepo
from kanban_core.workspaces.interactive.gitflow import GitFlow
from kanban_core.workspaces.interactive.records import ApprovalKind, Workspace
from tests.gitrepos import (
    TOKEN,
    FakeGitHub,
    Shim,
    commit,
    fake_github,
    git,
    install_gh_shim,
    remote_heads,
)
from tests.kanban_core.workspaces.interactive.conftest import Kit
from tests.support.processes import alive, wait_for

BUDGET = 3800


@pytest.fixture
def ws(kit: Kit) -> Workspace:
    """A two-repo workspace after its first turn, with the fake agent's edits in both."""
    made = kit.create("Add login").workspace
    kit.run_turn(made)
    ws = kit.get(made)
    for repo in ws.repos:
        (repo.worktree / "login.py").write_text(f"def login():  # {repo.slug}\n    return 1\n")
    return ws


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as fake:
        fake.routes[("GET", "/api/v3/rate_limit")] = (200, {"resources": {}})
        yield fake


def confirm(flow: GitFlow, kit: Kit, card: Card, **caller: Any) -> list[str]:
    who = kit.caller(**caller) if caller else kit.caller()
    return flow.decide(who, card.approval.id, nonce=card.approval.nonce, approve=True)


def commit_all(kit: Kit, ws: Workspace, repo: str, message: str = "Add login") -> list[str]:
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), repo, message=message, scope=None)
    return confirm(flow, kit, card)


# --- status and diff ------------------------------------------------------------------------


def test_status_and_diff_per_repo_and_with_the_active_repo(kit: Kit, ws: Workspace) -> None:
    flow = kit.flow()
    both = flow.status(ws, None)
    assert [line.split()[1] for line in both if line.startswith("repo ")] == ["api", "web"]
    only_web = flow.status(ws, "web")
    assert [line.split()[1] for line in only_web if line.startswith("repo ")] == ["web"]
    kit.svc.set_active_repo(ws, "api", kit.caller())
    scoped = flow.status(kit.get(ws), None)
    assert [line.split()[1] for line in scoped if line.startswith("repo ")] == ["api"]
    assert [
        line.split()[1] for line in flow.status(kit.get(ws), "web") if line.startswith("repo ")
    ] == ["web"]

    view = flow.diff(kit.get(ws), None, None, budget=BUDGET)

    assert view.inline is not None
    assert view.attachment is None
    assert "+++ b/login.py" in view.inline
    assert "# api" in view.inline
    assert "# web" not in view.inline  # the active repo only
    assert any(line.split()[:2] == ["?", "login.py"] for line in view.lines)  # untracked
    with pytest.raises(ValidationError, match="no repository 'nope'"):
        flow.status(ws, "nope")


def test_status_names_the_base_and_says_when_it_moved(kit: Kit, ws: Workspace) -> None:
    [header] = [line for line in kit.flow().status(ws, "api") if line.startswith("repo ")]
    assert f"{ws.branch} → origin/main  ↑0 ↓0" in header
    commit(kit.api, "upstream.txt", "someone merged this\n")
    git(kit.api, "push", "-q", "origin", "main")

    lines = kit.flow().status(ws, "api")

    assert "↓1" in lines[0]
    assert "  ⚠ behind base by 1 — /rebase api" in lines
    with pytest.raises(ValidationError):
        kit.svc.set_active_repo(ws, "nope", kit.caller())


def test_a_large_diff_with_a_binary_becomes_an_attachment(kit: Kit, ws: Workspace) -> None:
    wt = ws.repos[1].worktree
    for n in range(200):
        (wt / "src" / f"m{n // 50}").mkdir(parents=True, exist_ok=True)
        (wt / "src" / f"m{n // 50}" / f"file_{n:03}.py").write_text(f"x = {n}\n" * (n % 7 + 1))
    (wt / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 8)

    view = kit.flow().diff(ws, "web", None, budget=BUDGET)

    assert len("\n".join(view.lines)) <= BUDGET
    assert view.inline is None
    assert view.attachment is not None
    name, data = view.attachment
    assert name == f"{ws.id}-web.diff"
    assert 0 < len(data) <= 5 * 1024 * 1024
    assert b"Binary files" in data
    assert b"logo.png" in data
    assert b"PNG\r\n" not in data
    assert any(re.search(r"… \d+ more files", line) for line in view.lines)


def test_secrets_are_redacted_from_diffs(kit: Kit, ws: Workspace) -> None:
    wt = ws.repos[0].worktree
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    pem = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----\n"
    )
    (wt / "deploy.cfg").write_text(f"aws_key = {key}\n")
    (wt / "id_ed25519").write_text(pem)
    (wt / ".env").write_text("DB_PASSWORD=hunter2\n")

    view = kit.flow().diff(ws, "api", None, budget=BUDGET)

    assert view.redacted
    assert view.inline is not None
    assert key not in view.inline
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in view.inline
    assert "hunter2" not in view.inline
    assert "[REDACTED]" in view.inline

    for n in range(300):  # the same secrets, in a diff too long for the chat
        (wt / f"pad{n}.txt").write_text("padding line\n" * 5)
    big = kit.flow().diff(ws, "api", None, budget=BUDGET)
    assert big.attachment is not None
    assert big.redacted
    assert key.encode() not in big.attachment[1]
    assert b"hunter2" not in big.attachment[1]


def test_diff_paths_from_chat_stay_inside(kit: Kit, ws: Workspace) -> None:
    flow = kit.flow()
    for bad in ("../etc/passwd", "/etc/passwd", "--output=/tmp/x", ":(top)"):
        with pytest.raises(ValidationError):
            flow.diff(ws, "api", bad, budget=BUDGET)
    view = flow.diff(ws, "api", "login.py", budget=BUDGET)
    assert view.inline is not None
    assert "login.py" in view.inline


# --- commit ---------------------------------------------------------------------------------


def test_commit_targets_the_active_repo_only(kit: Kit, ws: Workspace) -> None:
    flow = kit.flow()
    api_head = git(ws.repos[0].worktree, "rev-parse", "HEAD")
    web_head = git(ws.repos[1].worktree, "rev-parse", "HEAD")
    with pytest.raises(WhichRepo) as which:
        flow.request_commit(ws, kit.caller(), None, message=None, scope=None)
    assert which.value.choices == ("api", "web")
    kit.svc.set_active_repo(ws, "web", kit.caller())

    card = flow.request_commit(kit.get(ws), kit.caller(), None, message=None, scope=None)
    assert card.approval.args["repo"] == "web"
    confirm(flow, kit, card)

    assert git(ws.repos[0].worktree, "rev-parse", "HEAD") == api_head
    assert "login.py" in git(ws.repos[0].worktree, "status", "--porcelain")
    assert git(ws.repos[1].worktree, "rev-parse", "HEAD") != web_head
    assert git(ws.repos[1].worktree, "status", "--porcelain") == ""


def test_the_commit_message_follows_the_convention(kit: Kit, ws: Workspace) -> None:
    commit_all(kit, ws, "api", "add the login endpoint.")

    wt = ws.repos[0].worktree
    message = git(wt, "log", "-1", "--format=%B")
    header = message.splitlines()[0]
    assert re.match(r"^spirit\([a-z0-9._/-]+\): ", header), header
    assert SPIRIT_HEADER_RE.match(header)
    assert len(header) <= 72
    assert header == "spirit(api): add the login endpoint"
    trailers = git(wt, "log", "-1", "--format=%(trailers:only,unfold)")
    assert f"Task: t{ws.task_id}" in trailers.splitlines()
    assert f"Workspace: {ws.id}" in trailers.splitlines()
    assert "Requested-by: telegram:1" in trailers.splitlines()
    assert git(wt, "log", "-1", "--format=%an") == "Test"  # the repo's identity, not invented
    audit = kit.audit_ops(ws.id)
    assert ("commit", "requested") in audit
    assert ("commit", "ok") in audit


def test_nothing_to_commit(kit: Kit, ws: Workspace) -> None:
    (ws.repos[0].worktree / "login.py").unlink()
    before = kit.count("approvals", "workspace_id = :ws", ws=ws.id)
    with pytest.raises(NothingToCommit, match="nothing to commit"):
        kit.flow().request_commit(ws, kit.caller(), "api", message=None, scope=None)
    assert kit.count("approvals", "workspace_id = :ws", ws=ws.id) == before
    assert git(ws.repos[0].worktree, "rev-list", "--count", "HEAD") == "1"


def test_a_switched_branch_refuses_the_commit(kit: Kit, ws: Workspace) -> None:
    wt = ws.repos[0].worktree
    git(wt, "switch", "-q", "-c", "other")
    status = kit.flow().status(ws, "api")
    assert any("on branch other" in line and ws.branch in line for line in status)
    with pytest.raises(KanbanError, match=f"switch back \\(git switch {re.escape(ws.branch)}\\)"):
        kit.flow().request_commit(ws, kit.caller(), "api", message=None, scope=None)

    # also when the switch happens between the card and the confirmation
    git(wt, "switch", "-q", ws.branch)
    flow = kit.flow()
    card = flow.request_commit(ws, kit.caller(), "api", message=None, scope=None)
    git(wt, "switch", "-q", "other")
    with pytest.raises(KanbanError):
        confirm(flow, kit, card)
    assert git(wt, "rev-parse", "other") == git(wt, "rev-parse", ws.branch)


# --- push -----------------------------------------------------------------------------------


def test_push_reaches_the_remote_only_after_confirmation(kit: Kit, ws: Workspace) -> None:
    commit_all(kit, ws, "api")
    before = remote_heads(kit.api_remote)
    flow = kit.flow()

    card = flow.request_push(ws, kit.caller(), "api", force_with_lease=False)

    assert card.approval.kind is ApprovalKind.CONFIRM
    assert any("Push 1 commit(s)" in line for line in card.lines)
    assert remote_heads(kit.api_remote) == before
    with pytest.raises(ApprovalRefused):
        confirm(flow, kit, card, principal="telegram:2", name="bob", may_approve=True)
    assert remote_heads(kit.api_remote) == before

    confirm(flow, kit, card)

    local = git(ws.repos[0].worktree, "rev-parse", "HEAD")
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == local
    assert f"refs/heads/{ws.branch}" not in remote_heads(kit.web_remote)
    assert ("push", "ok") in kit.audit_ops(ws.id)
    with pytest.raises(PushRefused, match="nothing to push"):
        flow.request_push(ws, kit.caller(), "api", force_with_lease=False)


def test_a_protected_branch_is_never_pushed(kit: Kit, ws: Workspace) -> None:
    commit_all(kit, ws, "api")
    kit.configure(protected_branches=("main", "kanban/*"))
    before = remote_heads(kit.api_remote)
    with pytest.raises(PushRefused) as refused:
        kit.flow().request_push(ws, kit.caller(), "api", force_with_lease=False)
    assert refused.value.kind == "protected"
    assert remote_heads(kit.api_remote) == before


def test_non_fast_forward_then_force_with_lease_by_approval(kit: Kit, ws: Workspace) -> None:
    commit_all(kit, ws, "api")
    flow = kit.flow()
    confirm(flow, kit, flow.request_push(ws, kit.caller(), "api", force_with_lease=False))
    other = kit.tmp / "other"
    git(kit.tmp, "clone", "-q", "-b", ws.branch, str(kit.api_remote), str(other))
    theirs = commit(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", ws.branch)
    (ws.repos[0].worktree / "more.py").write_text("y = 2\n")
    commit_all(kit, ws, "api", "add more")

    card = flow.request_push(ws, kit.caller(), "api", force_with_lease=False)
    with pytest.raises(PushRejected) as rejected:
        confirm(flow, kit, card)
    assert rejected.value.kind == "non_fast_forward"
    assert "remote has new commits" in str(rejected.value)
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == theirs
    assert ("push", "failed") in kit.audit_ops(ws.id)

    force = flow.request_push(ws, kit.caller(), "api", force_with_lease=True)
    assert force.approval.kind is ApprovalKind.APPROVAL
    assert force.approval.args["lease"] == theirs
    assert "FORCE" in force.lines[0]
    with pytest.raises(ApprovalRefused, match="approver"):
        confirm(flow, kit, force)
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == theirs

    confirm(flow, kit, force, principal="telegram:2", name="bob", may_approve=True)

    ours = git(ws.repos[0].worktree, "rev-parse", "HEAD")
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == ours


def test_a_lease_is_checked_again_at_execution(kit: Kit, ws: Workspace) -> None:
    commit_all(kit, ws, "api")
    flow = kit.flow()
    confirm(flow, kit, flow.request_push(ws, kit.caller(), "api", force_with_lease=False))
    other = kit.tmp / "other"
    git(kit.tmp, "clone", "-q", "-b", ws.branch, str(kit.api_remote), str(other))
    commit(other, "theirs.txt", "theirs\n")
    git(other, "push", "-q", "origin", ws.branch)
    (ws.repos[0].worktree / "more.py").write_text("y = 2\n")
    commit_all(kit, ws, "api", "add more")
    force = flow.request_push(ws, kit.caller(), "api", force_with_lease=True)
    newer = commit(other, "again.txt", "again\n")  # the remote moves after the approval card
    git(other, "push", "-q", "origin", ws.branch)

    with pytest.raises(PushRejected, match="moved since the approval"):
        confirm(flow, kit, force, principal="telegram:2", name="bob", may_approve=True)
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == newer


# --- pull requests --------------------------------------------------------------------------


def _rest_pr(
    ws: Workspace, number: int, state: str = "open", head: str | None = None
) -> dict[str, Any]:
    return {
        "number": number,
        "html_url": f"https://github.com/o/api/pull/{number}",
        "state": state,
        "merged_at": None,
        "head": {"ref": head or ws.branch},
        "base": {"ref": "main"},
        "title": f"PR {number}",
    }


def test_pr_through_rest_pushes_only_after_confirmation(
    kit: Kit, ws: Workspace, github: FakeGitHub
) -> None:
    kit.configure(github=GitHubConfig(use="rest", api_base=github.url))
    github.routes[("POST", "/api/v3/repos/o/api/pulls")] = (201, _rest_pr(ws, 7))
    commit_all(kit, ws, "api")
    before = remote_heads(kit.api_remote)
    flow = kit.flow({"GITHUB_TOKEN": TOKEN})

    card = flow.request_pr(ws, kit.caller(), "api", title=None, draft=True)

    assert card.approval.kind is ApprovalKind.CONFIRM
    assert card.lines[0].startswith("Push 1 commit(s)")
    assert remote_heads(kit.api_remote) == before
    assert [(s.method, s.path) for s in github.seen] == [("GET", "/api/v3/rate_limit")]

    lines = confirm(flow, kit, card)

    assert lines[-1] == "opened PR #7: https://github.com/o/api/pull/7"
    assert git(kit.api_remote, "rev-parse", f"refs/heads/{ws.branch}") == git(
        ws.repos[0].worktree, "rev-parse", "HEAD"
    )
    post = github.seen[-1]
    assert (post.method, post.path) == ("POST", "/api/v3/repos/o/api/pulls")
    assert post.body["head"] == ws.branch
    assert post.body["base"] == "main"
    assert post.body["title"] == "Add login"
    assert post.body["draft"] is True
    assert "web" in post.body["body"]  # the other repo of the workspace is named
    repo = kit.get(ws).repo("api")
    assert repo is not None
    assert (repo.pr_number, repo.pr_state) == (7, "open")
    assert any("PR #7" in line for line in flow.status(kit.get(ws), "api"))
    ops = kit.audit_ops(ws.id)
    assert ("pr", "requested") in ops
    assert ("push", "ok") in ops
    assert ("pr", "ok") in ops


def test_pr_through_the_gh_cli(kit: Kit, ws: Workspace, tmp_path: Path) -> None:
    shim = install_gh_shim(tmp_path / "bin")
    kit.configure(github=GitHubConfig(use="gh"))
    url = "https://github.com/o/api/pull/9"
    shim.answer("auth status", stdout="Logged in\n")
    shim.answer("pr create", stdout=f"Creating pull request…\n{url}\n")
    shim.answer(
        "pr view",
        stdout={
            "number": 9,
            "url": url,
            "state": "OPEN",
            "headRefName": ws.branch,
            "baseRefName": "main",
            "title": "Add login",
        },
    )
    commit_all(kit, ws, "api")
    flow = kit.flow({"KANBAN_GH": str(shim.path)})
    before = remote_heads(kit.api_remote)

    card = flow.request_pr(ws, kit.caller(), "api", title=None, draft=False)
    assert [c["argv"][:2] for c in shim.calls] == [["auth", "status"]]
    assert remote_heads(kit.api_remote) == before
    confirm(flow, kit, card)

    create = next(c for c in shim.calls if c["argv"][:2] == ["pr", "create"])
    argv = create["argv"]
    assert argv[argv.index("--repo") + 1] == "o/api"
    assert argv[argv.index("--head") + 1] == ws.branch
    assert argv[argv.index("--base") + 1] == "main"
    assert os.path.realpath(create["cwd"]) == os.path.realpath(ws.repos[0].worktree)
    assert kit.get(ws).repo("api").pr_url == url  # type: ignore[union-attr]


@pytest.mark.parametrize("answer", ["missing", "exit4"])
def test_gh_trouble_is_reported_before_any_push(
    kit: Kit, ws: Workspace, tmp_path: Path, answer: str
) -> None:
    kit.configure(github=GitHubConfig(use="gh"))
    if answer == "missing":
        environ = {"KANBAN_GH": str(tmp_path / "no-such-dir" / "gh")}
        expected: type[Exception] = GhMissing
        message = "gh is not installed"
    else:
        shim: Shim = install_gh_shim(tmp_path / "bin")
        shim.answer("auth status", rc=4, stderr="You are not logged into any GitHub hosts.\n")
        environ = {"KANBAN_GH": str(shim.path)}
        expected, message = KanbanError, "gh is not logged in"
    commit_all(kit, ws, "api")
    before = remote_heads(kit.api_remote)
    approvals_before = kit.count("approvals", "workspace_id = :ws", ws=ws.id)

    with pytest.raises(expected, match=message):
        kit.flow(environ).request_pr(ws, kit.caller(), "api", title=None, draft=False)

    assert remote_heads(kit.api_remote) == before
    assert kit.count("approvals", "workspace_id = :ws", ws=ws.id) == approvals_before


def test_attach_checks_the_head_and_prefers_open_prs(
    kit: Kit, ws: Workspace, github: FakeGitHub
) -> None:
    kit.configure(github=GitHubConfig(use="rest", api_base=github.url))
    github.routes[("GET", "/api/v3/repos/o/api/pulls/12")] = (
        200,
        _rest_pr(ws, 12, head="someone-else"),
    )
    github.routes[("GET", "/api/v3/repos/o/api/pulls")] = (
        200,
        [_rest_pr(ws, 14, "closed"), _rest_pr(ws, 3, "open")],
    )
    flow = kit.flow({"GITHUB_TOKEN": TOKEN})
    url12 = "https://github.com/o/api/pull/12"

    with pytest.raises(ValidationError, match="--force-attach"):
        flow.request_attach(ws, kit.caller(), "api", ref=url12, force_attach=False)
    forced = flow.request_attach(ws, kit.caller(), "api", ref="#12", force_attach=True)
    assert forced.approval.args["number"] == 12

    card = flow.request_attach(ws, kit.caller(), "api", ref=None, force_attach=False)
    assert card.approval.args["number"] == 3
    assert kit.get(ws).repo("api").pr_number is None  # type: ignore[union-attr]
    confirm(flow, kit, card)
    repo = kit.get(ws).repo("api")
    assert repo is not None
    assert (repo.pr_number, repo.pr_state) == (3, "open")
    assert ("attach", "ok") in kit.audit_ops(ws.id)


# --- scripts --------------------------------------------------------------------------------


def test_only_configured_scripts_run_in_their_worktree(kit: Kit, ws: Workspace) -> None:
    where = (sys.executable, "-c", "import os; print(os.getcwd())")
    kit.configure(
        repos={
            "api": RepoConfig("api", kit.api, scripts={"where": where}, github_repo="o/api"),
            "web": RepoConfig("web", kit.web, github_repo="o/web"),
        }
    )
    flow = kit.flow({"PATH": os.environ["PATH"]})

    code, output = flow.run_script(ws, kit.caller(), "api", "where")

    assert code == 0
    assert os.path.realpath(output.strip()) == os.path.realpath(ws.repos[0].worktree)
    for name in ("rm -rf /", "rm", "where; rm -rf /"):
        with pytest.raises(ValidationError, match="not a configured script"):
            flow.run_script(ws, kit.caller(), "api", name)
    with pytest.raises(ValidationError, match="not a configured script"):
        flow.run_script(ws, kit.caller(), "web", "where")
    with pytest.raises(WhichRepo):
        flow.run_script(ws, kit.caller(), None, "where")
    assert ("run", "ok") in kit.audit_ops(ws.id)


def test_a_script_past_its_timeout_is_stopped_with_its_children(kit: Kit, ws: Workspace) -> None:
    spawn_child = (
        sys.executable,
        "-c",
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "time.sleep(600)\n",
    )
    kit.configure(
        script_timeout_seconds=1,
        repos={
            "api": RepoConfig("api", kit.api, scripts={"hang": spawn_child}, github_repo="o/api"),
            "web": RepoConfig("web", kit.web, github_repo="o/web"),
        },
    )

    code, output = kit.flow({"PATH": os.environ["PATH"]}).run_script(
        ws, kit.caller(), "api", "hang"
    )

    assert code == -1
    assert "timed out" in output
    child = int((ws.repos[0].worktree / "child.pid").read_text())
    wait_for(lambda: not alive(child), 10, "the script's child to be stopped")


def test_force_with_lease_of_a_branch_the_remote_lacks_is_refused_at_once(
    kit: Kit, ws: Workspace
) -> None:
    commit_all(kit, ws, "api")
    with pytest.raises(PushRefused, match="without --force-with-lease"):
        kit.flow().request_push(ws, kit.caller(), "api", force_with_lease=True)
    assert kit.count("approvals", "op = 'push'") == 0
