"""The chat menu: the shared slash commands, then the surfaces' own, never shadowing one."""

from __future__ import annotations

from gateway.slash import SLASH_COMMANDS, SlashCommand, canonical, chat_menu


def test_the_menu_is_the_shared_commands_then_the_surfaces() -> None:
    web = SlashCommand("web", "A sign-in link", private=True)
    menu = chat_menu([web])
    assert menu[: len(SLASH_COMMANDS)] == SLASH_COMMANDS
    assert menu[-1] == web
    assert chat_menu() == SLASH_COMMANDS


def test_a_surface_command_never_shadows_a_shared_one_or_repeats() -> None:
    clash = SlashCommand("gs", "not git-status")  # an alias of /git-status
    again = [SlashCommand("web", "first"), SlashCommand("web", "second")]
    menu = chat_menu([clash, *again])
    assert [c.name for c in menu].count("gs") == 0
    assert [c.description for c in menu if c.name == "web"] == ["second"]
    assert canonical("/gs") == "git-status"
