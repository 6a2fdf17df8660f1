"""Fixtures for the board's host tests: enrolling hosts on the fixture board."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kanban_core import Actor, Kanban, Task, WorkspaceKind
from kanban_core.board.hosts import HostIdentity
from kanban_core.board.validation import WorkspaceSpec
from tests.kanban_core.support import as_host, worker

Enroll = Callable[..., HostIdentity]


@pytest.fixture
def enroll(board: Kanban, operator: Actor) -> Enroll:
    """Factory: enroll a host by name (with labels); its secret is ``secret-<name>``."""

    def factory(name: str, *labels: str) -> HostIdentity:
        return board.enroll_host(
            operator, name=name, labels=labels, secret=f"secret-{name}", readmit=False
        )

    return factory


@pytest.fixture
def worktree_made_on(
    board: Kanban, operator: Actor, make_task: Callable[..., Task]
) -> Callable[[HostIdentity], Task]:
    """Factory: a worktree task whose worktree a run of ``host`` made (then reclaimed): bound
    to that host. The board is left seen by the implicit host."""

    def factory(host: HostIdentity) -> Task:
        task = make_task(workspace=WorkspaceSpec(WorkspaceKind.WORKTREE), repo="/srv/repo")
        claim = as_host(board, host).claim(operator, task.id)
        assert claim is not None
        board.set_workspace(worker(claim), task.id, path="/srv/wt/t1", branch="kanban/t1")
        board.reclaim(operator, task.id, reason="retry")
        as_host(board, None)
        return task

    return factory
