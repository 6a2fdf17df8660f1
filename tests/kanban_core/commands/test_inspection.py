"""list, show, stats, runs and assignees through the command tree."""

from __future__ import annotations

import secrets

import pytest

from kanban_core import Actor, BlockKind
from kanban_core.board.runs import block as kernel_block
from kanban_core.commands.inspection import SHOW_EVENTS
from tests.kanban_core.commands.support import (
    assert_ok,
    facts as facts_of,
    headings,
    only_table,
    output,
    tables,
    texts,
)


@pytest.fixture
def sample(board, operator, make_task):
    """A small board: ready, running, blocked, done and archived tasks across two assignees."""
    ready = make_task(title="Write docs", assignee="coder", priority=1)
    urgent = make_task(title="Fix prod", assignee="coder", priority=9, tenant="acme")
    review = make_task(title="Review PR", assignee="reviewer")
    board.claim(operator, review.id)
    stuck = make_task(title="Needs a call")
    board.block(operator, stuck.id, None)
    shipped = make_task(title="Shipped", assignee="reviewer")
    board.complete(operator, shipped.id)
    old = make_task(title="Old idea")
    board.archive(operator, old.id)
    return {
        "ready": ready,
        "urgent": urgent,
        "review": review,
        "stuck": stuck,
        "shipped": shipped,
        "old": old,
    }


class TestList:
    @pytest.mark.parametrize("verb", ["list", "ls"])
    def test_the_table(self, run, sample, verb):
        table = only_table(assert_ok(run([verb])))

        assert table.columns == ("", "ID", "STATUS", "ASSIGNEE", "TITLE")
        assert table.rows == (
            ("▶", "t2", "ready", "coder", "[acme] Fix prod"),
            ("▶", "t1", "ready", "coder", "Write docs"),
            ("●", "t3", "running", "reviewer", "Review PR"),
            ("⊘", "t4", "blocked", "(unassigned)", "Needs a call"),
            ("✓", "t5", "done", "reviewer", "Shipped"),
        )

    def test_filters(self, run, sample):
        def ids(argv: list[str]) -> list[str]:
            return [row[1] for row in only_table(assert_ok(run(argv))).rows]

        assert ids(["list", "--assignee", "coder"]) == ["t2", "t1"]
        assert ids(["list", "--status", "blocked"]) == ["t4"]
        assert ids(["list", "--tenant", "acme"]) == ["t2"]
        assert ids(["list", "--archived", "--sort", "created"]) == [
            "t1",
            "t2",
            "t3",
            "t4",
            "t5",
            "t6",
        ]
        assert ids(["list", "--status", "archived"]) == ["t6"]
        assert ids(["list", "--sort", "title", "--limit", "2"]) == ["t2", "t4"]

    def test_mine_means_the_caller(self, run, sample, operator):
        result = run(["list", "--mine"], actor=Actor(name="reviewer"))

        assert [row[1] for row in only_table(result).rows] == ["t3", "t5"]
        assert texts(run(["list", "--mine"], actor=operator)) == ["(no matching tasks)"]

    def test_nothing_matches(self, run, sample):
        result = assert_ok(run(["list", "--assignee", "nobody"]))

        assert texts(result) == ["(no matching tasks)"]
        assert tables(result) == []

    def test_an_empty_board(self, run):
        assert texts(run(["list"])) == ["(no matching tasks)"]

    def test_json(self, run, sample):
        result = assert_ok(run(["list", "--status", "ready", "--json"]))

        assert result.as_json is True
        assert [t["id"] for t in result.data] == ["t2", "t1"]
        assert result.data[0]["tenant"] == "acme"
        assert run(["list", "--assignee", "nobody", "--json"]).data == []

    def test_a_gave_up_block_is_labelled(self, run, board, make_task):
        task = make_task()
        with board.db.transaction(write=True) as tx:
            kernel_block(tx, task.id, proof=None, reason="3 crashes", kind=BlockKind.GAVE_UP)

        (row,) = only_table(run(["list"])).rows
        assert row[2] == "blocked (gave_up)"

    @pytest.mark.parametrize("limit", ["0", "-3"])
    def test_a_non_positive_limit(self, run, opened, limit):
        result = run(["list", "--limit", limit])

        assert result.exit_code == 2
        (error,) = result.errors
        assert error.startswith("usage: kanban list")
        assert error.endswith("usage error: --limit must be between 1 and 1000000")
        assert opened == []


