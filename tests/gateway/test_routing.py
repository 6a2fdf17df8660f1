"""gateway.routing: slash commands, repository prefixes and buttons onto one argv."""

from __future__ import annotations

import pytest

from gateway.routing import action_argv, command_argv, text_argv

REPOS = ("api", "web")


@pytest.mark.parametrize("word", ["start", "help", "Help@MyBot"])
def test_a_newcomers_first_words_get_the_help(word):
    assert command_argv(word, "", REPOS).argv == []


@pytest.mark.parametrize(
    ("word", "text", "argv"),
    [
        ("web", "diff src/", ["ws", "diff", "src/", "--repo", "web"]),
        ("repo:web", "gs", ["ws", "status", "--repo", "web"]),
        ("repo", "web git-status", ["ws", "status", "--repo", "web"]),
        ("repo", "web", ["ws", "repo", "web"]),
        ("set_active_repo", "--all", ["ws", "repo", "--all"]),
        ("follow-up", "fix it; rm -rf /", ["ws", "follow-up", "fix it; rm -rf /"]),
    ],
)
def test_repo_prefixes_and_free_text(word, text, argv):
    assert command_argv(word, text, REPOS).argv == argv


def test_unknown_words_and_non_commands_under_a_prefix_are_refused():
    assert "unknown command /nope" in (command_argv("nope", "", REPOS).refusal or "")
    assert command_argv("api", "kanban list", REPOS).refusal
    assert command_argv("api", "set-active-repo web", REPOS).refusal


def test_buttons_approve_deny_or_run_a_command_and_nothing_else():
    assert action_argv("ap:ap-1-x:nonce", REPOS).argv == [
        "ws", "approve", "ap-1-x", "--nonce", "nonce"
    ]  # fmt: skip
    assert action_argv("dn:ap-1-x:nonce", REPOS).argv[1] == "deny"
    assert action_argv("k:diff --ws t4", REPOS).argv == ["ws", "diff", "--ws", "t4"]
    assert action_argv("k:kanban show t4", REPOS).argv == ["show", "t4"]
    for forged in ("ap:only-an-id", "zz:whatever", "k:", ""):
        assert action_argv(forged, REPOS).refusal


def test_plain_text_is_one_argument_whatever_it_holds():
    assert text_argv('it says "quote and --flag"').argv == [
        "ws", "follow-up", 'it says "quote and --flag"'
    ]  # fmt: skip
