"""create, edit, assign, comment, link and unlink through the command tree."""

from __future__ import annotations

import dataclasses

import pytest

from kanban_core import TaskStatus, WorkspaceKind
from kanban_core.commands import run_command
from tests.kanban_core.commands.support import assert_ok, assert_usage_error, texts
from tests.shapes import TASK_JSON_KEYS


class TestCreate:
    def test_text_line_and_created_id(self, run, board):
        result = assert_ok(run(["create", "Fix the login bug", "--assignee", "coder"]))

        assert texts(result) == ["Created t1  (ready, assignee=coder)"]
        assert result.created == (1,)
        assert result.as_json is False
        task = board.get(result.created[0])
        assert (task.title, task.assignee, task.created_by) == (
            "Fix the login bug",
            "coder",
            "alice",
        )

    def test_unassigned_shows_a_dash(self, run):
        assert texts(run(["create", "Idea"])) == ["Created t1  (ready, assignee=-)"]

    def test_every_option_reaches_the_task(self, run, board, make_task):
        parent = make_task()
        result = assert_ok(
            run(
                [
                    "create",
                    "Ship it",
                    "--body",
                    "spec here",
                    "--assignee",
                    "coder",
                    "--parent",
                    parent.ref,
                    "--workspace",
                    "dir:/srv/project",
                    "--tenant",
                    "acme",
                    "--priority",
                    "7",
                    "--max-runtime",
                    "30m",
                    "--skill",
                    "python",
                    "--skill",
                    "sql",
                ]
            )
        )

        assert texts(result) == ["Created t2  (todo, assignee=coder)"]
        task = board.get(result.created[0])
        assert task.body == "spec here"
        assert task.status is TaskStatus.TODO
        assert (task.workspace_kind, task.workspace_path) == (WorkspaceKind.DIR, "/srv/project")
        assert (task.tenant, task.priority, task.max_runtime_s) == ("acme", 7, 1800)
        assert task.skills == ("python", "sql")
        assert board.detail(task.id).parents == (parent.id,)

    def test_triage(self, run):
        assert texts(run(["create", "Rough idea", "--triage"])) == [
            "Created t1  (triage, assignee=-)"
        ]

    def test_json_shape(self, run):
        result = assert_ok(run(["create", "Fix it", "--assignee", "coder", "--json"]))

        assert result.as_json is True
        assert result.blocks == ()
        assert set(result.data) == TASK_JSON_KEYS | {"created"}
        assert result.data["created"] is True
        assert (result.data["id"], result.data["status"]) == ("t1", "ready")
        assert result.created == (1,)

    def test_an_idempotent_repeat_creates_nothing(self, run, board):
        first = assert_ok(run(["create", "Nightly build", "--idempotency-key", "nightly-42"]))
        again = assert_ok(run(["create", "Nightly build", "--idempotency-key", "nightly-42"]))

        assert first.created == (1,)
        assert again.created == ()
        assert texts(again) == [
            "Exists  t1  (ready, assignee=-)  — idempotency key 'nightly-42' already names it"
        ]
        assert len(board.list()) == 1

    def test_an_idempotent_repeat_in_json(self, run):
        run(["create", "Nightly build", "--idempotency-key", "k"])
        again = assert_ok(run(["create", "Nightly build", "--idempotency-key", "k", "--json"]))

        assert again.data["created"] is False
        assert again.data["id"] == "t1"
        assert again.created == ()

    def test_a_missing_parent_is_refused(self, run, board):
        result = run(["create", "Child", "--parent", "t41", "--parent", "t42"])

        assert result.exit_code == 1
        assert result.errors == ("no such task: t41, t42",)
        assert result.created == ()
        assert board.list() == []

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["create", "   "], "title must not be empty"),
            (
                ["create", "x", "--assignee", "two words"],
                "assignee 'two words' is not a valid name",
            ),
            (["create", "x", "--priority", "99999999"], "priority must be between"),
        ],
    )
    def test_invalid_values_are_refused(self, run, board, argv, message):
        result = run(argv)

        assert result.exit_code == 1
        assert len(result.errors) == 1
        assert message in result.errors[0]
        assert board.list() == []

    def test_a_worker_inherits_its_tenant(self, run, make_task, worker_on, board):
        parent = make_task(assignee="coder", tenant="acme")
        worker = worker_on(parent)

        result = assert_ok(
            run(["create", "Subtask"], actor=worker, environ={"KANBAN_TENANT": "acme"})
        )

        task = board.get(result.created[0])
        assert task.tenant == "acme"
        assert task.created_by.startswith("coder@r")

    def test_an_operator_does_not_inherit_the_environment_tenant(self, run, board):
        result = assert_ok(run(["create", "Top"], environ={"KANBAN_TENANT": "acme"}))

        assert board.get(result.created[0]).tenant is None