class TestShow:
    def test_a_full_card(self, run, board, operator, make_task):
        parent = make_task(title="Design")
        task = make_task(
            title="Build it",
            body="The spec.",
            assignee="coder",
            parents=[parent.id],
            skills=["python"],
            max_runtime_s=600,
            idempotency_key="build-1",
        )
        child = make_task(title="Test it", parents=[task.id])
        board.comment(operator, task.id, "ship it")
        board.complete(operator, parent.id)
        claim = board.claim(operator, task.id)
        assert claim is not None
        board.complete(operator, task.id, result="built", summary="all built\nsecond line")

        result = assert_ok(run(["show", task.ref]))

        assert headings(result) == [
            f"{task.ref}  Build it",
            "Body",
            "Result",
            "Comments (1)",
            "Runs (1)",
            "Events (last 5 of 5)",
        ]
        facts = facts_of(tables(result)[0])
        assert tables(result)[0].show_header is False
        assert facts["status"] == "done"
        assert facts["assignee"] == "coder"
        assert facts["workspace"] == "scratch"
        assert facts["created"].endswith(" by alice")
        assert facts["skills"] == "python"
        assert facts["max runtime"] == "600s"
        assert facts["idempotency key"] == "build-1"
        assert (facts["parents"], facts["children"]) == (parent.ref, child.ref)
        body = texts(result)
        assert body[:2] == ["The spec.", "built"]
        assert body[2].startswith("alice (")
        assert body[2].endswith("): ship it")
        assert body[3].startswith(f"r{claim.run_id}  #1  completed  @coder  ")
        assert body[3].endswith("\n    → all built")
        assert [line.split("  ")[1] for line in body[4:]] == [
            "created",
            "commented",
            "promoted",
            "claimed",
            "completed",
        ]
        assert body[-1].endswith(f'[run {claim.run_id}]  {{"result_len":5,"summary":"all built"}}')

    def test_events_are_capped(self, run, board, operator, make_task):
        task = make_task()
        for n in range(SHOW_EVENTS + 5):
            board.comment(operator, task.id, f"note {n}")

        result = run(["show", task.ref])

        total = SHOW_EVENTS + 6
        assert headings(result)[-1] == f"Events (last {SHOW_EVENTS} of {total})"
        event_lines = texts(result)[-SHOW_EVENTS:]
        assert all("  commented  " in line for line in event_lines)

    def test_a_minimal_card_has_no_optional_sections(self, run, make_task):
        task = make_task(title="Bare")

        result = run(["show", task.ref])

        assert headings(result) == [f"{task.ref}  Bare", "Events (last 1 of 1)"]
        facts = facts_of(tables(result)[0])
        assert set(facts) == {
            "status",
            "assignee",
            "priority",
            "tenant",
            "workspace",
            "created",
            "started",
            "completed",
        }
        assert (facts["assignee"], facts["tenant"], facts["started"]) == ("(unassigned)", "-", "-")

    def test_json(self, run, board, operator, make_task):
        parent = make_task()
        task = make_task(parents=[parent.id])
        board.comment(operator, task.id, "hello")

        result = assert_ok(run(["show", task.ref, "--json"]))

        assert result.as_json is True
        assert set(result.data) == {"task", "parents", "children", "comments", "events", "runs"}
        assert result.data["task"]["id"] == task.ref
        assert result.data["task"]["waiting_permission"] == []
        assert result.data["parents"] == [parent.ref]
        assert result.data["children"] == []
        assert [c["body"] for c in result.data["comments"]] == ["hello"]
        assert [e["kind"] for e in result.data["events"]] == ["created", "commented"]
        assert result.data["runs"] == []

    def test_the_placement_is_shown_by_host_name_or_label(self, run, board, operator, make_task):
        board.enroll_host(
            operator, name="build-2", labels=["gpu"], secret=secrets.token_hex(8), readmit=False
        )
        on_host = make_task(host="build-2")
        on_label = make_task(label="gpu")
        anywhere = make_task()
        chat = ("telegram", "100", "")

        for place in (None, chat):
            assert facts_of(tables(run(["show", on_host.ref], place=place))[0])["host"] == "build-2"
            on_gpu = facts_of(tables(run(["show", on_label.ref], place=place))[0])
            assert (on_gpu["label"], "host" in on_gpu) == ("gpu", False)
        assert not {"host", "label"} & set(facts_of(tables(run(["show", anywhere.ref]))[0]))
        shown = {
            ref: run(["show", ref, "--json"]).data["task"]
            for ref in (on_host.ref, on_label.ref, anywhere.ref)
        }
        placed = [
            (shown[t.ref]["host"], shown[t.ref]["label"]) for t in (on_host, on_label, anywhere)
        ]
        assert placed == [("build-2", None), (None, "gpu"), (None, None)]
        listed = {t["id"]: (t["host"], t["label"]) for t in run(["list", "--json"]).data}
        assert [listed[t.ref] for t in (on_host, on_label, anywhere)] == placed
        assert "build-2" in output(run(["show", on_host.ref]))

    def test_chat_sees_no_server_paths_the_terminal_does(self, run, make_task, tmp_path):
        from kanban_core.board.domain import WorkspaceKind
        from kanban_core.board.validation import WorkspaceSpec

        spec = WorkspaceSpec(WorkspaceKind.DIR, str(tmp_path))
        task = make_task(workspace=spec)
        chat = ("telegram", "100", "")

        in_chat = run(["show", task.ref], place=chat)
        in_terminal = run(["show", task.ref])
        chat_json = run(["show", task.ref, "--json"], place=chat).data["task"]
        listed = run(["list", "--json"], place=chat).data

        assert facts_of(tables(in_chat)[0])["workspace"] == "dir"
        assert str(tmp_path) not in output(in_chat)
        assert facts_of(tables(in_terminal)[0])["workspace"] == f"dir @ {tmp_path}"
        assert chat_json["workspace_path"] == "(hidden in chat)"
        assert str(tmp_path) not in str(listed)
        assert run(["show", task.ref, "--json"]).data["task"]["workspace_path"] == str(tmp_path)

    def test_a_missing_task(self, run):
        result = run(["show", "t12"])

        assert (result.exit_code, result.errors, result.blocks) == (1, ("no such task: t12",), ())


