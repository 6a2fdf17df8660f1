"""Branch templates, slugs, validation, parse-back and cross-repo conflicts (D-05)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kanban_core.workspaces.base import WorkspaceError, slugify
from kanban_core.workspaces.gitops import branches as br, runner
from kanban_core.workspaces.gitops.branches import (
    DEFAULT_TEMPLATE,
    SPEC_TEMPLATE,
    BranchConflict,
    BranchError,
    choose_branch,
    find_conflicts,
    parse_branch,
    render_branch,
    validate_branch,
    validate_template,
)
from kanban_core.workspaces.gitops.runner import GitOpError
from tests.gitrepos import git

D05 = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,99}$")
HOSTILE = [
    "-foo",
    "--upload-pack=x",
    "@",
    "HEAD",
    "a..b",
    "foo.lock",
    "a b",
    "x/",
    ".hidden",
    "a//b",
    "a/-b",
    "a/.b",
    "a~b",
    "a^b",
    "a:b",
    "a?b",
    "a*b",
    "a[b",
    "a\\b",
    "a\nb",
    "a\x00b",
    "Kanban/x",
    "",
    "x" * 101,
    "feature/中文",
]


def test_render_default_and_spec_templates() -> None:
    assert render_branch(DEFAULT_TEMPLATE, title="Add login!", ws_short="4f2a") == (
        "kanban/4f2a-add-login"
    )
    spec = render_branch(SPEC_TEMPLATE, title="Über Straße", spec_id="002", task_number="3")
    assert spec == "feature/task-002-3-uber-strae"


def test_a03_cjk_and_emoji_title_falls_back_to_task() -> None:
    name = render_branch(DEFAULT_TEMPLATE, title="登录功能 🚀", ws_short="4f2a")
    assert name == "kanban/4f2a-task"
    validate_branch(name)  # also passes git check-ref-format --branch


def test_slug_is_cut_at_a_word_boundary() -> None:
    title = "implement the login form with remember me and password reset"
    name = render_branch(DEFAULT_TEMPLATE, title=title, ws_short="4f2a", slug_max=20)
    assert name == "kanban/4f2a-implement-the-login"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=st.text(max_size=200),
    ws_short=st.text("0123456789abcdef", min_size=4, max_size=4),
    spec_id=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    task_number=st.from_regex(r"[0-9]{1,3}(\.[0-9]{1,2})?", fullmatch=True),
)
def test_a39_any_title_renders_a_valid_name_that_parses_back(
    title: str, ws_short: str, spec_id: str, task_number: str
) -> None:
    for template in (DEFAULT_TEMPLATE, SPEC_TEMPLATE, "{slug}-{ws_short}", "wt/{task_id}/{slug}"):
        fields = {"ws_short": ws_short, "spec_id": spec_id, "task_number": task_number}
        name = render_branch(
            template,
            title=title,
            ws_short=ws_short,
            task_id="t42",
            spec_id=spec_id,
            task_number=task_number,
        )
        assert name
        assert D05.fullmatch(name)
        assert not name.endswith(("-", "/", "."))
        assert len(name.encode()) <= 100
        parsed = parse_branch(template, name)
        assert parsed is not None
        expected = {**fields, "task_id": "t42", "slug": slugify(title)}
        assert parsed == {k: v for k, v in expected.items() if f"{{{k}}}" in template}


def test_parse_rejects_foreign_names_and_reports_a_suffix() -> None:
    assert parse_branch(DEFAULT_TEMPLATE, "main") is None
    assert parse_branch(DEFAULT_TEMPLATE, "kanban/4F2A-x") is None
    assert parse_branch(DEFAULT_TEMPLATE, "kanban/4f2a-add-login-2") == {
        "ws_short": "4f2a",
        "slug": "add-login-2",  # the suffix stays in a final slug
    }
    assert parse_branch("wt/{task_id}", "wt/t42-3") == {"task_id": "t42", "suffix": "3"}
    assert parse_branch("{nope}", "x") is None


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("kanban/{title}", "unknown"),
        ("kanban/{spec_id}", "must contain"),
        ("{ws_short}{slug}", "between fields"),
        ("{ws_short}a{slug}", "between fields"),
        ("{slug}-{slug}", "repeats"),
        ("Kanban/{slug}", "renders badly"),
        ("kanban/{slug!r}", "unknown"),
        ("kanban/{slug:>5}", "unknown"),
        ("kanban/{slug", "malformed"),
        ("-x/{slug}", "renders badly"),
        ("x" * 70 + "/{slug}", "renders badly"),
    ],
)
def test_validate_template_refuses(template: str, why: str) -> None:
    with pytest.raises(BranchError, match=re.escape(why)) as info:
        validate_template(template)
    assert "\n" not in str(info.value)


def test_validate_template_accepts_the_builtin_ones() -> None:
    for template in (DEFAULT_TEMPLATE, SPEC_TEMPLATE, "kanban/{task_id}-{slug}"):
        validate_template(template)


def test_render_refuses_field_values_that_would_break_parsing() -> None:
    with pytest.raises(BranchError, match="ws_short"):
        render_branch(DEFAULT_TEMPLATE, title="x", ws_short="")
    with pytest.raises(BranchError, match="spec_id"):
        render_branch(SPEC_TEMPLATE, title="x", spec_id="auth-login", task_number="1")


@pytest.mark.parametrize("name", HOSTILE)
def test_a04_hostile_names_never_reach_git(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(br, "run_git", lambda cwd, *args, **kw: calls.append(args))
    with pytest.raises(BranchError) as info:
        validate_branch(name)
    assert calls == []
    assert "\n" not in str(info.value)
    assert isinstance(info.value, GitOpError)
    assert isinstance(info.value, WorkspaceError)


def test_valid_names_are_also_checked_by_git(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, ...]] = []
    real = runner.run_git

    def spy(cwd: Path, *args: str, **kw: bool) -> object:
        seen.append(args)
        return real(cwd, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(br, "run_git", spy)
    validate_branch("kanban/4f2a-add-login")
    assert seen == [("check-ref-format", "--branch", "kanban/4f2a-add-login")]


def test_custom_invalid_name_is_refused_with_a_sanitized_suggestion(api: Path) -> None:
    with pytest.raises(BranchError, match=r"try 'my-feature/login-page'"):
        choose_branch("My Feature/Login Page", [("api", api)], custom=True)


def test_find_conflicts_local_remote_df_case_and_checked_out(api: Path, origin: Path) -> None:
    git(api, "branch", "taken")
    git(api, "branch", "Case/Name")
    git(api, "branch", "kanban")
    git(api, "branch", "deep/a/b")
    git(api, "push", "-q", "origin", "main:remote-only")
    git(api, "fetch", "-q", "origin")
    repos = [("api", api)]
    assert [(c.repo, c.kind) for c in find_conflicts("taken", repos)] == [("api", "local")]
    assert [c.kind for c in find_conflicts("remote-only", repos)] == ["remote"]
    assert "refs/remotes/origin/remote-only" in find_conflicts("remote-only", repos)[0].detail
    assert [c.kind for c in find_conflicts("case/name", repos)] == ["case"]
    assert [c.kind for c in find_conflicts("kanban/x", repos)] == ["df"]
    assert [c.kind for c in find_conflicts("deep/a", repos)] == ["df"]
    assert {c.kind for c in find_conflicts("main", repos)} == {"local", "remote", "checked_out"}
    assert find_conflicts("free/name", repos) == []


def test_a02_auto_name_takes_a_suffix_free_in_every_repo(api: Path, web: Path) -> None:
    git(web, "branch", "kanban/4f2a-add-login")
    git(api, "branch", "kanban/4f2a-add-login-2")  # -2 is free in web only: skip to -3
    repos = [("api", api), ("web", web)]
    assert choose_branch("kanban/4f2a-add-login", repos, custom=False) == (
        "kanban/4f2a-add-login-3"
    )


def test_a02_custom_name_conflict_names_the_repo_with_two_suggestions(api: Path, web: Path) -> None:
    git(web, "branch", "kanban/4f2a-add-login")
    repos = [("api", api), ("web", web)]
    with pytest.raises(BranchConflict) as info:
        choose_branch("kanban/4f2a-add-login", repos, custom=True)
    exc = info.value
    assert [(c.repo, c.kind) for c in exc.conflicts] == [("web", "local")]
    assert exc.suggestions == ("kanban/4f2a-add-login-2", "kanban/4f2a-add-login-3")
    assert "web" in str(exc)
    assert "api" not in str(exc).split(";")[0]
    assert "kanban/4f2a-add-login-2" in str(exc)
    for name in exc.suggestions:
        assert find_conflicts(name, repos) == []


def test_a09_df_conflict_reports_and_suggests_another_prefix(api: Path) -> None:
    git(api, "branch", "kanban")
    with pytest.raises(BranchConflict) as info:
        choose_branch("kanban/4f2a-add-login", [("api", api)], custom=False)
    assert [c.kind for c in info.value.conflicts] == ["df"]
    assert info.value.suggestions == ("kanban-4f2a-add-login", "kanban-4f2a-add-login-2")
    assert "kanban/4f2a-add-login" not in branch_names(api)


def branch_names(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads").splitlines()
