"""Dispatcher health: a silent dispatcher is shown as stopped, then forgotten."""

from __future__ import annotations

from pathlib import Path

from kanban_core import Actor
from kanban_core.commands import CommandContext, run_command
from kanban_core.commands.result import Table
from kanban_core.dispatch import health
from kanban_core.storage import Query
from tests.kanban_core.support import scalar

_SILENCE = Query(
    "test_silence_dispatcher",
    "UPDATE dispatcher_health SET last_pass_ms = last_pass_ms - :ms WHERE name = :name",
)


def silence(board, name: str, seconds: float) -> None:
    with board.db.transaction(write=True) as tx:
        tx.execute(_SILENCE, {"ms": int(seconds * 1000), "name": name})


def passed(board, name: str) -> None:
    health.record_pass(board, name, "host", 5.0, None, {"spawned": 0})


def states(board, **kw: float) -> dict[str, bool]:
    return {h.name: h.stopped for h in health.read(board, **kw)}


def test_a_silent_dispatcher_is_stopped_after_its_intervals(board):
    passed(board, "alive")
    passed(board, "quiet")
    passed(board, "dead")
    silence(board, "quiet", 100)
    silence(board, "dead", 200)

    # Every 60 s (the default): stopped after 3 intervals, and never sooner than 2 minutes.
    assert health.stale_after_s(60) == 180
    assert health.stale_after_s(5) == 120
    assert states(board, stale_after=health.stale_after_s(60)) == {
        "alive": False,
        "quiet": False,
        "dead": True,
    }
    assert states(board, stale_after=health.stale_after_s(5)) == {
        "alive": False,
        "quiet": False,
        "dead": True,
    }
    assert states(board, stale_after=health.stale_after_s(20))["quiet"] is False
    assert states(board, stale_after=health.stale_after_s(70))["dead"] is False


def test_a_long_dead_dispatcher_is_hidden_then_pruned_by_the_next_pass(board):
    passed(board, "gone")
    silence(board, "gone", health.FORGET_AFTER_S + 1)

    assert states(board) == {}
    # Reads never write: the row is still there until a dispatcher passes.
    assert scalar(board, "SELECT count(*) FROM dispatcher_health") == 1
    passed(board, "new")
    assert scalar(board, "SELECT count(*) FROM dispatcher_health") == 1
    assert states(board) == {"new": False}


def test_status_shows_each_dispatchers_state(board, tmp_path: Path):
    passed(board, "gw-1")
    passed(board, "gw-old")
    silence(board, "gw-old", 600)
    ctx = CommandContext(
        actor=Actor(name="ops"),
        open_board=lambda _url: board,
        environ={"KANBAN_HOME": str(tmp_path)},
    )

    data = run_command(["status", "--json"], ctx).data
    assert [(d["name"], d["state"]) for d in data["dispatchers"]] == [
        ("gw-1", "running"),
        ("gw-old", "stopped"),
    ]
    [table] = [
        b
        for b in run_command(["status"], ctx).blocks
        if isinstance(b, Table) and b.columns[0] == "NAME"
    ]
    assert table.columns[:3] == ("NAME", "STATE", "LAST PASS")
    assert [row[:2] for row in table.rows] == [("gw-1", "running"), ("gw-old", "stopped")]

    silence(board, "gw-1", health.FORGET_AFTER_S + 1)
    silence(board, "gw-old", health.FORGET_AFTER_S)
    texts = [getattr(b, "text", "") for b in run_command(["status"], ctx).blocks]
    assert (
        "(no dispatcher has run in the last hour: `kanban gateway` or `kanban dispatch`)" in texts
    )
