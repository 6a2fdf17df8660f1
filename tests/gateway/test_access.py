"""Access control: users by stable platform id, deny by default, the least role for each verb."""

from __future__ import annotations

import argparse

import pytest

from gateway.access import (
    CHAT_REFUSED,
    VERB_ROLES,
    WS_ROLES,
    AccessPolicy,
    Role,
    required_role,
)
from gateway.messages import ChatUser
from kanban_core.commands import build_parser

POLICY = AccessPolicy(users={"telegram:42": Role.OPERATOR, "slack:U7": Role.ADMIN})


def test_roles_are_ordered():
    assert Role.VIEWER < Role.OPERATOR < Role.ADMIN


def test_known_users_get_their_role_and_everyone_else_none():
    assert POLICY.role_of(ChatUser("telegram", "42", "Otto")) is Role.OPERATOR
    assert POLICY.role_of(ChatUser("slack", "U7")) is Role.ADMIN
    assert POLICY.role_of(ChatUser("telegram", "43")) is None
    assert POLICY.role_of(ChatUser("discord", "42")) is None  # same id, another platform
    assert POLICY.role_of(ChatUser("slack", "u7")) is None
    assert AccessPolicy().role_of(ChatUser("telegram", "42")) is None  # deny by default


def test_display_names_grant_nothing():
    assert POLICY.role_of(ChatUser("telegram", "999", "42")) is None
    assert POLICY.role_of(ChatUser("telegram", "999", "telegram:42")) is None


def test_the_console_is_the_local_operator_with_the_configured_role():
    console = ChatUser("console", "local", "operator")
    assert AccessPolicy().role_of(console) is Role.ADMIN
    assert AccessPolicy(console_role=Role.VIEWER).role_of(console) is Role.VIEWER


@pytest.mark.parametrize(
    ("verb", "role"),
    [
        (None, Role.VIEWER),
        ("list", Role.VIEWER),
        ("show", Role.VIEWER),
        ("tail", Role.VIEWER),
        ("watch", Role.VIEWER),
        ("create", Role.OPERATOR),
        ("complete", Role.OPERATOR),
        ("block", Role.OPERATOR),
        ("unblock", Role.OPERATOR),
        ("notify-subscribe", Role.OPERATOR),
        ("archive", Role.ADMIN),
        ("dispatch", Role.ADMIN),
        ("reclaim", Role.ADMIN),
        ("gc", Role.ADMIN),
        ("audit", Role.ADMIN),
        ("no-such-verb", Role.VIEWER),  # the parser refuses it with a usage error
    ],
)
def test_the_least_role_of_each_verb(verb, role):
    assert required_role(verb) is role


@pytest.mark.parametrize("verb", ["claim", "heartbeat", "init", "mcp", "worker", "gateway"])
def test_local_and_worker_verbs_are_not_offered_in_chat(verb):
    assert required_role(verb) is None


def test_every_verb_of_the_chat_tree_is_classified():
    """Deny by default: no verb reaches chat at the viewer role just because nobody listed it."""
    tree = build_parser(prog="/kanban", with_db_option=False, local_verbs=False)
    unclassified = set(tree.verb_parsers) - set(VERB_ROLES) - CHAT_REFUSED
    assert unclassified == set()
    assert not set(VERB_ROLES) & CHAT_REFUSED


def test_every_ws_subcommand_is_classified():
    """Deny by default for workspaces too: each ws subcommand names the role it needs."""
    tree = build_parser(prog="/kanban", with_db_option=False, local_verbs=False)
    ws = tree.verb_parsers["ws"]
    (subparsers,) = [a for a in ws._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(subparsers.choices) == set(WS_ROLES)


def test_workspace_requests_need_an_operator_and_reads_a_viewer():
    assert required_role("ws", "diff") is Role.VIEWER
    assert required_role("ws", "queue") is Role.VIEWER
    assert required_role("ws", "queue", "show") is Role.VIEWER
    assert required_role("ws", "queue", "run") is Role.OPERATOR
    assert required_role("ws", "queue", "clear") is Role.OPERATOR
    assert required_role("ws", "push") is Role.OPERATOR
    assert required_role("ws", "delete") is Role.OPERATOR
    assert Role.OPERATOR < Role.APPROVER < Role.ADMIN


@pytest.mark.parametrize(
    "words",
    [
        ["edit", "t1", "--host", "beta"],
        ["edit", "t1", "--host=beta"],
        ["edit", "t1", "--label", "gpu"],
        ["edit", "--any-host", "t1"],
    ],
)
def test_re_placing_a_task_needs_an_admin(words):
    assert required_role("edit", None, None, words) is Role.ADMIN
    assert AccessPolicy().needed("edit", None, None, words) is Role.ADMIN


def test_editing_a_tasks_fields_stays_an_operators():
    assert required_role("edit", None, None, ["edit", "t1", "--title", "x"]) is Role.OPERATOR
    assert required_role("edit", None, None, ["edit", "t1", "--body=--host x"]) is Role.OPERATOR
