"""claim, complete, block, unblock, heartbeat, reclaim and archive through the command tree."""

from __future__ import annotations

import pytest

from kanban_core import BlockKind, Kanban, RunOutcome, Task, TaskStatus
from tests.kanban_core.commands.support import assert_ok, assert_usage_error, texts


def _status(board: Kanban, task: Task) -> TaskStatus:
    return board.get(task.id).status


class TestClaim:
    def test_claim_by_id(self, run, board, make_task):
        task = make_task(assignee="coder")

        result = assert_ok(run(["claim", task.ref]))

        (run_row,) = board.runs(task.id)
        claimed, export = texts(result)
        assert claimed == f"Claimed {task.ref}  (run r{run_row.id}, attempt 1)"
        assert export.startswith(f"export KANBAN_TASK={task.ref} KANBAN_RUN_ID={run_row.id} ")
        assert "KANBAN_RUN_TOKEN=" in export
        assert _status(board, task) is TaskStatus.RUNNING

    def test_claim_json(self, run, board, make_task):
        task = make_task()

        result = assert_ok(run(["claim", task.ref, "--json", "--ttl", "60"]))

        assert result.as_json is True
        assert set(result.data) == {
            "task_id",
            "run_id",
            "run_token",
            "attempt",
            "lease_expires_at",
            "workspace_kind",
            "workspace_path",
        }
        assert (result.data["task_id"], result.data["attempt"]) == (task.ref, 1)
        assert result.data["workspace_kind"] == "scratch"
        assert len(result.data["run_token"]) >= 16
        assert board.get(task.id).lease_expires_ms // 1000 == result.data["lease_expires_at"]

    def test_claim_next_by_priority_and_assignee(self, run, make_task):
        make_task(assignee="coder", priority=1)
        high = make_task(assignee="coder", priority=9)
        other = make_task(assignee="reviewer", priority=50)

        mine = assert_ok(run(["claim", "--next", "--assignee", "coder"]))
        anyone = assert_ok(run(["claim", "--next"]))

        assert texts(mine)[0].startswith(f"Claimed {high.ref}  ")
        assert texts(anyone)[0].startswith(f"Claimed {other.ref}  ")

    def test_claim_a_batch_each_with_its_own_token(self, run, board, make_task):
        low = make_task(assignee="coder", priority=1)
        high = make_task(assignee="coder", priority=9)
        make_task(assignee="reviewer")

        result = assert_ok(
            run(["claim", "--next", "--assignee", "coder", "--count", "5", "--json"])
        )

        claims = result.data["claims"]
        assert [c["task_id"] for c in claims] == [high.ref, low.ref]
        assert len({c["run_token"] for c in claims}) == 2
        for claimed, task in zip(claims, (high, low), strict=True):
            (run_row,) = board.runs(task.id)
            assert claimed["run_id"] == run_row.id
        assert texts(assert_ok(run(["claim", "--next", "--count", "3"])))[0].startswith("Claimed ")
        assert run(["claim", "--next", "--count", "3"]).errors == ("nothing is ready to claim",)

    @pytest.mark.parametrize(
        "argv",
        [["claim", "t1", "--count", "2"], ["claim", "--next", "--count", "0"]],
    )
    def test_a_bad_batch_is_refused(self, run, board, make_task, argv):
        task = make_task()
        result = run(argv)
        assert result.exit_code != 0
        assert result.errors
        assert _status(board, task) is TaskStatus.READY

    def test_nothing_ready(self, run, make_task):
        make_task(triage=True)

        result = run(["claim", "--next"])

        assert (result.exit_code, result.errors) == (1, ("nothing is ready to claim",))

    def test_a_task_that_is_not_ready(self, run, board, make_task):
        task = make_task()
        run(["claim", task.ref])

        result = run(["claim", task.ref])

        assert (result.exit_code, result.errors) == (
            1,
            (f"cannot claim {task.ref}: it is running",),
        )

    def test_a_missing_task(self, run):
        result = run(["claim", "t5"])

        assert (result.exit_code, result.errors) == (1, ("no such task: t5",))

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["claim"], "give a task id or --next (not both)"),
            (["claim", "t1", "--next"], "give a task id or --next (not both)"),
            (["claim", "t1", "--assignee", "coder"], "--assignee goes with --next"),
        ],
    )
    def test_usage(self, run_offline, argv, message):
        assert_usage_error(run_offline(argv), f"usage error: {message}")

    def test_a_bad_ttl_is_refused(self, run, board, make_task):
        task = make_task()

        result = run(["claim", task.ref, "--ttl", "0"])

        assert result.exit_code == 1
        assert "--ttl must be between 1 and" in result.errors[0]
        assert _status(board, task) is TaskStatus.READY


