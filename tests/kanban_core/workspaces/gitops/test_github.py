"""Remote URL and PR-ref parsing, the REST route against a fake GitHub, the gh route via a shim."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core.workspaces.gitops.github import (
    GhCli,
    GitHubRest,
    PullRequest,
    RemoteRepo,
    choose_attach,
    parse_pr_ref,
    parse_remote_url,
    remote_url,
)
from kanban_core.workspaces.gitops.runner import GitOpError
from tests.gitrepos import TOKEN, FakeGitHub, Shim, fake_github, install_gh_shim, path_with
from tests.kanban_core.workspaces.gitops.conftest import BRANCH, Workspace

REPO = RemoteRepo("github.com", "o", "r")


def rest_pr(number: int, state: str = "open", merged: bool = False) -> dict[str, Any]:
    return {
        "number": number,
        "html_url": f"https://github.com/o/r/pull/{number}",
        "state": state,
        "merged_at": "2024-01-01T00:00:00Z" if merged else None,
        "head": {"ref": BRANCH, "label": f"o:{BRANCH}"},
        "base": {"ref": "main"},
        "title": f"PR {number}",
    }


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as fake:
        yield fake


@pytest.fixture
def gh_shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Shim:
    shim = install_gh_shim(tmp_path / "bin")
    monkeypatch.setenv("PATH", path_with(shim.dir))
    return shim


def gh_pr(number: int, state: str = "OPEN") -> dict[str, Any]:
    return {
        "number": number,
        "url": f"https://github.com/o/r/pull/{number}",
        "state": state,
        "headRefName": BRANCH,
        "baseRefName": "main",
        "title": f"PR {number}",
    }


# --- URL and reference parsing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/o/r.git", REPO),
        ("https://github.com/o/r", REPO),
        ("https://github.com/o/r/", REPO),
        (f"https://x-access-token:{TOKEN}@github.com/o/r.git", REPO),
        ("git@github.com:o/r.git", REPO),
        ("ssh://git@github.com/o/r.git", REPO),
        ("ssh://git@GitHub.com:22/o/r.git", REPO),
        (
            "https://ghe.example.com:8443/team/svc.git",
            RemoteRepo("ghe.example.com:8443", "team", "svc"),
        ),
        ("git@ghe.example.com:team/my.repo.git", RemoteRepo("ghe.example.com", "team", "my.repo")),
    ],
)
def test_parse_remote_url(url: str, expected: RemoteRepo) -> None:
    assert parse_remote_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "/srv/git/r.git",
        "../r.git",
        "file:///srv/git/r.git",
        "https://gitlab.com/group/sub/r.git",
        "https://github.com/o",
        "C:\\repos\\r",
        "https://github.com:99999/o/r.git",
        f"https://u:{TOKEN}@github.com/only-owner",
    ],
)
def test_parse_remote_url_refuses_what_is_not_a_github_repo(url: str) -> None:
    with pytest.raises(GitOpError, match="not a GitHub remote") as err:
        parse_remote_url(url)
    assert TOKEN not in str(err.value)


def test_remote_url_of_a_worktree(workspace: Workspace) -> None:
    assert remote_url(workspace.path, "origin") == str(workspace.remote)
    with pytest.raises(GitOpError, match="not a GitHub remote"):
        parse_remote_url(remote_url(workspace.path, "origin"))
    with pytest.raises(GitOpError, match="no remote named 'upstream'"):
        remote_url(workspace.path, "upstream")


@pytest.mark.parametrize(
    "text",
    [
        "12",
        "#12",
        " 12 ",
        "https://github.com/o/r/pull/12",
        "https://github.com/O/R/pull/12/files",
        "https://github.com/o/r/pull/12#issuecomment-1",
    ],
)
def test_parse_pr_ref(text: str) -> None:
    assert parse_pr_ref(text, REPO) == 12


@pytest.mark.parametrize(
    "text", ["", "twelve", "#", "0", "#-3", "https://github.com/o/r/issues/12", "12abc"]
)
def test_parse_pr_ref_refuses_garbage(text: str) -> None:
    with pytest.raises(GitOpError):
        parse_pr_ref(text, REPO)


def test_parse_pr_ref_refuses_another_repository() -> None:
    with pytest.raises(GitOpError, match="belongs to o/other, not o/r"):
        parse_pr_ref("https://github.com/o/other/pull/12", REPO)
    with pytest.raises(GitOpError):
        parse_pr_ref("https://ghe.example.com/o/r/pull/12", REPO)
    assert parse_pr_ref("https://github.com/o/other/pull/12") == 12


def pr(number: int, state: str) -> PullRequest:
    return PullRequest(number, f"https://github.com/o/r/pull/{number}", state, BRANCH, "main", "t")


def test_choose_attach_prefers_open_then_newest() -> None:
    assert choose_attach([pr(15, "closed"), pr(12, "open"), pr(20, "merged")]) == pr(12, "open")
    assert choose_attach([pr(3, "open"), pr(9, "open")]) == pr(9, "open")
    assert choose_attach([pr(3, "closed"), pr(5, "merged")]) == pr(5, "merged")
    assert choose_attach([]) is None


# --- REST ---------------------------------------------------------------------------------------


def test_rest_create_posts_the_pull_request(github: FakeGitHub) -> None:
    github.routes[("POST", "/api/v3/repos/o/r/pulls")] = (201, rest_pr(7))
    made = GitHubRest(github.url, TOKEN).create(
        REPO, head=BRANCH, base="main", title="Fix login", body="Body\n\nTask: t42", draft=True
    )
    assert made == PullRequest(7, "https://github.com/o/r/pull/7", "open", BRANCH, "main", "PR 7")
    [req] = github.seen
    assert (req.method, req.path) == ("POST", "/api/v3/repos/o/r/pulls")
    assert req.body == {
        "head": BRANCH,
        "base": "main",
        "title": "Fix login",
        "body": "Body\n\nTask: t42",
        "draft": True,
    }
    assert req.headers["Authorization"] == f"Bearer {TOKEN}"
    assert req.headers["Accept"] == "application/vnd.github+json"


def test_rest_get_and_list(github: FakeGitHub) -> None:
    github.routes[("GET", "/api/v3/repos/o/r/pulls/5")] = (200, rest_pr(5, "closed", merged=True))
    github.routes[("GET", "/api/v3/repos/o/r/pulls")] = (200, [rest_pr(4, "closed"), rest_pr(6)])
    host = GitHubRest(github.url + "/", TOKEN)
    assert host.get(REPO, 5).state == "merged"
    listed = host.list_for_head(REPO, BRANCH)
    assert [(p.number, p.state) for p in listed] == [(4, "closed"), (6, "open")]
    assert choose_attach(listed) == listed[1]
    assert github.seen[-1].query == {"state": ["all"], "head": [f"o:{BRANCH}"], "per_page": ["100"]}


@pytest.mark.parametrize("status", [401, 403])
def test_rest_token_rejected_never_echoes_the_token(github: FakeGitHub, status: int) -> None:
    github.routes[("POST", "/api/v3/repos/o/r/pulls")] = (status, {"message": "Bad credentials"})
    with pytest.raises(GitOpError, match="GitHub token rejected") as err:
        GitHubRest(github.url, TOKEN).create(
            REPO, head=BRANCH, base="main", title="t", body="", draft=False
        )
    assert TOKEN not in str(err.value)
    assert TOKEN not in repr(GitHubRest(github.url, TOKEN))


def test_rest_422_carries_githubs_message(github: FakeGitHub) -> None:
    github.routes[("POST", "/api/v3/repos/o/r/pulls")] = (
        422,
        {
            "message": "Validation Failed",
            "errors": [
                {
                    "resource": "PullRequest",
                    "code": "custom",
                    "message": f"A pull request already exists for o:{BRANCH}.",
                }
            ],
        },
    )
    with pytest.raises(GitOpError) as err:
        GitHubRest(github.url, TOKEN).create(
            REPO, head=BRANCH, base="main", title="t", body="", draft=False
        )
    assert str(err.value) == (
        f"GitHub refused: Validation Failed: A pull request already exists for o:{BRANCH}."
    )


def test_rest_check(github: FakeGitHub) -> None:
    with pytest.raises(GitOpError, match="no GitHub token configured"):
        GitHubRest(github.url, None).check()
    with pytest.raises(GitOpError, match="GitHub token rejected"):
        GitHubRest(github.url, "wrong").check()
    github.routes[("GET", "/api/v3/rate_limit")] = (200, {"resources": {}})
    GitHubRest(github.url, TOKEN).check()
    assert github.seen[-1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_rest_unreachable_is_an_explicit_error(github: FakeGitHub) -> None:
    dead = "http://127.0.0.1:9/api"  # the discard port: nothing listens there
    with pytest.raises(GitOpError, match="cannot reach the GitHub API"):
        GitHubRest(dead, TOKEN, timeout=5).get(REPO, 1)


# --- gh CLI -------------------------------------------------------------------------------------


def test_gh_create_runs_argv_with_a_body_file_then_views(wt: Path, gh_shim: Shim) -> None:
    url = "https://github.com/o/r/pull/9"
    gh_shim.answer("pr create", stdout=f"Creating pull request…\n{url}\n")
    gh_shim.answer("pr view", stdout=gh_pr(9))
    made = GhCli(wt).create(
        REPO, head=BRANCH, base="main", title="--title-like", body="B\nody", draft=True
    )
    assert made == PullRequest(9, url, "open", BRANCH, "main", "PR 9")
    create, view = gh_shim.calls
    body_file = create["argv"][create["argv"].index("--body-file") + 1]
    assert create["argv"] == [
        "pr",
        "create",
        "--repo",
        "o/r",
        "--head",
        BRANCH,
        "--base",
        "main",
        "--title",
        "--title-like",
        "--body-file",
        body_file,
        "--draft",
    ]
    assert create["body"] == "B\nody"
    assert not Path(body_file).exists()  # the temporary body file is cleaned up
    assert Path(create["cwd"]) == wt.resolve()
    assert create["env"] == {
        "GH_PROMPT_DISABLED": "1",
        "GH_NO_UPDATE_NOTIFIER": "1",
        "NO_COLOR": "1",
    }
    assert view["argv"] == [
        "pr",
        "view",
        url,
        "--json",
        "number,url,state,headRefName,baseRefName,title",
    ]


def test_gh_for_an_enterprise_host_names_it(wt: Path, gh_shim: Shim) -> None:
    gh_shim.answer("pr view", stdout=gh_pr(3, "MERGED"))
    got = GhCli(wt).get(RemoteRepo("ghe.example.com", "o", "r"), 3)
    assert got.state == "merged"
    assert gh_shim.calls[0]["argv"][:5] == ["pr", "view", "3", "--repo", "ghe.example.com/o/r"]


def test_gh_list_for_head(wt: Path, gh_shim: Shim) -> None:
    gh_shim.answer("pr list", stdout=[gh_pr(2, "CLOSED"), gh_pr(4, "OPEN")])
    listed = GhCli(wt).list_for_head(REPO, BRANCH)
    assert choose_attach(listed) == listed[1]
    assert gh_shim.calls[0]["argv"][:9] == [
        "pr",
        "list",
        "--repo",
        "o/r",
        "--state",
        "all",
        "--head",
        BRANCH,
        "--limit",
    ]


def test_gh_exit_4_means_not_logged_in(wt: Path, gh_shim: Shim) -> None:
    gh_shim.answer(
        "pr create", rc=4, stderr="To get started with GitHub CLI, please run:  gh auth login\n"
    )
    with pytest.raises(GitOpError, match=r"^gh is not logged in"):
        GhCli(wt).create(REPO, head=BRANCH, base="main", title="t", body="", draft=False)
    assert len(gh_shim.calls) == 1


def test_gh_check(wt: Path, gh_shim: Shim) -> None:
    gh_shim.answer("auth status", rc=1, stderr="You are not logged into any GitHub hosts.\n")
    with pytest.raises(GitOpError, match=r"^gh is not logged in"):
        GhCli(wt).check()
    gh_shim.answer("auth status", stdout="github.com\n  ✓ Logged in to github.com\n")
    GhCli(wt).check()
    assert [c["argv"] for c in gh_shim.calls] == [["auth", "status"], ["auth", "status"]]


def test_gh_missing(wt: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(GitOpError, match=r"^gh is not installed$"):
        GhCli(wt).check()


def test_gh_other_failures_and_garbage_are_explicit(wt: Path, gh_shim: Shim) -> None:
    gh_shim.answer(
        "pr view",
        rc=1,
        stderr="GraphQL: Could not resolve to a PullRequest (repository.pullRequest)\n",
    )
    with pytest.raises(GitOpError, match=r"^gh pr view failed: GraphQL: Could not resolve"):
        GhCli(wt).get(REPO, 404)
    gh_shim.answer("pr view", stdout="not json")
    with pytest.raises(GitOpError, match="unexpected output"):
        GhCli(wt).get(REPO, 1)
