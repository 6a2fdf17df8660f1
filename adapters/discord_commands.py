"""Discord's app command tree: every gateway slash command and alias, and verb autocomplete."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import discord
from discord import app_commands

from gateway.slash import SlashCommand

__all__ = ["DEFAULT_VERBS", "SlashHandler", "command_tree", "suggest_verbs"]

#: What ``/kanban``'s autocomplete suggests unless the config names other verbs.
DEFAULT_VERBS: Final[tuple[str, ...]] = (
    "list",
    "show",
    "create",
    "comment",
    "block",
    "unblock",
    "complete",
    "assign",
    "stats",
    "runs",
    "tail",
    "status",
    "dispatch",
    "archive",
    "context",
    "log",
)
_KANBAN: Final = "kanban"
# Discord shows at most 25 autocomplete choices and 100-character descriptions.
_MAX_CHOICES: Final = 25
_MAX_DESCRIPTION: Final = 100

#: Called with the interaction, the command word and the text typed in its ``args`` option.
SlashHandler = Callable[[discord.Interaction, str, str], Awaitable[None]]


def command_tree(
    client: discord.Client,
    menu: Sequence[SlashCommand],
    *,
    on_slash: SlashHandler,
    suggest: Callable[[str], list[str]],
) -> app_commands.CommandTree[discord.Client]:
    """One app command per menu command and alias; ``/kanban`` autocompletes with ``suggest``."""
    tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
    for slash in menu:
        tree.add_command(_app_command(slash.name, slash.description, on_slash, suggest))
        for alias in slash.aliases:
            about = f"Same as /{slash.name}: {slash.description}"
            tree.add_command(_app_command(alias, about, on_slash, suggest))
    return tree


def suggest_verbs(verbs: Sequence[str], current: str) -> list[str]:
    """Verbs starting with what the user typed, while the first word is being typed."""
    typed = current.lstrip()
    if any(ch.isspace() for ch in typed):
        return []
    prefix = typed.lower()
    return [verb for verb in verbs if verb.startswith(prefix)][:_MAX_CHOICES]


def _app_command(
    word: str,
    description: str,
    on_slash: SlashHandler,
    suggest: Callable[[str], list[str]],
) -> app_commands.Command[Any, ..., None]:
    """``/word args:…``: the interaction arrives as command ``word`` with ``args`` as text."""
    hint = "what to run, e.g. list --all" if word == _KANBAN else "the rest of the command"

    @app_commands.describe(args=hint)
    async def callback(interaction: discord.Interaction, args: str = "") -> None:
        await on_slash(interaction, word, args)

    command: app_commands.Command[Any, ..., None] = app_commands.Command(
        name=word, description=description[:_MAX_DESCRIPTION], callback=callback
    )
    if word == _KANBAN:

        async def complete_verb(
            _interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=v, value=v) for v in suggest(current)]

        command.autocomplete("args")(complete_verb)
    return command
