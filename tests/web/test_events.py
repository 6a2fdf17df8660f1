"""The live stream on a real server: another process's commit arrives, resumes leave no gaps."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.access import AccessPolicy
from kanban_core import Actor, Kanban, KernelSettings
from tests.kanban_core.support import OpenWrite
from tests.web.conftest import USERS
from tests.web.support import LiveBoard, live_board

pytestmark = pytest.mark.integration


@pytest.fixture
def file_board(fresh_url: str, tmp_path: Path) -> Iterator[Kanban]:
    settings = KernelSettings(home=tmp_path / "home", db_url=fresh_url)
    with Kanban.open(settings) as kanban:
        yield kanban


@pytest.fixture
def served(file_board: Kanban) -> Iterator[LiveBoard]:
    with live_board(file_board, AccessPolicy(users=USERS), environ={}) as live:
        yield live


class Stream:
    """An SSE connection read in a thread: ``next()`` returns the next event (or fails)."""

    def __init__(self, client: httpx.Client, since: int | None) -> None:
        self.frames: queue.Queue[dict[str, Any]] = queue.Queue()
        self.client = client
        path = "/api/events" + (f"?since={since}" if since is not None else "")
        self._thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self._open = threading.Event()
        self._thread.start()
        assert self._open.wait(10)

    def _read(self, path: str) -> None:
        with self.client.stream("GET", path, timeout=httpx.Timeout(10, read=None)) as answer:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            self._open.set()
            frame: dict[str, Any] = {}
            try:
                for line in answer.iter_lines():
                    if line.startswith("id: "):
                        frame["id"] = int(line[4:])
                    elif line.startswith("data: "):
                        frame["data"] = json.loads(line[6:])
                    elif line.startswith("event: "):
                        frame["event"] = line[7:]
                    elif line == "" and frame:
                        self.frames.put(frame)
                        frame = {}
            except httpx.HTTPError:
                return

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.frames.get(timeout=timeout)

    def close(self) -> None:
        self.client.close()


def _kanban(board: Kanban, *args: str) -> None:
    """The CLI in a process of its own."""
    env = dict(os.environ, KANBAN_HOME=str(board.settings.home), KANBAN_DB_URL=board.db.url)
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_another_process_commit_reaches_an_open_stream(served: LiveBoard, file_board) -> None:
    client = served.client(file_board, "telegram:2")
    since = client.get("/api/board").json()["latest_event_id"]
    stream = Stream(client, since)
    try:
        _kanban(file_board, "create", "from the CLI")
        frame = stream.next()
        assert frame["data"]["kind"] == "created"
        assert frame["data"]["task_id"] == "t1"
        assert frame["id"] == frame["data"]["id"] > since
        assert set(frame["data"]) >= {"id", "task_id", "kind", "payload", "created_at"}
    finally:
        stream.close()


def test_a_resumed_stream_misses_nothing(served: LiveBoard, file_board: Kanban) -> None:
    alice = Actor(name="alice")
    client = served.client(file_board, "telegram:2")
    first = Stream(client, 0)
    board_task = file_board.create(alice, title="a").task
    seen = first.next()["id"]
    first.close()
    # Written while no stream was open: a burst, then resume from the last id seen.
    for n in range(30):
        file_board.comment(alice, board_task.id, f"c{n}")
    wanted = [e.id for e in file_board.events_after(seen, limit=1000)]
    again = Stream(served.client(file_board, "telegram:2"), seen)
    try:
        got = _frames_until(again, wanted[-1])
        # PostgreSQL first sends again what may have committed late below the cursor.
        assert [i for i in got if i > seen] == wanted
        assert file_board.db.dialect == "postgresql" or len(got) == len(wanted)
        file_board.comment(alice, board_task.id, "live")
        assert again.next()["data"]["kind"] == "commented"
    finally:
        again.close()


def test_fifty_streams_share_one_reader(served: LiveBoard, file_board: Kanban) -> None:
    alice = Actor(name="alice")
    streams = [Stream(served.client(file_board, "telegram:2"), None) for _ in range(50)]
    try:
        reads_before = served.backend.hub.reads
        file_board.create(alice, title="one")
        for stream in streams:
            assert stream.next()["data"]["kind"] == "created"
        # One burst, one reader: the hub read a few times, not once per stream.
        assert served.backend.hub.reads - reads_before <= 3
    finally:
        for stream in streams:
            stream.close()


def test_a_stream_needs_a_session(served: LiveBoard) -> None:
    answer = httpx.get(served.url + "/api/events", timeout=5)
    assert answer.status_code == 401
    bad = httpx.get(served.url + "/api/events?since=x", timeout=5)
    assert bad.status_code == 401


def test_stopping_ends_open_streams(file_board: Kanban) -> None:
    import time

    with live_board(file_board, AccessPolicy(users=USERS), environ={}) as live:
        stream = Stream(live.client(file_board, "telegram:2"), None)
        started = time.monotonic()
    # live_board's exit waits for the server thread: open streams did not hold it up.
    assert time.monotonic() - started < 10
    stream.close()


def _frames_until(stream: Stream, event_id: int) -> list[int]:
    """Ids the stream sends until ``event_id`` (fails on a timeout if it never comes)."""
    got: list[int] = []
    while event_id not in got:
        got.append(stream.next()["id"])
    return got


only_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@only_postgresql
def test_a_resume_gets_an_event_that_committed_after_its_cursor(
    served: LiveBoard, file_board: Kanban
) -> None:
    alice = Actor(name="alice")
    made = file_board.create(alice, title="a").task
    client = served.client(file_board, "telegram:2")
    first = Stream(client, file_board.max_event_id())
    open_write = OpenWrite(file_board, made.id)  # a smaller id, not yet visible
    file_board.comment(alice, made.id, "committed first")
    higher = file_board.max_event_id()
    assert open_write.event_id not in _frames_until(first, higher)
    assert higher > open_write.event_id
    first.close()
    watcher = Stream(served.client(file_board, "telegram:2"), higher)
    try:
        open_write.commit()
        _frames_until(watcher, open_write.event_id)  # the hub has it now, below the cursor
    finally:
        watcher.close()
    again = Stream(served.client(file_board, "telegram:2"), higher)
    try:
        assert open_write.event_id in _frames_until(again, open_write.event_id)
    finally:
        again.close()


@only_postgresql
def test_the_hub_finds_an_event_committed_far_below_its_cursor(
    served: LiveBoard, file_board: Kanban
) -> None:
    alice = Actor(name="alice")
    made = file_board.create(alice, title="a").task
    stream = Stream(served.client(file_board, "telegram:2"), file_board.max_event_id())
    try:
        open_write = OpenWrite(file_board, made.id)
        for n in range(300):  # more ids than any fixed look-back below the cursor
            file_board.comment(alice, made.id, f"c{n}")
        newest = file_board.max_event_id()
        _frames_until(stream, newest)
        open_write.commit()
        assert stream.next()["id"] == open_write.event_id
    finally:
        stream.close()
