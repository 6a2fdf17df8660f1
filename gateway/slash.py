"""The slash commands every adapter offers, their aliases, and how a typed word is normalised.

Telegram allows only ``[a-z0-9_]`` in command names, so the menu uses underscore forms and
every adapter accepts both (``/new-session`` and ``/new_session``); ``@BotName`` suffixes are
stripped. A word that is not a command may be a repository slug (``/api diff``) — the router
decides that, since only it knows the chat's workspace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlashCommand:
    """One command: its canonical (hyphen) name, a menu description, and its aliases."""

    name: str
    description: str
    aliases: tuple[str, ...] = ()
    #: Its answer is for the sender alone: a platform that can say so (Discord's ephemeral
    #: replies) shows it to nobody else.
    private: bool = False

    @property
    def menu_name(self) -> str:
        """The name as Telegram's menu allows it (no hyphens)."""
        return self.name.replace("-", "_")


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("kanban", "Run a kanban board command, e.g. /kanban list"),
    SlashCommand("ws", "Workspaces: new, list, show, use, rename, pin, archive, delete"),
    SlashCommand("new-session", "Start a new agent session in this chat's workspace"),
    SlashCommand("follow-up", "Send the agent a message (queued while it is running)"),
    SlashCommand("summary", "What the agent did and what changed"),
    SlashCommand("run", "Run a script configured for the repository, e.g. /run test"),
    SlashCommand("git-status", "Branch, ahead/behind and changed files", ("gs",)),
    SlashCommand("diff", "The workspace's changes (a file past the chat budget)"),
    SlashCommand("commit", "Commit the workspace's changes (asks to confirm)"),
    SlashCommand("push", "Push the workspace branch (asks to confirm)"),
    SlashCommand("pr", "Open a pull request (asks to confirm)"),
    SlashCommand("attach", "Attach an existing pull request"),
    SlashCommand("stop", "Stop the agent's current run"),
    SlashCommand("queue", "Queued follow-ups: show, run the next, clear"),
    SlashCommand("set-active-repo", "Choose the repository commands apply to", ("repo",)),
    SlashCommand("sessions", "List this workspace's sessions; switch with /sessions use"),
    SlashCommand("approve", "Approve or confirm a pending request"),
    SlashCommand("deny", "Refuse a pending request, or an agent's permission request (p12)"),
    SlashCommand("allow", "Allow an agent's permission request, e.g. /allow p12 [--run]"),
)

_BY_NAME: dict[str, str] = {}
for _command in SLASH_COMMANDS:
    for _word in (_command.name, _command.menu_name, *_command.aliases):
        _BY_NAME[_word] = _command.name


def chat_menu(extra: Iterable[SlashCommand] = ()) -> tuple[SlashCommand, ...]:
    """The commands platforms list in their menus: the shared ones, then ``extra`` (the
    surfaces' own, e.g. ``/web``) unless a shared command already has the name."""
    taken = set(_BY_NAME)
    added = tuple(command for command in extra if command.name not in taken)
    return SLASH_COMMANDS + tuple({command.name: command for command in added}.values())


def normalize_word(word: str) -> str:
    """``/New_Session@MyBot`` → ``new-session``: no slash, no bot suffix, lower, hyphen form."""
    word = word.strip().removeprefix("/").split("@", 1)[0].lower()
    return word.replace("_", "-")


def canonical(word: str) -> str | None:
    """The canonical command a typed word names, or None (it may be a repository slug)."""
    normal = normalize_word(word)
    return _BY_NAME.get(normal) or _BY_NAME.get(normal.replace("-", "_"))
