"""tail and watch: bounded snapshots in chat or with --once, a live follower in a terminal."""

from __future__ import annotations

import pytest

from kanban_core.commands import CommandResult
from kanban_core.commands.streams import SNAPSHOT_EVENTS
from tests.kanban_core.commands.support import (
    assert_ok,
    assert_usage_error,
    drain,
    scripted_sleep,
    texts,
)
from tests.kanban_core.support import OpenWrite


def _kinds(lines: list[str], *, with_task: bool = False) -> list[str]:
    """The event kind of each ``event_line`` (time, [task], kind, ...)."""
    return [line.split("  ")[2 if with_task else 1] for line in lines]


def _followed_lines(results: list[CommandResult]) -> list[str]:
    return [line for result in results for line in texts(result)]


class TestTailSnapshot:
    @pytest.mark.parametrize(
        ("extra", "interactive"), [([], False), (["--once"], False), (["--once"], True)]
    )
    def test_a_bounded_snapshot_without_follow(
        self, run, board, operator, make_task, extra, interactive
    ):
        task = make_task()
        other = make_task()
        board.comment(operator, task.id, "hi")
        board.comment(operator, other.id, "elsewhere")

        result = assert_ok(run(["tail", task.ref, *extra], interactive=interactive))

        assert result.follow is None
        assert _kinds(texts(result)) == ["created", "commented"]
        assert all(f"  {other.ref}  " not in line for line in texts(result))

    def test_the_snapshot_keeps_the_newest_events(self, run, board, operator, make_task):
        task = make_task()
        for n in range(5):
            board.comment(operator, task.id, f"note {n}")

        result = run(["tail", task.ref, "--limit", "2"])

        assert _kinds(texts(result)) == ["commented", "commented"]
        assert len(texts(result)) == 2

    def test_the_default_snapshot_size(self, run, board, operator, make_task):
        task = make_task()
        for n in range(SNAPSHOT_EVENTS + 3):
            board.comment(operator, task.id, f"note {n}")

        assert len(texts(run(["tail", task.ref]))) == SNAPSHOT_EVENTS

    def test_a_missing_task(self, run):
        result = run(["tail", "t31"])

        assert (result.exit_code, result.errors, result.follow) == (1, ("no such task: t31",), None)


class TestTailFollow:
    def test_follow_yields_only_new_events_of_the_task(self, run, board, operator, make_task):
        task, other = make_task(), make_task()
        sleep, calls = scripted_sleep(
            lambda: (
                board.comment(operator, other.id, "not this one"),
                board.comment(operator, task.id, "new"),
                board.assign(operator, task.id, "coder"),
            ),
        )

        result = assert_ok(run(["tail", task.ref], interactive=True, sleep=sleep))

        assert _kinds(texts(result)) == ["created"]
        followed = drain(result)
        assert len(followed) == 1
        assert _kinds(texts(followed[0])) == ["commented", "assigned"]
        assert calls == [1.0, 1.0]

    def test_the_interval_reaches_the_sleep(self, run, make_task):
        task = make_task()
        sleep, calls = scripted_sleep(lambda: None, lambda: None)

        result = run(["tail", task.ref, "--interval", "0.25"], interactive=True, sleep=sleep)

        assert drain(result) == []
        assert calls == [0.25, 0.25, 0.25]

    def test_following_again_starts_from_the_snapshot(self, run, board, operator, make_task):
        task = make_task()
        sleep, _ = scripted_sleep(lambda: board.comment(operator, task.id, "one"))
        result = run(["tail", task.ref], interactive=True, sleep=sleep)
        board.comment(operator, task.id, "before following")

        followed = drain(result)

        assert _kinds(_followed_lines(followed)) == ["commented", "commented"]


class TestWatchSnapshot:
    @pytest.mark.parametrize(
        ("extra", "interactive"), [([], False), (["--once"], False), (["--once"], True)]
    )
    def test_a_bounded_snapshot_without_follow(
        self, run, board, operator, make_task, extra, interactive
    ):
        a, b = make_task(), make_task()
        board.comment(operator, b.id, "hi")

        result = assert_ok(run(["watch", *extra], interactive=interactive))

        assert result.follow is None
        lines = texts(result)
        assert [line.split("  ")[1] for line in lines] == [a.ref, b.ref, b.ref]
        assert _kinds(lines, with_task=True) == ["created", "created", "commented"]

    def test_an_empty_board(self, run):
        assert texts(run(["watch"])) == ["(no matching events)"]

    def test_filters(self, run, board, operator, make_task):
        coder = make_task(assignee="coder", tenant="acme")
        other = make_task(assignee="reviewer", tenant="acme")
        board.complete(operator, coder.id)
        board.block(operator, other.id, "why")

        def refs(*argv: str) -> list[str]:
            return [line.split("  ")[1] for line in texts(run(["watch", *argv]))]

        assert refs("--assignee", "coder") == [coder.ref, coder.ref]
        assert refs("--tenant", "acme", "--kinds", "blocked") == [other.ref]
        assert refs("--kinds", "completed, blocked") == [coder.ref, other.ref]
        assert refs("--kinds", "completed", "--limit", "1") == [coder.ref]
        assert texts(run(["watch", "--tenant", "elsewhere"])) == ["(no matching events)"]

    @pytest.mark.parametrize(
        ("kinds", "unknown"),
        [("bogus", "bogus"), ("completed,finished,bogus", "bogus, finished")],
    )
    def test_an_unknown_kind_is_a_usage_error(self, run, opened, kinds, unknown):
        assert_usage_error(
            run(["watch", "--kinds", kinds]), f"usage error: unknown event kind(s): {unknown}"
        )
        assert opened == []

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["watch", "--limit", "0"], "--limit must be between 1 and 1000"),
            (["watch", "--limit", "1001"], "--limit must be between 1 and 1000"),
            (["watch", "--interval", "0.01"], "--interval must be between 0.05 and 3600 seconds"),
            (["tail", "t1", "--limit", "-1"], "--limit must be between 1 and 1000"),
            (["tail", "t1", "--interval", "7200"], "--interval must be between 0.05 and 3600"),
        ],
    )
    def test_numbers_are_checked_before_the_board_opens(self, run, opened, argv, message):
        assert_usage_error(run(argv, interactive=True), f"usage error: {message}")
        assert opened == []


