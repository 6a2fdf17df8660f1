"""late_commits: the holes below a follower's cursor, and the follower that finds late commits."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from kanban_core import Actor, Kanban
from kanban_core.board import late_commits as late
from kanban_core.board.domain import Event, TaskId
from tests.kanban_core.support import OpenWrite

only_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


def _event(event_id: int) -> Event:
    return Event(event_id, TaskId(1), None, "commented", None, 0)


def test_holes_fill_expire_and_stay_bounded(monkeypatch) -> None:
    holes = late.Holes()
    holes.open(10, [_event(12), _event(15)], seen={12, 15})
    assert holes.pending() == [11, 13, 14]
    holes.fill(13)
    assert holes.pending() == [11, 14]

    later = time.monotonic() + late.LATE_COMMIT_S + 2
    monkeypatch.setattr(late, "time", SimpleNamespace(monotonic=lambda: later))
    assert holes.pending() == []  # past the window: those ids rolled back or never commit
    monkeypatch.setattr(late, "MAX_HOLES", 3)
    holes.open(0, [_event(100)], seen=set())
    assert holes.pending() == [97, 98, 99]  # a huge gap is rolled-back ids: keep the newest


def _ids(follower: late.Follower) -> list[int]:
    events, _ = follower.poll()
    return [e.id for e in events]


def test_the_follower_returns_each_new_event_once_in_batches(
    board: Kanban, operator: Actor, make_task
) -> None:
    task = make_task()
    follower = late.Follower.at_newest(board.db, batch=2)
    for n in range(3):
        board.comment(operator, task.id, f"c{n}")
    wanted = [e.id for e in board.events_after(follower.cursor)]

    first, caught_up = follower.poll()
    assert ([e.id for e in first], caught_up) == (wanted[:2], False)
    assert follower.poll() == (board.events_after(wanted[1]), True)
    assert follower.poll() == ([], True)


def test_ids_counted_as_seen_are_not_returned(board: Kanban, operator: Actor, make_task) -> None:
    task = make_task()
    follower = late.Follower.at_newest(board.db)
    board.comment(operator, task.id, "shown in a snapshot")
    follower.seen([board.max_event_id()])
    assert _ids(follower) == []


@only_postgresql
def test_the_follower_finds_a_late_commit_below_its_cursor_once(
    board: Kanban, operator: Actor, make_task
) -> None:
    task = make_task()
    open_at_start = OpenWrite(board, task.id, "open at start")
    board.comment(operator, task.id, "visible at start")
    follower = late.Follower.at_newest(board.db)
    opened_later = OpenWrite(board, task.id, "opened later")
    board.comment(operator, task.id, "committed above it")
    above = board.max_event_id()

    assert _ids(follower) == [above]  # read past the open write's smaller id
    opened_later.commit()
    open_at_start.commit()
    assert _ids(follower) == [open_at_start.event_id, opened_later.event_id]
    assert _ids(follower) == []
    assert follower.cursor == above


@only_postgresql
def test_a_write_that_commits_while_the_follower_starts_is_returned(
    board: Kanban, operator: Actor, make_task
) -> None:
    task = make_task()
    starting = OpenWrite(board, task.id, "commits while the follower starts")
    board.comment(operator, task.id, "committed above it")
    starting.commit_after_next_read(board)

    follower = late.Follower.at_newest(board.db)

    assert follower.cursor == board.max_event_id() > starting.event_id
    assert _ids(follower) == [starting.event_id]  # a hole at the start, filled now
    assert _ids(follower) == []


def test_start_reads_the_newest_id_and_its_window(
    board: Kanban, operator: Actor, make_task
) -> None:
    assert late.start(board.db, limit=10) == (0, [])
    task = make_task()
    board.comment(operator, task.id, "newest")
    newest, window = late.start(board.db, limit=10)
    assert newest == board.max_event_id()
    if late.may_commit_late(board.db):
        assert window == late.window_before(board.db, newest, limit=10)
        assert window[-1].id == newest
    else:
        assert window == []  # ids are commit order: nothing below the cursor can come late
