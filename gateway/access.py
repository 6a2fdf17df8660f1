"""Who may do what from chat: users mapped by stable platform id to roles; deny by default."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.messages import ChatUser


class Role(enum.IntEnum):
    """Roles in increasing power; each includes the ones below."""

    VIEWER = 1  # read verbs
    OPERATOR = 2  # create, comment, block, unblock, assign, complete; workspaces, git requests
    APPROVER = 3  # also approves high-risk requests (force push, delete with unsaved work)
    ADMIN = 4  # archive, gc, dispatch, reclaim, audit, others' subscriptions


#: The least role each chat verb needs. Verbs not listed are not offered in chat at all.
VERB_ROLES: dict[str, Role] = {
    **dict.fromkeys(
        (
            "list",
            "ls",
            "show",
            "stats",
            "runs",
            "tail",
            "watch",
            "assignees",
            "context",
            "log",
            "status",
            "notify-list",
            "progress",  # this chat's live progress on or off (watch turns it on)
            "permissions",
            "help",
            "ws",  # each subcommand has its own role: WS_ROLES
        ),
        Role.VIEWER,
    ),
    **dict.fromkeys(
        (
            "create",
            "edit",
            "assign",
            "comment",
            "link",
            "unlink",
            "complete",
            "block",
            "unblock",
            "accept",
            "notify-subscribe",
            "notify-unsubscribe",
            "allow",  # answering an agent's permission request
            "deny",
        ),
        Role.OPERATOR,
    ),
    **dict.fromkeys(("archive", "gc", "dispatch", "reclaim", "audit"), Role.ADMIN),
}
#: The least role each ``ws`` subcommand needs. Requests for push, PR or delete need only the
#: operator role: they do nothing until confirmed (by the requester) or approved (an approver).
WS_ROLES: dict[str, Role] = {
    **dict.fromkeys(
        ("list", "show", "sessions", "summary", "status", "diff", "queue"), Role.VIEWER
    ),
    **dict.fromkeys(
        (
            "new",
            "use",
            "rename",
            "pin",
            "unpin",
            "archive",
            "unarchive",
            "new-session",
            "follow-up",
            "stop",
            "run",
            "commit",
            "push",
            "pr",
            "attach",
            "repo",
            "delete",
            "approve",
            "deny",
        ),
        Role.OPERATOR,
    ),
}
#: Options that raise a verb's role: re-placing a task (``edit --host``) is an admin's act.
ADMIN_OPTIONS: dict[str, frozenset[str]] = {
    "edit": frozenset({"--host", "--label", "--any-host"}),
}
#: Verbs that make no sense from chat: a claim owned by a chat message, a worker's heartbeat,
#: or processes on the gateway's own machine.
CHAT_REFUSED = frozenset({"claim", "heartbeat", "init", "mcp", "worker", "gateway"})


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """The role of each known user (``platform:user_id``); everyone else is refused."""

    users: Mapping[str, Role] = field(default_factory=dict)
    console_role: Role = Role.ADMIN
    # Who may answer an agent's permission request (config: permissions.answer_role).
    answer_role: Role = Role.OPERATOR

    def needed(
        self,
        verb: str | None,
        sub: str | None,
        action: str | None,
        words: Sequence[str] = (),
    ) -> Role | None:
        """The role a command needs from chat here; None: not offered in chat."""
        if verb in ANSWER_VERBS:
            return self.answer_role
        return required_role(verb, sub, action, words)

    def role_of(self, user: ChatUser) -> Role | None:
        """The user's role, or None (refused)."""
        if user.platform == "console":
            # The console is whoever can type into the gateway's own terminal: the operator.
            return self.console_role
        return self.users.get(user.key)


#: Verbs that answer an agent's permission request.
ANSWER_VERBS = frozenset({"allow", "deny"})

#: ``ws queue`` actions that change something (the rest only show the queue).
QUEUE_WRITES = frozenset({"run", "clear"})


def required_role(
    verb: str | None,
    sub: str | None = None,
    action: str | None = None,
    words: Sequence[str] = (),
) -> Role | None:
    """The role a verb (and ``ws`` subcommand) needs from chat; None: not offered in chat.

    ``action`` is the word after the subcommand (``ws queue run``): showing the queue is a
    read, running or clearing it is not. ``words`` is the whole command line: some options
    need more than the verb (``ADMIN_OPTIONS``; the parser takes no abbreviations).
    """
    if verb in ADMIN_OPTIONS and any(
        word.split("=", 1)[0] in ADMIN_OPTIONS[verb] for word in words
    ):
        return Role.ADMIN
    if verb is None:
        return Role.VIEWER  # bare /kanban: help
    if verb in CHAT_REFUSED:
        return None
    if verb == "ws":
        if sub == "queue":
            return Role.OPERATOR if action in QUEUE_WRITES else Role.VIEWER
        if sub is None:
            return Role.VIEWER
        return WS_ROLES.get(sub, Role.VIEWER)  # unknown subcommands get a usage error
    return VERB_ROLES.get(verb, Role.VIEWER)  # unknown verbs get the parser's usage error