class TestWatchFollow:
    def test_follow_starts_live(self, run, board, operator, make_task):
        before = make_task()
        sleep, calls = scripted_sleep(
            lambda: board.comment(operator, before.id, "now"),
            lambda: make_task(title="later"),
        )

        result = assert_ok(run(["watch"], interactive=True, sleep=sleep))

        assert texts(result) == [f"watching from event {board.max_event_id()} (Ctrl-C to stop)"]
        followed = drain(result)
        lines = _followed_lines(followed)
        assert [line.split("  ")[1] for line in lines] == [before.ref, "t2"]
        assert _kinds(lines, with_task=True) == ["commented", "created"]
        assert len(followed) == 2
        assert calls == [0.5, 0.5, 0.5]

    def test_follow_applies_the_filters(self, run, board, operator, make_task):
        mine = make_task(assignee="coder")
        theirs = make_task(assignee="reviewer")
        sleep, _ = scripted_sleep(
            lambda: (
                board.complete(operator, theirs.id),
                board.comment(operator, mine.id, "progress"),
                board.complete(operator, mine.id),
            ),
        )

        result = run(
            ["watch", "--assignee", "coder", "--kinds", "completed"], interactive=True, sleep=sleep
        )

        lines = _followed_lines(drain(result))
        assert [line.split("  ")[1] for line in lines] == [mine.ref]
        assert _kinds(lines, with_task=True) == ["completed"]

    def test_a_reassigned_task_is_followed_by_its_new_assignee(
        self, run, board, operator, make_task
    ):
        # watch --assignee filters on who the task belongs to; once t1 is handed to bob, bob's
        # watch must show what happens to it next.
        task = make_task(assignee="alice")
        sleep, _ = scripted_sleep(
            lambda: board.comment(operator, task.id, "alice still has it"),
            lambda: (board.assign(operator, task.id, "bob"), board.complete(operator, task.id)),
        )

        result = run(["watch", "--assignee", "bob"], interactive=True, sleep=sleep)

        lines = _followed_lines(drain(result))
        assert "completed" in _kinds(lines, with_task=True)

    def test_a_chat_never_follows(self, run, make_task):
        make_task()

        result = run(["watch"], interactive=False)

        assert result.follow is None
        assert not texts(result)[0].startswith("watching from event")


# -- late commits (PostgreSQL) ----------------------------------------------------------------

only_postgresql = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
#: More ids than any fixed look-back below the cursor would cover.
FAR = 300


@only_postgresql
@pytest.mark.parametrize("verb", ["tail", "watch"])
def test_an_event_committed_after_a_higher_id_was_read_is_shown_once(
    run, board, operator, make_task, verb
):
    task = make_task()
    writes: list[OpenWrite] = []

    def open_then_commit_above() -> None:
        # A second connection inserts an event and keeps its transaction open: a smaller id,
        # not yet visible. Then events with higher ids commit and are read past it.
        writes.append(OpenWrite(board, task.id, "late one"))
        for n in range(FAR):
            board.comment(operator, task.id, f"above {n}")

    def commit_the_late_one() -> None:
        newest = board.max_event_id()
        assert writes[0].event_id < newest - FAR + 1  # read past: far below the cursor
        writes[0].commit()

    sleep, _ = scripted_sleep(open_then_commit_above, commit_the_late_one, lambda: None)
    argv = ["tail", task.ref] if verb == "tail" else ["watch"]

    result = assert_ok(run(argv, interactive=True, sleep=sleep))

    lines = _followed_lines(drain(result))
    assert len(lines) == FAR + 1
    assert _kinds(lines, with_task=verb == "watch") == ["commented"] * (FAR + 1)
    assert '"text":"late one"' in lines[-1]  # shown when it committed, and only then
    assert sum('"late one"' in line for line in lines) == 1
    assert len(writes) == 1


@only_postgresql
@pytest.mark.parametrize("verb", ["tail", "watch"])
def test_a_write_open_when_following_starts_is_shown_once_when_it_commits(
    run, board, operator, make_task, verb
):
    task = make_task()
    open_write = OpenWrite(board, task.id, "open at start")
    board.comment(operator, task.id, "committed before the start")  # a higher id, visible
    sleep, _ = scripted_sleep(open_write.commit, lambda: None)
    argv = ["tail", task.ref] if verb == "tail" else ["watch"]

    result = assert_ok(run(argv, interactive=True, sleep=sleep))

    assert all("open at start" not in line for line in texts(result))  # not visible yet
    lines = _followed_lines(drain(result))
    assert len(lines) == 1
    assert '"text":"open at start"' in lines[0]
