"""The permission policy: its defaults, rule order, globs, grants, and hostile paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kanban_core.permission_policy import (
    DEFAULT_POLICY,
    MAX_PATH_CHARS,
    MAX_PATHS,
    PathScope,
    PermissionAsk,
    PermissionPolicy,
    PermissionRule,
    PolicyAction,
    ToolKind,
)

ALLOW, ASK, DENY = PolicyAction.ALLOW, PolicyAction.ASK, PolicyAction.DENY


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print()\n", encoding="utf-8")
    return root


def ask(kind: str, *paths: str, tool: str = "Tool") -> PermissionAsk:
    return PermissionAsk(ToolKind(kind), tool, f"{kind} something", tuple(paths))


def decide(workspace: Path, request: PermissionAsk) -> PolicyAction:
    return DEFAULT_POLICY.decide(request, workspace).action


@pytest.mark.parametrize("kind", ["read", "search", "think", "edit", "delete", "move"])
def test_the_defaults_allow_work_inside_the_workspace(workspace, kind):
    assert decide(workspace, ask(kind, str(workspace / "src" / "app.py"))) is ALLOW
    assert decide(workspace, ask(kind, "src/new.py")) is ALLOW


@pytest.mark.parametrize("kind", ["read", "edit", "delete", "move"])
def test_the_defaults_deny_a_file_kind_outside_the_workspace(workspace, kind):
    decision = DEFAULT_POLICY.decide(ask(kind, "src/app.py", "/etc/passwd"), workspace)
    assert decision.action is DENY
    assert decision.reason.startswith("rule 3: ")
    assert "outside the workspace" in decision.reason


@pytest.mark.parametrize("kind", ["execute", "fetch", "other"])
def test_the_defaults_ask_for_commands_the_network_and_unknown_tools(workspace, kind):
    assert decide(workspace, ask(kind)) is ASK
    assert decide(workspace, ask(kind, "src")) is ASK


def test_thinking_and_searching_need_no_path_but_a_file_kind_does(workspace):
    assert decide(workspace, ask("think")) is ALLOW
    assert decide(workspace, ask("search")) is ALLOW
    for kind in ("read", "edit", "delete", "move"):
        decision = DEFAULT_POLICY.decide(ask(kind), workspace)
        assert decision.action is ASK, kind
        assert decision.reason == "no rule matched: a person decides"


def test_a_search_outside_the_workspace_is_asked_not_allowed(workspace):
    assert decide(workspace, ask("search", "/etc")) is ASK


def test_every_default_rule_says_why():
    assert len(DEFAULT_POLICY.rules) == 6
    for rule in DEFAULT_POLICY.rules:
        assert rule.note, rule


def test_the_first_matching_rule_wins_and_is_named(workspace):
    policy = PermissionPolicy(
        (
            PermissionRule(DENY, frozenset({ToolKind.EDIT}), tools=("Write",)),
            PermissionRule(ALLOW, frozenset({ToolKind.EDIT}), paths=PathScope.WORKSPACE),
            PermissionRule(DENY),
        )
    )
    assert policy.decide(ask("edit", "a.py", tool="Write"), workspace).action is DENY
    decision = policy.decide(ask("edit", "a.py", tool="Edit"), workspace)
    assert decision == decision.__class__(ALLOW, "rule 2: edit inside the workspace")
    assert policy.decide(ask("read", "a.py"), workspace).reason == "rule 3: any kind"


def test_a_profile_rule_before_the_defaults_can_allow_commands(workspace):
    trusted = PermissionPolicy(
        (PermissionRule(ALLOW, frozenset({ToolKind.EXECUTE}), tools=("pytest*",)),)
    ).then(DEFAULT_POLICY)
    assert trusted.decide(ask("execute", tool="pytest -q"), workspace).action is ALLOW
    assert trusted.decide(ask("execute", tool="rm -rf /"), workspace).action is ASK


def test_tool_globs_are_case_insensitive(workspace):
    policy = PermissionPolicy((PermissionRule(ALLOW, tools=("bash*", "Git?Status")),))
    for name in ("Bash", "BASH(ls)", "bash", "git status", "GIT-STATUS"):
        assert policy.decide(ask("execute", tool=name), workspace).action is ALLOW, name
    for name in ("zsh", "git  status", "xbash"):
        assert policy.decide(ask("execute", tool=name), workspace).action is ASK, name


def test_no_rule_means_ask(workspace):
    assert PermissionPolicy(()).decide(ask("read", "a.py"), workspace).action is ASK


def test_a_grant_allows_its_kind_and_tool_for_the_run(workspace):
    grants = [("execute", "bash")]
    decision = DEFAULT_POLICY.decide(ask("execute", tool="Bash"), workspace, grants)
    assert decision.action is ALLOW
    assert decision.reason == "granted for this run: execute with Bash"
    assert DEFAULT_POLICY.decide(ask("fetch", tool="Bash"), workspace, grants).action is ASK
    assert DEFAULT_POLICY.decide(ask("execute", tool="Bash2"), workspace, grants).action is ASK


def test_a_granted_tool_name_is_shown_on_one_line_without_escapes(workspace):
    name = "Bash\n\x1b[2Kapproved" + "x" * 100
    decision = DEFAULT_POLICY.decide(ask("execute", tool=name), workspace, [("execute", name)])
    assert decision.action is ALLOW
    shown = decision.reason.removeprefix("granted for this run: execute with ")
    assert shown.startswith("Bash??[2Kapproved")
    assert len(shown) == 80
    assert shown.isprintable()


def test_a_grant_never_reaches_outside_the_workspace_or_past_the_safety_checks(workspace):
    grants = [("edit", "Edit")]
    policy = PermissionPolicy((PermissionRule(ASK),))
    assert policy.decide(ask("edit", "a.py", tool="Edit"), workspace, grants).action is ALLOW
    outside = ask("edit", "/etc/hosts", tool="Edit")
    assert policy.decide(outside, workspace, grants).action is ASK
    no_path = ask("edit", tool="Edit")
    assert policy.decide(no_path, workspace, grants).action is ASK
    hostile = ask("edit", "a.py\n", tool="Edit")
    assert policy.decide(hostile, workspace, grants).action is DENY


@pytest.mark.parametrize(
    "path", ["../outside.txt", "src/../../outside.txt", "src/../../ws2/x", "/etc/passwd", "~/.ssh"]
)
def test_escapes_count_as_outside(workspace, path):
    assert decide(workspace, ask("read", path)) is DENY


def test_dotdot_that_stays_inside_is_inside(workspace):
    assert decide(workspace, ask("edit", "src/../README.md")) is ALLOW
    assert decide(workspace, ask("edit", f"{workspace}/src/../src/app.py")) is ALLOW


def test_a_sibling_with_the_workspace_as_prefix_is_outside(workspace):
    sibling = workspace.parent / (workspace.name + "-other")
    sibling.mkdir()
    assert decide(workspace, ask("read", str(sibling / "x"))) is DENY


def test_a_symlink_planted_in_the_workspace_pointing_outside_is_outside(workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("key\n", encoding="utf-8")
    (workspace / "innocent.txt").symlink_to(secret)
    (workspace / "etc").symlink_to("/etc")
    assert decide(workspace, ask("read", "innocent.txt")) is DENY
    assert decide(workspace, ask("read", str(workspace / "etc" / "passwd"))) is DENY
    # A relative target, and a chain of links that only its last step leads out.
    (workspace / "up").symlink_to("../..")
    (workspace / "hop").symlink_to("innocent.txt")
    assert decide(workspace, ask("read", "up/secret.txt")) is DENY
    assert decide(workspace, ask("read", "hop")) is DENY
    # A link whose target stays inside is as good as its target.
    (workspace / "alias.py").symlink_to(workspace / "src" / "app.py")
    assert decide(workspace, ask("edit", "alias.py")) is ALLOW


def test_a_new_file_under_a_symlinked_directory_resolves_through_it(workspace, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace / "out").symlink_to(elsewhere)
    assert decide(workspace, ask("edit", "out/not-yet.py")) is DENY
    assert decide(workspace, ask("edit", "out/deeper/not-yet.py")) is DENY


def test_a_workspace_reached_through_a_symlink_is_still_the_workspace(workspace, tmp_path):
    link = tmp_path / "ws-link"
    link.symlink_to(workspace)
    assert decide(link, ask("edit", str(workspace / "src" / "app.py"))) is ALLOW
    assert decide(workspace, ask("edit", str(link / "src" / "app.py"))) is ALLOW
    assert decide(link, ask("edit", "src/app.py")) is ALLOW


def test_relative_paths_are_resolved_against_the_workspace_not_the_cwd(workspace, monkeypatch):
    monkeypatch.chdir(workspace.parent)
    assert decide(workspace, ask("read", "src/app.py")) is ALLOW
    assert decide(workspace, ask("read", "ws/src/app.py")) is ALLOW  # ws/ws/src: inside, new
    assert decide(workspace, ask("read", str(workspace.parent / "x"))) is DENY


@pytest.mark.parametrize("char", ["\x00", "\n", "\r", "\x1b", "\x7f", "\x85", "\u2028"])
def test_a_control_character_in_any_path_is_denied_outright(workspace, char):
    trusting = PermissionPolicy((PermissionRule(ALLOW),))
    decision = trusting.decide(ask("read", "src/app.py", f"src/a{char}b"), workspace)
    assert decision.action is DENY
    assert decision.reason == "refused: a path contains a control character"


def test_too_many_or_too_long_paths_are_denied(workspace):
    trusting = PermissionPolicy((PermissionRule(ALLOW),))
    enough = tuple(f"f{i}" for i in range(MAX_PATHS))
    assert trusting.decide(ask("read", *enough), workspace).action is ALLOW
    assert trusting.decide(ask("read", *enough, "one-more"), workspace).action is DENY
    longest = "a" * MAX_PATH_CHARS
    assert trusting.decide(ask("read", longest), workspace).action is ALLOW
    assert trusting.decide(ask("read", longest + "a"), workspace).action is DENY


def test_an_empty_or_home_relative_path_counts_as_outside(workspace):
    # A tool may take "" as its own cwd, or expand "~": neither is provably the workspace.
    assert decide(workspace, ask("edit", "")) is DENY
    assert decide(workspace, ask("edit", "~/x")) is DENY


def test_the_policy_survives_json(workspace):
    policy = PermissionPolicy(
        (PermissionRule(ALLOW, frozenset({ToolKind.EXECUTE}), ("Bash*",), PathScope.WORKSPACE),)
    ).then(DEFAULT_POLICY)
    assert PermissionPolicy.from_json(policy.to_json()) == policy
    assert PermissionPolicy.from_json({}) == DEFAULT_POLICY
    assert PermissionPolicy.from_json({"rules": []}) == PermissionPolicy(())


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    before=st.text(max_size=20),
    control=st.characters(categories=["Cc"]),
    after=st.text(max_size=20),
    kind=st.sampled_from(list(ToolKind)),
)
def test_no_path_with_a_control_character_is_ever_allowed(workspace, before, control, after, kind):
    trusting = PermissionPolicy((PermissionRule(ALLOW),))
    request = PermissionAsk(kind, "Any", "", (before + control + after,))
    assert trusting.decide(request, workspace, [(kind.value, "Any")]).action is DENY
