"""One lock order for every workspace write (the workspace row first), raced on PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import pytest

from kanban_core import Actor
from kanban_core.workspaces.interactive import turns
from kanban_core.workspaces.interactive.records import TurnStatus
from tests.kanban_core.workspaces.interactive.conftest import AGENT, Kit

ROUNDS = 4
JOIN_S = 60.0
_WAITERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND wait_event_type = 'Lock'"
)


def _pg_url(db_url: str) -> str:
    return db_url.replace("postgresql+psycopg://", "postgresql://", 1)


class Racer(threading.Thread):
    """Runs one write; keeps what it raised."""

    def __init__(self, work: Callable[[], object]) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            self.error = exc


@contextmanager
def _turn_row_held(db_url: str, turn_id: str) -> Iterator[Callable[[int], None]]:
    """Hold the turn's row lock from a third connection; yields a wait for N blocked writers."""
    import psycopg

    with (
        psycopg.connect(_pg_url(db_url)) as holder,
        psycopg.connect(_pg_url(db_url), autocommit=True) as watcher,
    ):
        holder.execute("SELECT id FROM workspace_turns WHERE id = %s FOR UPDATE", (turn_id,))

        def wait_for(waiting: int) -> None:
            deadline = time.monotonic() + JOIN_S
            while True:
                row = watcher.execute(_WAITERS).fetchone()
                if row is not None and int(row[0]) >= waiting:
                    return
                assert time.monotonic() < deadline, f"never saw {waiting} blocked writer(s)"
                time.sleep(0.01)

        yield wait_for
        holder.rollback()


def _stop(kit: Kit, ws_id: str) -> str:
    return kit.svc.stop(kit.get(ws_id), kit.caller())


def _after(gate: threading.Barrier, work: Callable[[], object]) -> object:
    gate.wait()
    return work()


def test_stop_and_a_turn_ending_never_deadlock(kit: Kit, db_url: str) -> None:
    """/ws stop and the supervisor ending the same turn, lined up on the turn row each round.

    The turn ending goes first and waits on the turn row; /stop comes next; then the row is
    released. With two lock orders the pair deadlocks every round (PostgreSQL aborts one).
    """
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer; the row-lock order matters on PostgreSQL")
    ws = kit.create().workspace
    for n in range(ROUNDS):
        claim, context = kit.begin(kit.get(ws))
        kit.board.complete(Actor(AGENT, run=claim.proof), ws.task_id, summary=f"round {n}")
        ending = Racer(partial(turns.finish, kit.board, claim.run_id))
        stopping = Racer(partial(_stop, kit, ws.id))
        with _turn_row_held(db_url, context.turn.id) as wait_for:
            ending.start()
            wait_for(1)
            stopping.start()
            wait_for(2)
        for racer in (ending, stopping):
            racer.join(JOIN_S)
            assert not racer.is_alive(), "a writer hung"
        assert (ending.error, stopping.error) == (None, None), f"round {n}"
        assert kit.turn(context.turn.id).status is TurnStatus.COMPLETED
        kit.svc.follow_up(kit.get(ws), kit.caller(), f"next {n}")


def test_stop_and_a_turn_ending_race_freely(kit: Kit, db_url: str) -> None:
    """The same pair released together, a bounded number of times: no error, no hang."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises every writer; the row-lock order matters on PostgreSQL")
    ws = kit.create().workspace
    for n in range(8):
        claim, context = kit.begin(kit.get(ws))
        kit.board.complete(Actor(AGENT, run=claim.proof), ws.task_id, summary=f"round {n}")
        gate = threading.Barrier(2, timeout=JOIN_S)
        racers = [
            Racer(partial(_after, gate, partial(turns.finish, kit.board, claim.run_id))),
            Racer(partial(_after, gate, partial(_stop, kit, ws.id))),
        ]
        for racer in racers:
            racer.start()
        for racer in racers:
            racer.join(JOIN_S)
            assert not racer.is_alive(), "a writer hung"
            assert racer.error is None, f"round {n}: {racer.error!r}"
        assert kit.turn(context.turn.id).status in (TurnStatus.COMPLETED, TurnStatus.CANCELLED)
        kit.svc.follow_up(kit.get(ws), kit.caller(), f"next {n}")
