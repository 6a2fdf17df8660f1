"""Permission settings in config.yaml: a profile's rules, its defaults, the answering section."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from kanban_core import ValidationError
from kanban_core.config import PermissionsConfig, load_config, schema
from kanban_core.permission_policy import (
    DEFAULT_POLICY,
    PathScope,
    PermissionAsk,
    PermissionPolicy,
    PermissionRule,
    PolicyAction,
    ToolKind,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_profiles_rules_come_before_the_defaults(tmp_path):
    path = write(
        tmp_path,
        "assignees:\n"
        "  trusted:\n"
        "    command: [agent]\n"
        "    permissions:\n"
        "      - {action: allow, kind: execute, tool: 'pytest*'}\n"
        "      - {action: deny, kind: [read, search], paths: outside}\n"
        "      - {action: ask}\n",
    )
    policy = load_config(path, {}).assignees["trusted"].permissions
    mine = (
        PermissionRule(PolicyAction.ALLOW, frozenset({ToolKind.EXECUTE}), ("pytest*",)),
        PermissionRule(
            PolicyAction.DENY,
            frozenset({ToolKind.READ, ToolKind.SEARCH}),
            paths=PathScope.OUTSIDE,
        ),
        PermissionRule(PolicyAction.ASK),
    )
    assert policy == PermissionPolicy(mine).then(DEFAULT_POLICY)
    request = PermissionAsk(ToolKind.EXECUTE, "pytest -q", "run the tests")
    assert policy.decide(request, tmp_path).action is PolicyAction.ALLOW


def test_a_profile_without_rules_has_the_defaults_and_can_drop_them(tmp_path):
    path = write(
        tmp_path,
        "assignees:\n"
        "  plain:\n    command: [agent]\n"
        "  bare:\n    command: [agent]\n    permissions_defaults: false\n"
        "    permissions: [{action: deny, paths: outside}]\n",
    )
    profiles = load_config(path, {}).assignees
    assert profiles["plain"].permissions == DEFAULT_POLICY
    assert profiles["demo"].permissions == DEFAULT_POLICY
    assert profiles["bare"].permissions == PermissionPolicy(
        (PermissionRule(PolicyAction.DENY, paths=PathScope.OUTSIDE),)
    )


def test_the_permissions_section_defaults_and_values(tmp_path):
    assert load_config(write(tmp_path, "board: {}\n"), {}).permissions == PermissionsConfig(
        900, "operator"
    )
    path = write(tmp_path, "permissions:\n  ttl_seconds: 60\n  answer_role: approver\n")
    assert load_config(path, {}).permissions == PermissionsConfig(60, "approver")


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        (
            "permissions: [{action: maybe}]",
            "assignees.a.permissions.0.action: expected one of allow, ask or deny",
        ),
        (
            "permissions: [{action: ask, kind: [read, shell]}]",
            "assignees.a.permissions.0.kind.1: expected one of read, edit,",
        ),
        (
            "permissions: [{action: ask, kind: []}]",
            "assignees.a.permissions.0.kind: must not be empty",
        ),
        ("permissions: [{kind: read}]", "assignees.a.permissions.0.action: required"),
        (
            "permissions: [{action: ask, paths: home}]",
            "assignees.a.permissions.0.paths: expected one of workspace or outside",
        ),
        (
            "permissions: [{action: ask, tools: [Bash]}]",
            "assignees.a.permissions.0.tools: unknown key (did you mean tool?)",
        ),
        (
            "permissions: {action: ask}",
            "assignees.a.permissions: expected a list, got a mapping",
        ),
        ("permissions_defaults: 'no'", "assignees.a.permissions_defaults: expected true or"),
    ],
)
def test_a_bad_rule_is_one_line_naming_its_key_path(tmp_path, yaml_text, line):
    path = write(tmp_path, f"assignees:\n  a:\n    command: [agent]\n    {yaml_text}\n")
    with pytest.raises(ValidationError) as caught:
        load_config(path, {})
    [problem] = str(caught.value).splitlines()
    assert problem.startswith(f"{path}: ")
    assert line in problem


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("ttl_seconds: 9", "permissions.ttl_seconds: must be greater than or equal to 10"),
        ("answer_role: owner", "permissions.answer_role: expected one of viewer, operator,"),
        ("ttl_second: 60", "permissions.ttl_second: unknown key (did you mean ttl_seconds?)"),
    ],
)
def test_a_bad_permissions_section_names_its_key(tmp_path, yaml_text, line):
    with pytest.raises(ValidationError) as caught:
        load_config(write(tmp_path, f"permissions:\n  {yaml_text}\n"), {})
    [problem] = str(caught.value).splitlines()
    assert line in problem


def test_the_schemas_tool_kinds_are_the_policys():
    assert set(typing.get_args(schema.ToolKindName)) == {kind.value for kind in ToolKind}
