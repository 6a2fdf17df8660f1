"""Who a web user is: a principal of ``access.users`` (or the local console user) and its role."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.access import AccessPolicy, Role
from gateway.messages import ChatUser
from kanban_core import Actor

#: The local user's principal prefix: the same role as the gateway's own console.
LOCAL_PLATFORM = "console"


@dataclass(frozen=True, slots=True)
class WebUser:
    """A signed-in browser's user, as every route sees it."""

    principal: str
    role: Role
    session_id: int
    csrf_token: str

    @property
    def actor(self) -> Actor:
        """The identity kernel writes are recorded under (as chat does: ``name (key)``)."""
        return Actor(name=f"{self.principal.partition(':')[2]} ({self.principal})")

    @property
    def role_name(self) -> str:
        """viewer, operator, approver or admin."""
        return self.role.name.lower()


def role_of(access: AccessPolicy, principal: str) -> Role | None:
    """The principal's role now; None when it has none (no longer in ``access.users``)."""
    platform, sep, user_id = principal.partition(":")
    if not sep or not user_id:
        return None
    return access.role_of(ChatUser(platform, user_id))
