"""kanban_core.board.changes: the "has the board changed?" hint, on both databases."""

from __future__ import annotations

import select
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban, KernelSettings
from kanban_core.board.changes import ChangeWatch
from tests.conftest import drop_change_listeners
from tests.support.processes import wait_for


@pytest.fixture
def watch(board: Kanban) -> Iterator[ChangeWatch]:
    change_watch = ChangeWatch(board.db)
    yield change_watch
    change_watch.close()


def test_the_first_look_is_a_change_then_only_new_events_are(board, operator, make_task, watch):
    assert watch.changed() is True  # nothing known yet
    assert watch.changed() is False

    task = make_task()
    wait_for(watch.changed, 10, "the create to be announced")
    assert watch.changed() is False

    claim = board.claim(operator, task.id)
    assert claim is not None
    wait_for(watch.changed, 10, "the claim to be announced")
    board.heartbeat(Actor(name="worker", run=claim.proof), task.id)  # no event: not a change
    board.complete(Actor(name="worker", run=claim.proof), task.id)
    wait_for(watch.changed, 10, "the completion to be announced")
    assert watch.changed() is False


def test_a_heartbeat_without_a_note_is_not_a_change(board, operator, make_task, watch):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    watch.changed()
    wait_for(lambda: not watch.changed(), 10, "the watch to settle")

    board.heartbeat(Actor(name="worker", run=claim.proof), task.id)

    assert watch.changed() is False


def test_a_commit_by_another_process_on_a_sqlite_file_is_seen(tmp_path: Path):
    settings = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'kanban.db'}")
    with Kanban.open(settings) as mine, Kanban.open(settings) as theirs:
        watch = ChangeWatch(mine.db)
        assert watch.changed() is True
        assert watch.changed() is False
        theirs.create(Actor(name="bob"), title="from elsewhere")
        assert watch.changed() is True
        assert watch.fileno() is None  # SQLite: looked at, never announced


def test_postgresql_announces_on_a_socket_and_survives_a_dropped_listener(
    board, operator, make_task, watch
):
    if board.db.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    assert watch.changed() is True
    fd = watch.fileno()
    assert fd is not None
    assert select.select([fd], [], [], 0)[0] == []

    make_task()

    assert select.select([fd], [], [], 10)[0] == [fd]  # readable: a loop can wait on it
    assert watch.changed() is True
    assert watch.changed() is False

    drop_change_listeners(board.db)
    wait_for(watch.changed, 10, "the dropped listener to count as a change")
    watch.changed()  # listens again (and reports the gap as a change)
    wait_for(lambda: not watch.changed(), 10, "the new listener to settle")
    make_task()
    wait_for(watch.changed, 10, "the new listener to hear a create")
