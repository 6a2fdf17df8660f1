"""The executing side of execution requests: deny by default, interrupted ones never re-run."""

from __future__ import annotations

import pytest

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.remote_exec import ExecLoop
from kanban_core import Actor, Kanban
from kanban_core.board import exec_requests as xr
from kanban_core.board.exec_records import ExecCommand, Requester, WorkspaceHost
from kanban_core.board.hosts import HostIdentity
from kanban_core.storage import Query
from tests.kanban_core.support import rows, snapshot

pytestmark = pytest.mark.anyio
ALICE = Requester("telegram", "telegram:42", "alice", "100", "", "operator", None)


@pytest.fixture
def two(board: Kanban, operator: Actor) -> tuple[HostIdentity, HostIdentity]:
    made = [
        board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)
        for name in ("build-1", "build-2")
    ]
    board.host = made[1]  # this gateway is build-2's
    return made[0], made[1]


def _ask(
    board: Kanban, task_id: int, target: HostIdentity, who: Requester, cmd: ExecCommand
) -> int:
    with board.db.transaction(write=True) as tx:
        request_id, _ = xr.create(
            tx,
            command=cmd,
            args={"message": "go"} if cmd is ExecCommand.COMMIT else {},
            workspace_id="ws-1",
            task_id=task_id,  # type: ignore[arg-type]
            host=WorkspaceHost(target.host_id, target.name, False),
            requester=who,
            key=f"k-{who.user_id}-{cmd.value}",
            ttl_ms=60_000,
        )
    return request_id


async def _one_pass(loop: ExecLoop) -> None:
    """A gateway's start and first pass, up to the end of the requests it started."""
    await loop.recover()
    await loop.pass_once()
    await loop.drain()


def _states(board: Kanban) -> list[tuple[str, str]]:
    return [(s, r) for s, r in rows(board, "SELECT state, result FROM exec_requests ORDER BY id")]


async def test_a_requester_unknown_here_or_below_the_role_is_refused(
    board: Kanban, executor: KernelExecutor, make_task, two
) -> None:
    task = make_task()
    viewer = Requester("telegram", "telegram:7", "bob", "100", "", "operator", None)
    stranger = Requester("telegram", "telegram:9", "eve", "100", "", "admin", None)
    _ask(board, task.id, two[1], viewer, ExecCommand.COMMIT)
    _ask(board, task.id, two[1], stranger, ExecCommand.STATUS)
    # The asking side called bob an operator; this host's configuration says viewer.
    access = AccessPolicy(users={"telegram:7": Role.VIEWER})
    await _one_pass(ExecLoop(board, access, executor, claimer="gw", environ={}))
    assert _states(board) == [
        ("refused", "refused on host build-2: telegram:7 lacks the role here"),
        ("refused", "refused on host build-2: telegram:9 is not allowed here"),
    ]
    # Each asker hears it in its chat, through the outbox.
    assert rows(board, "SELECT count(*) FROM notify_deliveries WHERE chat_id = '100'") == [(2,)]


async def test_a_terminal_on_a_revoked_host_is_refused(
    board: Kanban, executor: KernelExecutor, make_task, operator, two
) -> None:
    task = make_task()
    terminal = Requester("cli", "cli:alice", "alice", "alice", "", "terminal", two[0].host_id)
    _ask(board, task.id, two[1], terminal, ExecCommand.STATUS)
    board.revoke_host(operator, "build-1")
    await _one_pass(ExecLoop(board, AccessPolicy(), executor, claimer="gw", environ={}))
    assert _states(board) == [("refused", "refused on host build-2: cli:alice is not allowed here")]


async def test_a_request_running_when_the_gateway_stopped_is_failed_not_rerun(
    board: Kanban, executor: KernelExecutor, make_task, two
) -> None:
    task = make_task()
    request_id = _ask(board, task.id, two[1], ALICE, ExecCommand.STATUS)
    with board.db.transaction(write=True) as tx:
        xr.claim(tx, two[1], claimer="gw:before-the-crash")
    settled: list[str] = []
    loop = ExecLoop(
        board,
        AccessPolicy(users={"telegram:42": Role.OPERATOR}),
        executor,
        claimer="gw:after-the-restart",
        environ={},
        on_settled=lambda: settled.append("nudged"),
    )
    await _one_pass(loop)
    [(state, result)] = _states(board)
    assert state == "failed"
    assert result.startswith(f"request {request_id} was interrupted")
    assert settled  # the notifier is woken to tell the chat


async def test_an_idle_pass_writes_nothing(board: Kanban, executor: KernelExecutor, two) -> None:
    before = snapshot(board)
    loop = ExecLoop(board, AccessPolicy(), executor, claimer="gw", environ={}, leader=lambda: True)
    await _one_pass(loop)
    assert snapshot(board) == before


async def test_unreadable_arguments_fail_the_request_without_running_it(
    board: Kanban, executor: KernelExecutor, make_task, two
) -> None:
    task = make_task()
    request_id = _ask(board, task.id, two[1], ALICE, ExecCommand.STATUS)
    with board.db.transaction(write=True) as tx:
        tx.execute(
            Query("t", "UPDATE exec_requests SET args = '[1' WHERE id = :id"), {"id": request_id}
        )
    access = AccessPolicy(users={"telegram:42": Role.OPERATOR})
    await _one_pass(ExecLoop(board, access, executor, claimer="gw", environ={}))
    [(state, result)] = _states(board)
    assert state == "failed"
    assert "unknown arguments: _unreadable" in result


def test_every_command_another_host_may_be_asked_has_a_role_here() -> None:
    # A command with none would be refused on every target ("not offered"): never run.
    policy = AccessPolicy()
    needed = {command: policy.needed("ws", command.value, None) for command in ExecCommand}
    assert None not in needed.values()
    assert needed[ExecCommand.UNARCHIVE] == Role.OPERATOR


async def test_an_unarchive_from_a_viewer_is_refused_on_the_target(
    board: Kanban, executor: KernelExecutor, make_task, two
) -> None:
    task = make_task()
    _ask(board, task.id, two[1], ALICE, ExecCommand.UNARCHIVE)
    access = AccessPolicy(users={"telegram:42": Role.VIEWER})
    await _one_pass(ExecLoop(board, access, executor, claimer="gw", environ={}))
    assert _states(board) == [
        ("refused", "refused on host build-2: telegram:42 lacks the role here")
    ]
