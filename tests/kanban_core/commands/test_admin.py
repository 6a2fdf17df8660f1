"""init and gc through the command tree."""

from __future__ import annotations

import os
import time

import pytest

from tests.kanban_core.commands.support import assert_ok, texts


def test_init_describes_the_board(run, board, make_task):
    make_task()
    make_task()

    result = assert_ok(run(["init"]))

    ready, count, hint = texts(result)
    assert ready == f"Board ready: {board.db.describe()}"
    assert count == '2 task(s) on it. Next: kanban create "first task" --assignee <name>'
    assert "kanban dispatch" in hint


def test_init_is_safe_to_repeat(run):
    assert texts(run(["init"])) == texts(run(["init"]))


class TestGc:
    def test_an_empty_board(self, run):
        result = assert_ok(run(["gc"]))

        assert texts(result) == [
            "GC complete: 0 event row(s), 0 delivery row(s), 0 exec request(s), "
            "0 spent nonce(s), 0 log file(s), 0 workspace(s) removed"
        ]

    def test_old_worker_logs_go_and_other_files_stay(self, run, board):
        logs = board.settings.logs_dir
        logs.mkdir(parents=True)
        month_ago = time.time() - 40 * 86400
        for name in ("t1.log", "t1.log.2", "notes.txt", "t2.log"):
            (logs / name).write_text("x")
        for name in ("t1.log", "t1.log.2", "notes.txt"):
            os.utime(logs / name, (month_ago, month_ago))

        result = assert_ok(run(["gc", "--log-retention-days", "30"]))

        assert texts(result)[0].endswith(" 2 log file(s), 0 workspace(s) removed")
        assert sorted(p.name for p in logs.iterdir()) == ["notes.txt", "t2.log"]

    def test_live_tasks_keep_their_events(self, run, board, make_task):
        task = make_task()
        before = board.recent_events(task_id=task.id)

        result = assert_ok(run(["gc", "--event-retention-days", "0"]))

        assert texts(result)[0].startswith("GC complete: 0 event row(s)")
        assert board.recent_events(task_id=task.id) == before

    @pytest.mark.parametrize("flag", ["--event-retention-days", "--log-retention-days"])
    def test_negative_retention_is_refused(self, run, flag):
        result = run(["gc", flag, "-1"])

        assert (result.exit_code, result.errors) == (
            1,
            ("retention days must be between 0 and 36500",),
        )

    def test_a_worker_may_not_gc(self, run, make_task, worker_on):
        task = make_task(assignee="coder")

        result = run(["gc"], actor=worker_on(task))

        assert result.exit_code == 1
        assert result.errors[0].startswith("a worker may not gc")
