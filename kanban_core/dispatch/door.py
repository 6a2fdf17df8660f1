"""The run's door as the supervisor sees it: where its socket lives, and what serves it.

The server itself (the command tree's worker verbs on that socket) belongs to the command layer;
``kanban worker`` hands the supervisor a factory for it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from kanban_core.board.domain import RunProof
    from kanban_core.board.kanban import Kanban
    from kanban_core.dispatch.permission_tool import PermissionGate

#: Where the agent finds its socket (the path as the agent sees it).
SOCKET_ENV = "KANBAN_RUN_SOCKET"
SOCKET_NAME = "s"  # short: a Unix socket path is limited to 107 bytes
#: Where a sandboxed agent sees its run directory. Its presence also tells the CLI it runs
#: inside a worker run, whatever the environment says.
SANDBOX_RUN_DIR = "/run/kanban-run"
#: The MCP tool through which an agent asks before a tool call (see ``permission_tool``).
PERMISSION_TOOL = "kanban_permission"


class Door(Protocol):
    """A run's door: serves the run's requests on a socket until closed."""

    def start(self, directory: Path) -> Path:
        """Listen in ``directory`` (private to this user); the socket's path."""
        ...

    def close(self) -> None:
        """Stop serving and release the board."""
        ...


class DoorFactory(Protocol):
    """Makes a run's door: its proof, the acting assignee, how to open the board."""

    def __call__(
        self,
        proof: RunProof,
        actor_name: str,
        open_board: Callable[[], Kanban],
        *,
        tenant: str | None = ...,
        on_error: Callable[[str], None] = ...,
        permissions: PermissionGate | None = ...,
    ) -> Door:
        """A door for one run."""
        ...