class TestEdit:
    def test_text_and_changes(self, run, board, make_task):
        task = make_task(title="old", body="old body", tenant="acme")

        result = assert_ok(
            run(
                [
                    "edit",
                    task.ref,
                    "--title",
                    "new",
                    "--body",
                    "",
                    "--priority",
                    "5",
                    "--tenant",
                    "none",
                ]
            )
        )

        assert texts(result) == [f"Edited {task.ref}"]
        edited = board.get(task.id)
        assert (edited.title, edited.body, edited.priority, edited.tenant) == ("new", None, 5, None)

    def test_json(self, run, make_task):
        task = make_task()

        result = assert_ok(run(["edit", task.ref, "--title", "renamed", "--json"]))

        assert result.as_json is True
        assert set(result.data) == TASK_JSON_KEYS
        assert result.data["title"] == "renamed"

    def test_a_missing_task(self, run):
        result = run(["edit", "t9", "--title", "x"])

        assert (result.exit_code, result.errors) == (1, ("no such task: t9",))

    def test_a_worker_may_not_edit(self, run, make_task, worker_on, board):
        task = make_task(assignee="coder")

        result = run(["edit", task.ref, "--title", "mine now"], actor=worker_on(task))

        assert result.exit_code == 1
        assert result.errors == ("a worker may not edit; ask a human (block with a reason)",)
        assert board.get(task.id).title == task.title