class TestStats:
    def test_text(self, run, sample):
        result = assert_ok(run(["stats"]))

        by_status, by_assignee = tables(result)
        assert by_status.columns == ("STATUS", "COUNT")
        assert facts_of(by_status) == {
            "triage": "0",
            "todo": "0",
            "ready": "2",
            "running": "1",
            "blocked": "1",
            "done": "1",
        }
        assert by_assignee.rows == (
            ("coder", "ready=2"),
            ("reviewer", "done=1 running=1"),
        )
        (age,) = texts(result)
        assert age.startswith("oldest ready: ")
        assert age.endswith("s")

    def test_an_empty_board(self, run):
        result = run(["stats"])

        assert len(tables(result)) == 1
        assert texts(result) == ["oldest ready: -"]

    def test_json(self, run, sample):
        result = assert_ok(run(["stats", "--json"]))

        assert set(result.data) == {
            "by_status",
            "by_assignee",
            "oldest_ready_age_seconds",
            "now",
            "input_tokens",
            "output_tokens",
            "cost_usd",
        }
        assert result.data["by_status"]["ready"] == 2
        assert result.data["by_assignee"] == {
            "coder": {"ready": 2},
            "reviewer": {"done": 1, "running": 1},
        }
        assert result.data["oldest_ready_age_seconds"] >= 0
        assert isinstance(result.data["now"], int)


class TestRuns:
    def test_no_runs_yet(self, run, make_task):
        task = make_task()

        assert texts(run(["runs", task.ref])) == [f"(no runs yet for {task.ref})"]

    def test_the_table(self, run, board, operator, make_task):
        task = make_task(assignee="coder")
        first = board.claim(operator, task.id)
        assert first is not None
        board.reclaim(operator, task.id, "stuck")
        second = board.claim(operator, task.id)
        assert second is not None

        table = only_table(assert_ok(run(["runs", task.ref])))

        assert table.columns == ("RUN", "#", "OUTCOME", "PROFILE", "ELAPSED", "STARTED", "NOTE")
        (one, two) = table.rows
        assert one[:4] == (f"r{first.run_id}", "1", "reclaimed", "coder")
        assert one[6] == "✖ reclaimed by alice: stuck"
        assert two[:4] == (f"r{second.run_id}", "2", "running", "coder")
        assert two[6] == ""

    def test_json(self, run, board, operator, make_task):
        task = make_task()
        board.complete(operator, task.id, summary="handoff", metadata={"k": 1})

        result = assert_ok(run(["runs", task.ref, "--json"]))

        (attempt,) = result.data
        assert attempt["task_id"] == task.ref
        assert (attempt["outcome"], attempt["summary"], attempt["metadata"]) == (
            "completed",
            "handoff",
            {"k": 1},
        )

    def test_a_missing_task(self, run):
        assert run(["runs", "t8"]).errors == ("no such task: t8",)


class TestAssignees:
    def test_table(self, run, sample):
        table = only_table(assert_ok(run(["assignees"])))

        assert table.columns == ("ASSIGNEE", "TASKS")
        assert table.rows == (("coder", "ready=2"), ("reviewer", "done=1 running=1"))

    def test_none_yet(self, run, make_task):
        make_task()

        assert texts(run(["assignees"])) == ["(no assignees on the board yet)"]

    def test_json(self, run, sample):
        result = assert_ok(run(["assignees", "--json"]))

        assert result.data == [
            {"name": "coder", "counts": {"ready": 2}},
            {"name": "reviewer", "counts": {"done": 1, "running": 1}},
        ]

    def test_archived_tasks_do_not_count(self, run, board, operator, make_task):
        task = make_task(assignee="ghost")
        board.archive(operator, task.id)

        assert texts(run(["assignees"])) == ["(no assignees on the board yet)"]


def test_the_list_renders_as_aligned_text(run, sample):
    assert output(run(["list"])).splitlines() == [
        "   ID  STATUS   ASSIGNEE      TITLE",
        "▶  t2  ready    coder         [acme] Fix prod",
        "▶  t1  ready    coder         Write docs",
        "●  t3  running  reviewer      Review PR",
        "⊘  t4  blocked  (unassigned)  Needs a call",
        "✓  t5  done     reviewer      Shipped",
    ]
