"""The README documents every verb and names the command CI runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import kanban_core
from kanban_core.commands import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _verbs() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_verb_has_help_and_is_in_the_readme():
    verbs = _verbs()
    assert "create" in verbs
    assert "notify-unsubscribe" in verbs
    for name, sub in verbs.items():
        assert sub.description, f"{name} has no description"
        assert f"`{name}" in README, f"README does not document `{name}`"


def test_readme_test_command_is_what_ci_runs():
    assert "bash .ci/run" in README
    assert (ROOT / ".ci" / "run").is_file()


def test_public_api_is_sorted_and_complete():
    exported = kanban_core.__all__
    assert list(exported) == sorted(exported)
    for name in exported:
        assert hasattr(kanban_core, name), name


def test_the_readme_gives_every_default_permission_rule_and_its_reason():
    from kanban_core.permission_policy import DEFAULT_POLICY

    section = README.split("### Permission policy", 1)[1].split("\n## ", 1)[0]
    for rule in DEFAULT_POLICY.rules:
        assert f"| {rule.action} | {rule.note} |" in section, rule