class TestAssign:
    def test_assign(self, run, board, make_task):
        task = make_task()

        result = assert_ok(run(["assign", task.ref, "coder"]))

        assert texts(result) == [f"Assigned {task.ref} to coder"]
        assert board.get(task.id).assignee == "coder"

    @pytest.mark.parametrize("nobody", ["none", "-", "null"])
    def test_unassign(self, run, board, make_task, nobody):
        task = make_task(assignee="coder")

        result = assert_ok(run(["assign", task.ref, nobody]))

        assert texts(result) == [f"Assigned {task.ref} to (unassigned)"]
        assert board.get(task.id).assignee is None

    def test_a_running_task_cannot_be_reassigned(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker_on(task)

        result = run(["assign", task.ref, "other"])

        assert result.exit_code == 1
        assert "it is running" in result.errors[0]
        assert board.get(task.id).assignee == "coder"


class TestComment:
    def test_words_are_joined(self, run, board, make_task):
        task = make_task()

        result = assert_ok(run(["comment", task.ref, "looks", "good", "to me"]))

        assert texts(result) == [f"Comment added to {task.ref}"]
        (comment,) = board.detail(task.id).comments
        assert (comment.author, comment.body) == ("alice", "looks good to me")

    def test_a_worker_comments_under_its_run(self, run, board, make_task, worker_on):
        task = make_task(assignee="coder")
        worker = worker_on(task)

        assert_ok(run(["comment", task.ref, "progress"], actor=worker))

        (comment,) = board.detail(task.id).comments
        assert comment.author == f"coder@r{worker.run.run_id}"

    def test_a_missing_task(self, run):
        result = run(["comment", "t3", "hello"])

        assert (result.exit_code, result.errors) == (1, ("no such task: t3",))

    def test_a_blank_comment_is_refused(self, run, make_task):
        task = make_task()

        result = run(["comment", task.ref, "  "])

        assert (result.exit_code, result.errors) == (1, ("comment must not be empty",))


class TestLinks:
    def test_link_and_relink(self, run, board, make_task):
        parent, child = make_task(), make_task()

        first = assert_ok(run(["link", parent.ref, child.ref]))
        again = assert_ok(run(["link", parent.ref, child.ref]))

        assert texts(first) == [f"Linked {parent.ref} -> {child.ref}"]
        assert texts(again) == [f"Linked {parent.ref} -> {child.ref}  (already linked)"]
        assert board.get(child.id).status is TaskStatus.TODO

    def test_ids_are_accepted_in_every_spelling(self, run, board, make_task):
        parent, child = make_task(), make_task()

        assert_ok(run(["link", f"#{parent.id}", f"T{child.id}"]))

        assert board.detail(child.id).parents == (parent.id,)

    def test_a_cycle_is_refused(self, run, make_task):
        a, b = make_task(), make_task()
        assert_ok(run(["link", a.ref, b.ref]))

        result = run(["link", b.ref, a.ref])

        assert result.exit_code == 1
        assert result.errors == (f"linking {b.ref} -> {a.ref} would create a cycle",)

    def test_a_self_link_is_refused(self, run, make_task):
        task = make_task()

        result = run(["link", task.ref, task.ref])

        assert (result.exit_code, result.errors) == (1, ("a task cannot depend on itself",))

    def test_unlink(self, run, board, make_task):
        parent, child = make_task(), make_task()
        run(["link", parent.ref, child.ref])

        result = assert_ok(run(["unlink", parent.ref, child.ref]))

        assert texts(result) == [f"Unlinked {parent.ref} -> {child.ref}"]
        assert board.get(child.id).status is TaskStatus.READY

    def test_unlinking_nothing_is_a_refusal(self, run, make_task):
        parent, child = make_task(), make_task()

        result = run(["unlink", parent.ref, child.ref])

        assert result.exit_code == 1
        assert result.blocks == ()
        assert result.errors == (f"No such link {parent.ref} -> {child.ref}",)

    def test_a_malformed_id_is_a_usage_error(self, run_offline):
        assert_usage_error(run_offline(["link", "t1", "child"]), "usage: kanban link", "'child'")


class TestReplace:
    """``edit --host/--label/--any-host``: an admin's re-placement, said plainly."""

    @pytest.fixture
    def hosts(self, board, operator):
        for name in ("alpha", "beta"):
            board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)

    def test_from_chat_it_needs_the_admin_role_whatever_the_surface(
        self, hosts, make_ctx, make_task, board
    ):
        task = make_task(host="alpha")
        for role in (None, "operator", "approver"):
            ctx = dataclasses.replace(make_ctx(place=("telegram", "1", "")), role=role)
            result = run_command(["edit", task.ref, "--host", "beta"], ctx)
            assert result.errors == ("re-placing a task needs the admin role",)
        admin = dataclasses.replace(make_ctx(place=("telegram", "1", "")), role="admin")
        assert_ok(run_command(["edit", task.ref, "--host", "beta"], admin))

    def test_a_worker_may_not_re_place(self, hosts, run, make_task, worker_on, board):
        task = make_task(assignee="coder")
        result = run(["edit", task.ref, "--any-host"], actor=worker_on(task))
        assert result.exit_code == 1
        assert "a worker may not re-place a task" in result.errors[0]

    def test_the_worktree_left_behind_is_named_and_hidden_from_chat(
        self, hosts, run, make_task, board, operator, make_ctx
    ):
        from kanban_core.board.validation import WorkspaceSpec
        from tests.kanban_core.support import set_columns

        task = make_task(workspace=WorkspaceSpec(WorkspaceKind.WORKTREE), repo="/srv/repo")
        alpha = scalar_host(board, "alpha")
        set_columns(
            board, task.id, host_id=alpha, workspace_path="/srv/wt/t1", branch_name="kanban/t1"
        )
        board.revoke_host(operator, "alpha")

        result = assert_ok(run(["edit", task.ref, "--host", "beta"]))

        assert texts(result) == [
            f"Re-placed {task.ref}: host 'alpha' → host 'beta'",
            "Its worktree /srv/wt/t1 (branch kanban/t1) stays on the disk of host 'alpha': the "
            "task is detached from it, and its next run makes a new worktree where it runs",
            f"It is still blocked: `unblock {task.ref}` lets its new host claim it",
        ]
        other = make_task(workspace=WorkspaceSpec(WorkspaceKind.WORKTREE), repo="/srv/repo")
        set_columns(board, other.id, host_id=scalar_host(board, "beta"), workspace_path="/b/t2")
        ctx = dataclasses.replace(make_ctx(place=("telegram", "1", "")), role="admin")
        said = texts(assert_ok(run_command(["edit", other.ref, "--any-host"], ctx)))
        # A chat is never shown a server path.
        assert said[1].startswith("Its worktree stays on the disk of host 'beta': ")
        assert "/b/t2" not in " ".join(said)


def scalar_host(board, name: str) -> int:
    from tests.kanban_core.support import scalar

    return int(scalar(board, "SELECT id FROM hosts WHERE name = :name", name=name))
