"""CommandContext: who is calling, how to reach the board, and whether a terminal is attached."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kanban_core.board.domain import Actor, TaskId, parse_task_id
from kanban_core.board.kanban import Kanban, OnMissing
from kanban_core.errors import UsageError

if TYPE_CHECKING:
    # The dispatcher and config machinery load only for the verbs that use them, keeping
    # `kanban list` a short process.
    from kanban_core.config import KanbanConfig
    from kanban_core.dispatch.dispatcher import Dispatcher


@dataclass
class CommandContext:
    """Everything a handler may use besides its arguments.

    ``open_board`` is called at most once per command, only by handlers that need the board (so
    ``--help`` and usage errors never touch the database); it receives the ``--db`` URL given
    on the command line, if any, and honours ``on_missing``: reads never create a board, only
    the verbs that declare it (``init``, ``create``) may.
    """

    actor: Actor
    open_board: Callable[[str | None], Kanban]
    environ: Mapping[str, str] = field(default_factory=dict)
    #: False in chat: streaming verbs return a bounded snapshot instead of following.
    interactive: bool = True
    sleep: Callable[[float], None] = time.sleep
    db_url: str | None = None
    #: Set from the verb before its handler runs.
    on_missing: OnMissing = OnMissing.REFUSE
    #: The gateway passes its long-lived dispatcher; the CLI makes one per command.
    dispatcher: Dispatcher | None = None
    #: Chat identity and place (set by the gateway from the platform, never from arguments):
    #: a stable principal key like ``telegram:123`` and where the message came from.
    principal: str | None = None
    place: tuple[str, str, str] | None = None  # (platform, chat id, thread id or "")
    #: The platform's delivery id, so a redelivered message does not act twice.
    source_key: str | None = None
    #: May this caller approve high-risk requests (the approver role)? A local terminal may.
    may_approve: bool = True
    #: How many characters of diff fit inline; None in a terminal (everything inline).
    chat_budget: int | None = None
    #: The caller's role as the asking side authorised it (recorded on a forwarded request).
    role: str | None = None
    #: Set when this command runs on behalf of another host's execution request: it runs here
    #: and is never forwarded again.
    exec_request: int | None = None
    _board: Kanban | None = None

    @property
    def from_chat(self) -> bool:
        """Whether a chat user sent this (the gateway sets the place; a terminal never does)."""
        return self.place is not None

    def board(self) -> Kanban:
        """The board, opened on first use."""
        if self._board is None:
            self._board = self.open_board(self.db_url)
        return self._board

    def config(self) -> KanbanConfig:
        """config.yaml as it is now (re-read on every call, so edits apply without a restart)."""
        from kanban_core.config import config_path, load_config

        settings = self.board().settings
        return load_config(config_path(self.environ, settings.home), self.environ)

    def get_dispatcher(self) -> Dispatcher:
        """The dispatcher to run a pass with."""
        from kanban_core.dispatch.dispatcher import Dispatcher
        from kanban_core.dispatch.spawn import SubprocessSpawner

        if self.dispatcher is None:
            self.dispatcher = Dispatcher(
                self.board(), config=self.config, spawner=SubprocessSpawner(self.environ)
            )
        return self.dispatcher

    def default_task(self) -> TaskId:
        """A worker's own task (``KANBAN_TASK``), for verbs whose id may be omitted."""
        if self.actor.run is not None:
            return self.actor.run.task_id
        raw = self.environ.get("KANBAN_TASK")
        if raw:
            return parse_task_id(raw)
        raise UsageError("a task id is required (or run inside a worker with KANBAN_TASK set)")
