"""From a chat message to an argv of the shared command tree: commands, repo prefixes, buttons.

Pure functions: the router supplies what only it knows (the chat's bound workspace's repos).
Every form of a command — hyphen or underscore, ``@BotName``, a button — lands on the same argv
and therefore the same handler and the same role check (parity test P-8).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from gateway.slash import canonical, normalize_word
from kanban_core.commands import split_command_line
from kanban_core.errors import UsageError

#: Slash commands that are ``ws`` subcommands, and the subcommand each runs.
WS_SUBCOMMANDS: dict[str, str] = {
    "new-session": "new-session",
    "follow-up": "follow-up",
    "summary": "summary",
    "run": "run",
    "git-status": "status",
    "diff": "diff",
    "commit": "commit",
    "push": "push",
    "pr": "pr",
    "attach": "attach",
    "stop": "stop",
    "queue": "queue",
    "set-active-repo": "repo",
    "sessions": "sessions",
    "approve": "approve",
    "deny": "deny",
}
#: How a permission request is named in chat: ``p12`` (as the card shows it).
PERMISSION_REF = re.compile(r"[pP][0-9]{1,18}")
#: Commands that take free text as their one argument (no shell-style splitting).
_FREE_TEXT = frozenset({"follow-up"})
#: The longest command line that is split like a shell would (shlex is quadratic in a long
#: quoted word: 16 KiB splits in ~10 ms, 1 MB took tens of seconds). Free text — follow-ups to
#: the agent — is not split and is bounded by the kernel's message limit instead.
MAX_COMMAND_CHARS = 16_384


@dataclass(frozen=True, slots=True)
class Routed:
    """The argv to run, or why there is none."""

    argv: list[str]
    refusal: str | None = None


def command_argv(word: str, text: str, repos: Collection[str]) -> Routed:
    """The argv for ``/<word> <text>``; ``repos`` are the bound workspace's repository slugs."""
    name = canonical(word)
    if name is None:
        normal = normalize_word(word)
        if normal in ("start", "help"):  # what a new Telegram user types first
            return Routed([])
        slug = normal.removeprefix("repo:") if normal.startswith("repo:") else None
        if slug is None and normal in repos:
            slug = normal
        if slug is None:
            return Routed([], f"unknown command /{normal}; try /kanban help or /ws")
        return _routed_to_repo(slug, text)
    if name == "kanban":
        return Routed(split_line(text))
    if name == "ws":
        return Routed(["ws", *split_line(text)])
    if name == "set-active-repo":
        words = split_line(text)
        if len(words) >= 2 and not words[0].startswith("-"):
            return _routed_to_repo(words[0], " ".join(_quote(w) for w in words[1:]))
        return Routed(["ws", "repo", *words])
    if name in ("allow", "deny"):
        return _answer(name, split_line(text))
    if name in _FREE_TEXT:
        return Routed(["ws", WS_SUBCOMMANDS[name], *_free_text(text)])
    return Routed(["ws", WS_SUBCOMMANDS[name], *split_line(text)])


def split_line(text: str) -> list[str]:
    """Split a command line like a shell would; a line over MAX_COMMAND_CHARS is refused."""
    if len(text) > MAX_COMMAND_CHARS:
        raise UsageError(
            f"the command is too long ({len(text):,} characters; the limit is "
            f"{MAX_COMMAND_CHARS:,})"
        )
    return split_command_line(text)


def action_argv(action: str, repos: Collection[str]) -> Routed:
    """The argv a button press runs: approve/deny a request, or a command line."""
    kind, _, rest = action.partition(":")
    if kind in ("ap", "dn"):
        request, _, nonce = rest.partition(":")
        if not request or not nonce:
            return Routed([], "this button is not valid any more")
        verb = "approve" if kind == "ap" else "deny"
        return Routed(["ws", verb, request, "--nonce", nonce])
    if kind == "k" and rest:
        word, _, text = rest.partition(" ")
        return command_argv(word, text, repos)
    return Routed([], "this button is not valid any more")


def text_argv(text: str) -> Routed:
    """A plain message in a chat bound to a workspace: a follow-up to the agent."""
    return Routed(["ws", "follow-up", text])


def _answer(name: str, words: list[str]) -> Routed:
    """``/allow p12`` and ``/deny p12`` answer an agent; ``/deny <id>`` refuses a workspace
    approval request (whose ids never look like ``p12``)."""
    if name == "allow" or (words and PERMISSION_REF.fullmatch(words[0])):
        return Routed([name, *words])
    return Routed(["ws", name, *words])


def _routed_to_repo(slug: str, text: str) -> Routed:
    try:
        words = split_line(text)
    except UsageError as exc:
        return Routed([], str(exc))
    if not words:
        return Routed(["ws", "repo", slug])
    inner = canonical(words[0])
    if inner is None or inner not in WS_SUBCOMMANDS or inner == "set-active-repo":
        return Routed([], f"/{slug} {words[0]}: not a workspace command for a repository")
    rest = " ".join(_quote(w) for w in words[1:])
    routed = command_argv(inner, rest, ())
    if routed.refusal:
        return routed
    return Routed([*routed.argv, "--repo", slug])


def _free_text(text: str) -> list[str]:
    stripped = text.strip()
    # Options before the message still work (`/follow-up --executor codex fix it`).
    if stripped.startswith("--"):
        return split_line(stripped)
    return [stripped] if stripped else []


def _quote(word: str) -> str:
    import shlex

    return shlex.quote(word)
