"""The worker spec carries a profile's permission policy to its supervisor; a bad one is refused."""

from __future__ import annotations

import json

import pytest

from kanban_core.dispatch.spawn import WorkerSpec
from kanban_core.errors import KanbanError
from kanban_core.permission_policy import (
    DEFAULT_POLICY,
    PathScope,
    PermissionPolicy,
    PermissionRule,
    PolicyAction,
    ToolKind,
)

TRUSTED = PermissionPolicy(
    (
        PermissionRule(
            PolicyAction.ALLOW,
            frozenset({ToolKind.EXECUTE, ToolKind.FETCH}),
            ("Bash*", "curl"),
            PathScope.WORKSPACE,
        ),
    )
).then(DEFAULT_POLICY)


def spec(**changes: object) -> WorkerSpec:
    values: dict[str, object] = {
        "task_id": 1,
        "run_id": 2,
        "db_url": "sqlite:///board.db",
        "home": "/home/kanban",
        "assignee": "coder",
        "command": ("agent",),
        "workspace": None,
        "repo": None,
        "env": {},
        "pass_env": (),
        "allow_dirty_base": False,
        "lease_ttl_s": 60,
        "max_runtime_s": None,
        "terminate_grace_s": 10,
        "log_rotate_bytes": 1024,
        "log_backups": 1,
        "failure_limit": 3,
        "backoff_base_s": 30,
        "backoff_cap_s": 1800,
    }
    return WorkerSpec(**(values | changes))  # type: ignore[arg-type]


def test_the_policy_survives_the_spec_round_trip():
    original = spec(permissions=TRUSTED.to_json())
    again = WorkerSpec.from_json(original.to_json())
    assert again == original
    assert again.profile().permissions == TRUSTED


def test_a_spec_without_a_policy_means_the_defaults():
    raw = json.loads(spec().to_json())
    del raw["permissions"]  # a spec written before policies travelled in it
    assert WorkerSpec.from_json(json.dumps(raw)).profile().permissions == DEFAULT_POLICY
    empty = spec(permissions=PermissionPolicy(()).to_json())
    assert WorkerSpec.from_json(empty.to_json()).profile().permissions == PermissionPolicy(())


@pytest.mark.parametrize(
    "rules",
    [
        [{"action": "maybe"}],
        [{"action": "allow", "kinds": ["shell"]}],
        [{"action": "allow", "paths": "home"}],
        [{"kinds": None}],
        "not a list",
    ],
)
def test_a_malformed_policy_is_a_malformed_spec(rules):
    raw = json.loads(spec().to_json())
    raw["permissions"] = {"rules": rules}
    with pytest.raises(KanbanError, match="malformed worker spec"):
        WorkerSpec.from_json(json.dumps(raw))
