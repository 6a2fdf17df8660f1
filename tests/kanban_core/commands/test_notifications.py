"""notify-subscribe, notify-list and notify-unsubscribe through the command tree."""

from __future__ import annotations

import pytest

from tests.kanban_core.commands.support import assert_ok, assert_usage_error, only_table, texts


@pytest.fixture
def subscribe(run):
    """Factory: subscribe a chat to a task through the command tree."""

    def factory(task, platform="telegram", chat_id="42", *extra):
        ref = task if isinstance(task, str) else task.ref
        return run(["notify-subscribe", ref, "--platform", platform, "--chat-id", chat_id, *extra])

    return factory


class TestSubscribe:
    def test_subscribe_and_repeat(self, subscribe, board, make_task):
        task = make_task()

        first = assert_ok(subscribe(task, "Telegram", "42", "--thread-id", "7", "--user-id", "u1"))
        again = assert_ok(subscribe(task, "telegram", "42", "--thread-id", "7"))

        assert texts(first) == [f"Subscribed telegram:42:7 to {task.ref}"]
        assert texts(again) == [f"Subscribed telegram:42:7 to {task.ref}  (already subscribed)"]
        (sub,) = board.subscriptions(task.id)
        assert (sub.platform, sub.chat_id, sub.thread_id, sub.user_id) == (
            "telegram",
            "42",
            "7",
            "u1",
        )

    def test_without_a_thread(self, subscribe, make_task):
        task = make_task()

        assert texts(subscribe(task, "slack", "C01")) == [f"Subscribed slack:C01 to {task.ref}"]

    def test_a_finished_task_has_nothing_to_notify(self, subscribe, board, operator, make_task):
        task = make_task()
        board.complete(operator, task.id)

        result = subscribe(task)

        assert result.exit_code == 1
        assert result.errors == (f"{task.ref} is done; it has no more events to notify",)
        assert board.subscriptions() == []

    def test_a_missing_task(self, subscribe):
        result = subscribe("t99")

        assert (result.exit_code, result.errors) == (1, ("no such task: t99",))

    def test_a_worker_may_not_subscribe(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")

        result = run(
            ["notify-subscribe", task.ref, "--platform", "slack", "--chat-id", "C1"],
            actor=worker_on(task),
        )

        assert result.exit_code == 1
        assert result.errors[0].startswith("a worker may not notify-subscribe")
        assert board.subscriptions() == []

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["notify-subscribe", "t1", "--chat-id", "1"], "required: --platform"),
            (["notify-subscribe", "t1", "--platform", "slack"], "required: --chat-id"),
            (["notify-unsubscribe", "t1", "--platform", "slack"], "required: --chat-id"),
        ],
    )
    def test_required_flags(self, run_offline, argv, message):
        assert_usage_error(run_offline(argv), f"usage: kanban {argv[0]} [-h]", message)


class TestList:
    def test_empty(self, run, make_task):
        task = make_task()

        assert texts(run(["notify-list"])) == ["(no subscriptions)"]
        assert texts(run(["notify-list", task.ref])) == ["(no subscriptions)"]

    def test_table_all_and_per_task(self, run, subscribe, make_task):
        a, b = make_task(), make_task()
        subscribe(a, "telegram", "42", "--user-id", "u1")
        subscribe(b, "discord", "99", "--thread-id", "5")

        table = only_table(assert_ok(run(["notify-list"])))
        one = only_table(assert_ok(run(["notify-list", b.ref])))

        assert table.columns == ("TASK", "CHAT", "USER")
        assert table.rows == ((a.ref, "telegram:42", "u1"), (b.ref, "discord:99:5", "-"))
        assert one.rows == ((b.ref, "discord:99:5", "-"),)

    def test_json(self, run, subscribe, make_task):
        task = make_task()
        subscribe(task, "telegram", "42")

        result = assert_ok(run(["notify-list", "--json"]))

        assert result.as_json is True
        (row,) = result.data
        assert set(row) == {"task_id", "platform", "chat_id", "thread_id", "user_id", "created_at"}
        assert (row["task_id"], row["platform"], row["chat_id"], row["thread_id"]) == (
            task.ref,
            "telegram",
            "42",
            None,
        )

    def test_a_missing_task(self, run):
        assert run(["notify-list", "t5"]).errors == ("no such task: t5",)


class TestUnsubscribe:
    def test_unsubscribe(self, run, subscribe, board, make_task):
        task = make_task()
        subscribe(task, "telegram", "42", "--thread-id", "7")

        result = assert_ok(
            run(
                [
                    "notify-unsubscribe",
                    task.ref,
                    "--platform",
                    "TELEGRAM",
                    "--chat-id",
                    "42",
                    "--thread-id",
                    "7",
                ]
            )
        )

        assert texts(result) == [f"Unsubscribed telegram:42:7 from {task.ref}"]
        assert board.subscriptions() == []

    def test_the_thread_must_match(self, run, subscribe, board, make_task):
        task = make_task()
        subscribe(task, "telegram", "42", "--thread-id", "7")

        result = run(["notify-unsubscribe", task.ref, "--platform", "telegram", "--chat-id", "42"])

        assert (result.exit_code, result.errors) == (1, ("(no such subscription)",))
        assert len(board.subscriptions()) == 1

    def test_completion_ends_subscriptions(self, run, subscribe, board, operator, make_task):
        task = make_task()
        subscribe(task)

        assert_ok(run(["complete", task.ref]))

        assert texts(run(["notify-list"])) == ["(no subscriptions)"]