class TestComplete:
    def test_bulk_complete(self, run, board, make_task):
        a, b = make_task(), make_task()

        result = assert_ok(run(["complete", a.ref, b.ref, "--result", "shipped"]))

        assert texts(result) == [f"Completed {a.ref}", f"Completed {b.ref}"]
        for task in (a, b):
            done = board.get(task.id)
            assert (done.status, done.result) == (TaskStatus.DONE, "shipped")

    def test_failures_are_reported_per_id_and_the_rest_still_act(
        self, run, board, make_task, operator
    ):
        a, b = make_task(), make_task()
        done = make_task()
        board.complete(operator, done.id)

        result = run(["complete", a.ref, "t99", "bogus", done.ref, b.ref])

        assert result.exit_code == 1
        assert texts(result) == [f"Completed {a.ref}", f"Completed {b.ref}"]
        assert result.errors[0] == "no such task: t99"
        assert result.errors[1].startswith("not a task id: 'bogus'")
        assert result.errors[2].startswith(f"cannot complete {done.ref}: it is done")
        assert len(result.errors) == 3
        assert _status(board, a) is _status(board, b) is TaskStatus.DONE

    def test_a_repeated_id_is_completed_once(self, run, make_task):
        task = make_task()

        result = assert_ok(run(["complete", task.ref, task.ref]))

        assert texts(result) == [f"Completed {task.ref}"]

    def test_a_handoff_on_two_ids_is_a_usage_error_and_changes_nothing(self, run, board, make_task):
        a, b = make_task(), make_task()
        before = board.recent_events(limit=100)

        for flag, value in (("--summary", "did it"), ("--metadata", '{"files": 3}')):
            assert_usage_error(
                run(["complete", a.ref, b.ref, flag, value]),
                "--summary and --metadata are per task; complete one id at a time",
            )

        assert _status(board, a) is _status(board, b) is TaskStatus.READY
        assert board.recent_events(limit=100) == before

    def test_a_handoff_on_one_id(self, run, board, make_task):
        task = make_task(assignee="coder")

        assert_ok(
            run(["complete", task.ref, "--summary", "all green", "--metadata", '{"files": 3}'])
        )

        (attempt,) = board.runs(task.id)
        assert attempt.outcome is RunOutcome.COMPLETED
        assert (attempt.summary, attempt.metadata) == ("all green", {"files": 3})

    def test_a_worker_completes_its_own_task_without_an_id(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker = worker_on(task)

        result = assert_ok(run(["complete", "--summary", "done"], actor=worker))

        assert texts(result) == [f"Completed {task.ref}"]
        assert _status(board, task) is TaskStatus.DONE

    def test_a_worker_may_not_complete_another_task(self, run, board, make_task, worker_on):
        mine, other = make_task(assignee="coder"), make_task()

        result = run(["complete", other.ref], actor=worker_on(mine))

        assert result.exit_code == 1
        assert result.errors == (
            f"this worker is scoped to {mine.ref}; refusing to change {other.ref}",
        )
        assert _status(board, other) is TaskStatus.READY

    def test_the_task_can_come_from_the_environment(self, run, board, make_task):
        task = make_task()

        assert_ok(run(["complete"], environ={"KANBAN_TASK": task.ref}))

        assert _status(board, task) is TaskStatus.DONE

    def test_no_id_and_no_worker_is_a_usage_error(self, run):
        assert_usage_error(run(["complete"]), "a task id is required")

    def test_the_same_task_spelled_twice_is_one_id(self, run, board, make_task):
        # t1, 1 and #1 name one task: it is completed once, and a handoff is still per task.
        task = make_task()

        result = run(["complete", task.ref, str(task.id), "--summary", "done"])

        assert (result.exit_code, result.errors) == (0, ())
        assert texts(result) == [f"Completed {task.ref}"]
        assert _status(board, task) is TaskStatus.DONE


class TestBlock:
    def test_block_with_a_reason(self, run, board, make_task):
        task = make_task()

        result = assert_ok(run(["block", task.ref, "needs", "a", "decision"]))

        assert texts(result) == [f"Blocked {task.ref}: needs a decision"]
        blocked = board.get(task.id)
        assert (blocked.status, blocked.block_kind) == (TaskStatus.BLOCKED, BlockKind.HUMAN)
        (comment,) = board.detail(task.id).comments
        assert comment.body == "BLOCKED: needs a decision"

    def test_block_without_a_reason(self, run, board, make_task):
        task = make_task()

        result = assert_ok(run(["block", task.ref]))

        assert texts(result) == [f"Blocked {task.ref}"]
        assert board.detail(task.id).comments == ()

    def test_bulk_block_reports_each_failure(self, run, board, make_task, operator):
        a, b, c = make_task(), make_task(), make_task()
        board.complete(operator, c.id)

        result = run(["block", a.ref, "hold", "--ids", b.ref, "t77", c.ref])

        assert result.exit_code == 1
        assert texts(result) == [f"Blocked {a.ref}: hold", f"Blocked {b.ref}: hold"]
        assert result.errors == ("no such task: t77", f"cannot block {c.ref}: it is done")
        assert _status(board, a) is _status(board, b) is TaskStatus.BLOCKED

    def test_a_worker_blocks_its_own_task_by_id(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker = worker_on(task)

        result = assert_ok(run(["block", task.ref, "need", "credentials"], actor=worker))

        assert texts(result) == [f"Blocked {task.ref}: need credentials"]
        (attempt,) = board.runs(task.id)
        assert attempt.outcome is RunOutcome.BLOCKED

    def test_a_worker_may_omit_its_own_id_when_giving_a_reason(
        self, run, board, make_task, worker_on
    ):
        # The help says "the task (a worker may omit its own)", and a worker must give a reason.
        task = make_task(assignee="coder")
        worker = worker_on(task)

        result = run(["block", "need credentials"], actor=worker)

        assert (result.exit_code, result.errors) == (0, ())
        assert texts(result) == [f"Blocked {task.ref}: need credentials"]
        assert _status(board, task) is TaskStatus.BLOCKED

    def test_a_worker_must_say_why(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")

        result = run(["block"], actor=worker_on(task))

        assert (result.exit_code, result.errors) == (1, ("a worker must say why it is blocked",))
        assert _status(board, task) is TaskStatus.RUNNING


class TestUnblock:
    def test_unblock_to_ready_and_todo(self, run, board, blocked_task, make_task):
        free = blocked_task()
        parent = make_task()
        waiting = blocked_task(parents=[parent.id])

        result = assert_ok(run(["unblock", free.ref, waiting.ref, "--reason", "decided"]))

        assert texts(result) == [
            f"Unblocked {free.ref}  (now ready)",
            f"Unblocked {waiting.ref}  (now todo)",
        ]
        assert board.detail(free.id).comments[-1].body == "UNBLOCK: decided"

    def test_accept_takes_triage_to_ready_or_todo_and_nothing_else(
        self, run, board, make_task, blocked_task
    ):
        parent = make_task()
        free = make_task(triage=True)
        waiting = make_task(triage=True, parents=[parent.id])
        ready = make_task()

        result = run(["accept", free.ref, waiting.ref, ready.ref, "--reason", "do it"])

        assert result.exit_code == 1
        assert texts(result) == [
            f"Accepted {free.ref}  (now ready)",
            f"Accepted {waiting.ref}  (now todo)",
        ]
        assert result.errors == (f"cannot accept {ready.ref}: it is ready (accept takes triage)",)
        assert board.detail(free.id).comments[-1].body == "ACCEPTED: do it"
        assert board.detail(free.id).events[-2].kind == "accepted"

    def test_a_worker_may_not_accept(self, run, board, make_task, worker_on):
        idea = make_task(triage=True)
        worker = worker_on(make_task(assignee="coder"))

        result = run(["accept", idea.ref], actor=worker)

        assert result.exit_code == 1
        assert result.errors == ("a worker may not accept; ask a human (block with a reason)",)
        assert _status(board, idea) is TaskStatus.TRIAGE

    def test_bulk_unblock_reports_each_failure(self, run, board, blocked_task, make_task):
        blocked, ready = blocked_task(), make_task()

        result = run(["unblock", ready.ref, blocked.ref, "t404"])

        assert result.exit_code == 1
        assert texts(result) == [f"Unblocked {blocked.ref}  (now ready)"]
        assert result.errors == (f"cannot unblock {ready.ref}: it is ready", "no such task: t404")
        assert _status(board, blocked) is TaskStatus.READY

    def test_a_worker_may_not_unblock(self, run, board, blocked_task, make_task, worker_on):
        blocked = blocked_task()
        worker = worker_on(make_task(assignee="coder"))

        result = run(["unblock", blocked.ref], actor=worker)

        assert result.exit_code == 1
        assert result.errors == ("a worker may not unblock; ask a human (block with a reason)",)
        assert _status(board, blocked) is TaskStatus.BLOCKED


class TestHeartbeat:
    def test_a_worker_heartbeats_its_own_task(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker = worker_on(task)
        before = board.get(task.id).lease_expires_ms

        result = assert_ok(run(["heartbeat", "--note", "50% done"], actor=worker))

        assert texts(result) == [f"Heartbeat recorded for {task.ref}"]
        assert board.get(task.id).lease_expires_ms >= before
        last = board.recent_events(task_id=task.id, limit=1)[0]
        assert (last.kind, last.payload) == ("heartbeat", {"note": "50% done"})

    def test_with_an_explicit_id(self, run, make_task, worker_on):
        task = make_task(assignee="coder")

        result = assert_ok(run(["heartbeat", task.ref], actor=worker_on(task)))

        assert texts(result) == [f"Heartbeat recorded for {task.ref}"]

    def test_an_operator_has_no_lease_to_renew(self, run, make_task):
        task = make_task()

        result = run(["heartbeat", task.ref])

        assert result.exit_code == 1
        assert result.errors[0].startswith("heartbeat needs a worker's run credentials")

    def test_a_stale_run_is_refused(self, run, board, make_task, worker_on, operator):
        task = make_task(assignee="coder")
        worker = worker_on(task)
        board.reclaim(operator, task.id, "stuck")

        result = run(["heartbeat"], actor=worker)

        assert result.exit_code == 1
        assert result.errors[0].startswith(f"refused to heartbeat {task.ref}: run r")
        assert result.errors[0].endswith("nothing was changed")


class TestReclaim:
    def test_reclaim(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker_on(task)

        result = assert_ok(run(["reclaim", task.ref, "--reason", "stuck"]))

        assert texts(result) == [f"Reclaimed {task.ref}  (now ready)"]
        (attempt,) = board.runs(task.id)
        assert attempt.outcome is RunOutcome.RECLAIMED
        assert attempt.error == "reclaimed by alice: stuck"

    def test_only_a_running_task(self, run, make_task):
        task = make_task()

        result = run(["reclaim", task.ref])

        assert (result.exit_code, result.errors) == (
            1,
            (f"cannot reclaim {task.ref}: it is ready",),
        )


class TestArchive:
    def test_bulk_archive_reports_each_failure(self, run, board, make_task, operator):
        a, b = make_task(), make_task()
        gone = make_task()
        board.archive(operator, gone.id)

        result = run(["archive", a.ref, gone.ref, "nope", b.ref, a.ref])

        assert result.exit_code == 1
        assert texts(result) == [f"Archived {a.ref}", f"Archived {b.ref}"]
        assert result.errors[0] == f"{gone.ref} is already archived"
        assert result.errors[1].startswith("not a task id: 'nope'")
        assert len(result.errors) == 2
        assert _status(board, a) is _status(board, b) is TaskStatus.ARCHIVED

    def test_archiving_a_running_task_closes_its_run(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker_on(task)

        assert texts(assert_ok(run(["archive", task.ref]))) == [f"Archived {task.ref}"]

        (attempt,) = board.runs(task.id)
        assert attempt.outcome is RunOutcome.RECLAIMED

    def test_archiving_a_parent_promotes_its_child(self, run, board, make_task):
        parent = make_task()
        child = make_task(parents=[parent.id])

        assert_ok(run(["archive", parent.ref]))

        assert _status(board, child) is TaskStatus.READY

    def test_the_same_task_spelled_twice_is_archived_once(self, run, make_task):
        # t1 and #1 name one task: archiving it "twice" in one command is not a failure.
        task = make_task()

        result = run(["archive", task.ref, f"#{task.id}"])

        assert (result.exit_code, result.errors) == (0, ())
        assert texts(result) == [f"Archived {task.ref}"]
