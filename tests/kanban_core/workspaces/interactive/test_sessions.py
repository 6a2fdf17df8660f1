"""Sessions, agent turns, the follow-up queue and /stop, with the dispatcher played in-process."""

from __future__ import annotations

import pytest

from kanban_core import Actor, Claim, Kanban
from kanban_core.board.domain import RunOutcome
from kanban_core.board.hosts import HostIdentity
from kanban_core.errors import ValidationError
from kanban_core.workspaces.interactive import store, turns
from kanban_core.workspaces.interactive.records import (
    SessionState,
    TurnStatus,
    Workspace,
    WorkspaceStatus,
)
from kanban_core.workspaces.interactive.turns import TurnContext
from tests.kanban_core.workspaces.interactive.conftest import Kit, make_kit, reopen


def _queued(kit: Kit, ws_id: str) -> list[str]:
    with kit.board.db.transaction(write=False) as tx:
        return [q.text for q in store.queued_in_workspace(tx, ws_id)]


def _session_paused(kit: Kit, session_id: str) -> bool:
    with kit.board.db.transaction(write=False) as tx:
        found = store.session(tx, session_id)
    assert found is not None
    return found.queue_paused


# --- turns ----------------------------------------------------------------------------------


def test_a_turn_runs_once_and_answers(kit: Kit) -> None:
    made = kit.create("Add login")
    ws = made.workspace
    assert made.first_turn is not None
    assert made.first_turn.turn_id is not None

    claim, context = kit.begin(ws)

    assert context.turn.id == made.first_turn.turn_id
    assert context.cwd == kit.root / ws.id  # two repos: the container holding both
    assert context.resume is False
    assert "Add login" in context.prompt
    assert "api/" in context.prompt
    assert "web/" in context.prompt
    assert context.env["KANBAN_WORKSPACE_ID"] == ws.id
    assert context.env["KANBAN_WORKSPACE_BRANCH"] == ws.branch
    assert context.env["KANBAN_AGENT_SESSION_ID"] == context.session.agent_session_id
    assert context.env["KANBAN_RESUME"] == "0"
    assert kit.turn(context.turn.id).status is TurnStatus.RUNNING
    assert kit.turn(context.turn.id).run_id == claim.run_id
    assert kit.get(ws).status is WorkspaceStatus.RUNNING

    kit.board.complete(Actor("coder", run=claim.proof), ws.task_id, summary="login added")
    assert turns.finish(kit.board, claim.run_id) is True
    assert turns.finish(kit.board, claim.run_id) is False  # a duplicate ack changes nothing
    assert turns.settle_all(kit.board) == 0

    turn = kit.turn(context.turn.id)
    assert turn.status is TurnStatus.COMPLETED
    assert turn.ended_ms is not None
    assert set(turn.after_heads) >= {"api", "web"}
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.READY
    history = kit.svc.history(kit.svc.session_of(ws, None))
    assert [(m.role, m.text) for m in history] == [
        ("user", "Add login"),
        ("assistant", "login added"),
    ]
    assert [state for _, state, _ in kit.svc.sessions(ws)] == [SessionState.IDLE]


def test_a_single_repo_turn_works_in_the_worktree(kit: Kit) -> None:
    ws = kit.create(repos=("api",)).workspace
    _claim, context = kit.begin(ws)
    assert context.cwd == ws.repos[0].worktree


def test_follow_ups_queue_behind_a_running_turn_and_resume_the_session(kit: Kit) -> None:
    ws = kit.create().workspace
    claim, first = kit.begin(ws)

    one = kit.svc.follow_up(kit.get(ws), kit.caller(key="m1"), "also add tests")
    two = kit.svc.follow_up(kit.get(ws), kit.caller(key="m2"), "and docs")
    again = kit.svc.follow_up(kit.get(ws), kit.caller(key="m1"), "also add tests")

    assert (one.turn_id, one.position, one.paused) == (None, 1, False)
    assert (two.turn_id, two.position) == (None, 2)
    assert again.duplicate
    assert _queued(kit, ws.id) == ["also add tests", "and docs"]

    assert kit.complete(claim, "first done")

    # "also add tests" started by itself, as a new pending turn in the same session
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.RUNNING
    assert _queued(kit, ws.id) == ["and docs"]
    claim2, second = kit.begin(ws)
    assert second.turn.prompt == "also add tests"
    assert second.session.id == first.session.id
    assert second.session.agent_session_id == first.session.agent_session_id
    assert second.resume is True
    assert second.env["KANBAN_RESUME"] == "1"
    assert kit.complete(claim2, "tests added")

    claim3, third = kit.begin(kit.get(ws))
    assert third.turn.prompt == "and docs"
    assert third.resume is True
    assert kit.complete(claim3, "docs added")
    assert _queued(kit, ws.id) == []
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.READY
    texts = [m.text for m in kit.svc.history(kit.svc.session_of(ws, None))]
    assert texts == [
        "Add login",
        "first done",
        "also add tests",
        "tests added",
        "and docs",
        "docs added",
    ]


def test_a_failed_turn_pauses_the_queue_until_someone_chooses(kit: Kit) -> None:
    ws = kit.create().workspace
    claim, context = kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "also add tests")
    kit.svc.follow_up(kit.get(ws), kit.caller(), "and docs")

    kit.crash(claim)
    assert turns.finish(kit.board, claim.run_id) is True

    turn = kit.turn(context.turn.id)
    assert turn.status is TurnStatus.FAILED
    assert "code 3" in (turn.error or "")
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.FAILED
    assert _session_paused(kit, context.session.id)
    assert _queued(kit, ws.id) == ["also add tests", "and docs"]
    [notice] = kit.notices(ws)
    assert "2 queued follow-up(s) paused" in notice["text"]
    assert [label for label, _ in notice["buttons"]] == ["Run next", "Clear queue"]
    assert all(ws.id in command for _, command in notice["buttons"])
    # nothing starts by itself: not the settle pass, not a claim
    assert turns.settle_all(kit.board) == 0
    with kit.board.db.transaction(write=False) as tx:
        assert store.active_turn(tx, ws.id) is None
    assert kit.board.claim(Actor("dispatcher"), ws.task_id) is None
    # a new message waits behind the paused queue too
    late = kit.svc.follow_up(ws, kit.caller(), "one more")
    assert late.turn_id is None
    assert late.position == 3
    assert late.paused
    assert [s for _, s, _ in kit.svc.sessions(ws)] == [SessionState.NEEDS_ATTENTION]

    started = kit.svc.queue_run(ws, kit.caller())

    assert started is not None
    assert kit.turn(started).prompt == "also add tests"
    assert not _session_paused(kit, context.session.id)
    claim2, second = kit.begin(kit.get(ws))
    assert second.turn.id == started
    assert second.resume is True
    assert kit.complete(claim2)
    assert kit.turn(started).status is TurnStatus.COMPLETED
    # success goes on with the queue: "and docs" is next
    assert _queued(kit, ws.id) == ["one more"]

    claim3, _ = kit.begin(kit.get(ws))
    kit.crash(claim3)
    assert turns.finish(kit.board, claim3.run_id)
    assert _session_paused(kit, context.session.id)
    assert kit.svc.queue_clear(kit.get(ws), kit.caller()) == 1
    assert _queued(kit, ws.id) == []
    assert not _session_paused(kit, context.session.id)
    assert kit.count("queued_messages", "state = 'cancelled'") == 1


def test_a_dead_supervisor_is_settled_once(kit: Kit) -> None:
    ws = kit.create().workspace
    claim, context = kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "next")
    kit.crash(claim, "the supervisor was killed")  # and turns.finish never ran

    assert turns.settle_all(kit.board) == 1
    assert turns.settle_all(kit.board) == 0
    assert turns.finish(kit.board, claim.run_id) is False  # a late supervisor changes nothing

    turn = kit.turn(context.turn.id)
    assert turn.status is TurnStatus.FAILED
    assert kit.get(ws).status is WorkspaceStatus.FAILED
    assert _session_paused(kit, context.session.id)
    assert _queued(kit, ws.id) == ["next"]
    assert kit.count("session_messages", "role = 'assistant'") == 1


def test_queued_items_survive_a_restart(durable_board: Kanban, tmp_path: object) -> None:
    from pathlib import Path

    kit = make_kit(durable_board, Path(str(tmp_path)))
    ws = kit.create().workspace
    claim, context = kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "also add tests")
    kit.svc.follow_up(kit.get(ws), kit.caller(), "and docs")

    kit.board = reopen(durable_board)
    try:
        assert _queued(kit, ws.id) == ["also add tests", "and docs"]
        assert kit.complete(claim, "done")
        _claim2, second = kit.begin(kit.get(ws))
        assert second.turn.prompt == "also add tests"
        assert second.session.agent_session_id == context.session.agent_session_id
    finally:
        kit.board.close()


def test_the_queue_has_a_cap(kit: Kit) -> None:
    kit.configure(queue_max_per_session=2)
    ws = kit.create().workspace
    kit.svc.follow_up(ws, kit.caller(), "one")
    kit.svc.follow_up(ws, kit.caller(), "two")
    with pytest.raises(turns.QueueFull):
        kit.svc.follow_up(ws, kit.caller(), "three")
    assert _queued(kit, ws.id) == ["one", "two"]


# --- sessions -------------------------------------------------------------------------------


def test_a_new_session_keeps_the_first_ones_history(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.run_turn(ws, "S1 answer")
    kit.svc.follow_up(kit.get(ws), kit.caller(), "S1 again")
    kit.run_turn(kit.get(ws), "S1 answer 2")
    s1 = kit.svc.session_of(kit.get(ws), None)
    s1_messages = [m.text for m in kit.svc.history(s1)]
    assert len(s1_messages) == 4

    s2 = kit.svc.new_session(kit.get(ws), kit.caller(), name="review", executor=None)

    ws = kit.get(ws)
    assert ws.active_session_id == s2.id
    assert s2.position == 2
    assert s2.agent_session_id != s1.agent_session_id
    kit.svc.follow_up(ws, kit.caller(), "hello S2")
    claim, context = kit.begin(kit.get(ws))
    assert context.session.id == s2.id
    assert context.resume is False  # the first turn of a new agent session
    assert context.env["KANBAN_AGENT_SESSION_ID"] == s2.agent_session_id
    assert kit.complete(claim, "S2 answer")
    with kit.board.db.transaction(write=False) as tx:
        assert {t.session_id for t in store.session_turns(tx, s2.id, limit=10)} == {s2.id}
        assert len(store.session_turns(tx, s1.id, limit=10)) == 2

    back = kit.svc.use_session(kit.get(ws), "1")

    assert back.id == s1.id
    assert back.agent_session_id == s1.agent_session_id
    assert [m.text for m in kit.svc.history(back)] == s1_messages
    assert [m.text for m in kit.svc.history(s2)] == ["hello S2", "S2 answer"]
    assert kit.get(ws).active_session_id == s1.id


def test_an_executor_mismatch_is_refused(kit: Kit) -> None:
    ws = kit.create().workspace
    with pytest.raises(ValidationError, match="talks to coder, not codex"):
        kit.svc.follow_up(ws, kit.caller(), "use codex", executor="codex")
    assert _queued(kit, ws.id) == []
    with pytest.raises(ValidationError, match="no agent profile 'ghost'"):
        kit.svc.new_session(ws, kit.caller(), name=None, executor="ghost")
    s2 = kit.svc.new_session(ws, kit.caller(), name=None, executor="codex")
    assert s2.executor == "codex"


# --- stop -----------------------------------------------------------------------------------


def test_stop_a_running_turn(kit: Kit) -> None:
    ws = kit.create().workspace
    claim, context = kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "queued")

    line = kit.svc.stop(kit.get(ws), kit.caller())

    assert context.turn.id in line
    [run] = kit.board.runs(ws.task_id)
    assert run.outcome is not None
    assert run.outcome.value == "cancelled"
    task = kit.board.get(ws.task_id)
    assert task.status.value == "blocked"
    assert task.block_kind is not None
    assert task.block_kind.value == "human"
    assert kit.turn(context.turn.id).status is TurnStatus.CANCELLED
    ws = kit.get(ws)
    assert ws.status is WorkspaceStatus.PAUSED
    assert _session_paused(kit, context.session.id)
    assert _queued(kit, ws.id) == ["queued"]
    # the supervisor's late report changes nothing, nothing starts by itself
    assert turns.finish(kit.board, claim.run_id) is False
    assert turns.settle_all(kit.board) == 0
    assert kit.board.claim(Actor("dispatcher"), ws.task_id) is None
    assert ("stop", "ok") in kit.audit_ops(ws.id)
    assert kit.svc.stop(ws, kit.caller()).endswith("nothing is running")


def test_a_stop_is_the_operators_and_names_the_paused_queue(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "queued")

    kit.svc.stop(kit.get(ws), kit.caller(name="olga"))

    [blocked] = [e for e in kit.board.detail(ws.task_id).events if e.kind == "blocked"]
    assert blocked.payload == {
        "reason": "stopped by olga",
        "kind": "human",
        "by": "olga",
        "stopped": True,
        "workspace": ws.id,
        "queued": 1,
    }


def test_unblocking_a_stopped_turn_runs_the_queued_message_not_a_synthetic_one(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.begin(ws)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "write later.py")
    kit.svc.stop(kit.get(ws), kit.caller())

    kit.board.unblock(Actor("olga"), ws.task_id)
    claim, context = kit.begin(kit.get(ws))

    assert context.turn.prompt == "write later.py"
    assert context.turn.requested_by == "alice"
    assert "write later.py" in context.prompt
    assert "continue the task" not in context.prompt
    assert _queued(kit, ws.id) == []
    assert not _session_paused(kit, context.session.id)
    assert kit.complete(claim)
    assert kit.get(ws).status is WorkspaceStatus.READY


def test_unblocking_with_nothing_queued_continues_the_task(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.begin(ws)
    kit.svc.stop(kit.get(ws), kit.caller())

    kit.board.unblock(Actor("olga"), ws.task_id)
    _claim, context = kit.begin(kit.get(ws))

    assert context.turn.requested_by == "board"
    assert "continue the task" in context.turn.prompt


def test_stop_a_pending_turn_parks_the_task(kit: Kit) -> None:
    made = kit.create()
    ws = made.workspace
    assert made.first_turn is not None
    assert made.first_turn.turn_id is not None

    kit.svc.stop(ws, kit.caller())

    task = kit.board.get(ws.task_id)
    assert task.status.value == "blocked"
    assert kit.turn(made.first_turn.turn_id).status is TurnStatus.CANCELLED
    assert kit.board.claim(Actor("dispatcher"), ws.task_id) is None
    assert kit.get(ws).status is WorkspaceStatus.PAUSED
    # a new message is the way on
    again = kit.svc.follow_up(kit.get(ws), kit.caller(), "go on")
    assert again.turn_id is not None
    _claim, context = kit.begin(kit.get(ws))
    assert context.turn.id == again.turn_id


# --- what a turn checks around the agent ------------------------------------------------------


def test_a_worktree_deleted_by_hand_is_recreated_for_the_next_turn(kit: Kit) -> None:
    import shutil

    from tests.gitrepos import commit, git, worktree_list

    ws = kit.create().workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    api_wt = ws.repos[0].worktree
    tip = commit(api_wt, "kept.py", "kept\n")
    web_list = worktree_list(kit.web)
    shutil.rmtree(api_wt)
    kit.svc.follow_up(ws, kit.caller(), "go on")

    _claim, context = kit.begin(kit.get(ws))

    [note] = context.notes
    assert "api" in note
    assert "could not be recovered" in note
    assert any(note == n["text"] for n in kit.notices(ws))
    assert git(api_wt, "rev-parse", "HEAD") == tip
    assert worktree_list(kit.web) == web_list
    assert worktree_list(kit.api).count("worktree ") == 2


def test_an_agent_escaping_its_worktree_is_reported(kit: Kit) -> None:
    from tests.gitrepos import commit, git

    ws = kit.create(repos=("api",)).workspace
    claim, _context = kit.begin(ws)
    (kit.api / "README.md").write_text("the agent wrote here\n")  # the user's own checkout
    wt = ws.repos[0].worktree
    commit(wt, "pushed.py", "x\n")
    git(wt, "push", "-q", "origin", ws.branch)  # and pushed by itself

    assert kit.complete(claim)

    texts = [n["text"] for n in kit.notices(ws)]
    assert any("changed your own checkout of api" in t and "README.md" in t for t in texts)
    assert any("did the agent push by itself" in t for t in texts)


def test_a_session_resumes_only_after_its_agent_really_started(kit: Kit) -> None:
    ws = kit.create().workspace
    kit.svc.stop(ws, kit.caller())  # the first turn never reached the agent
    kit.svc.follow_up(kit.get(ws), kit.caller(), "go on")

    claim, context = kit.begin(kit.get(ws))

    assert context.resume is False  # there is no agent session to resume yet
    assert context.env["KANBAN_RESUME"] == "0"
    assert kit.complete(claim)
    kit.svc.follow_up(kit.get(ws), kit.caller(), "and then")
    _claim, later = kit.begin(kit.get(ws))
    assert later.resume is True


def test_a_turn_whose_agent_could_not_start_does_not_make_the_next_one_resume(kit: Kit) -> None:
    ws = kit.create().workspace
    claim, _first = kit.begin(ws)
    kit.crash(claim, "cannot start 'claude': No such file", RunOutcome.SPAWN_FAILED)
    assert turns.finish(kit.board, claim.run_id) is True
    assert kit.svc.follow_up(kit.get(ws), kit.caller(), "try again").turn_id is not None

    claim2, second = kit.begin(kit.get(ws))

    assert second.resume is False  # the agent never ran: its session does not exist yet
    kit.crash(claim2)  # this time it ran, then failed
    assert turns.finish(kit.board, claim2.run_id) is True
    assert kit.svc.follow_up(kit.get(ws), kit.caller(), "once more").turn_id is not None
    _claim3, third = kit.begin(kit.get(ws))
    assert third.resume is True


def test_a_worktree_that_cannot_be_restored_fails_the_turn_instead_of_stalling(kit: Kit) -> None:
    import shutil

    from kanban_core.errors import KanbanError

    ws = kit.create().workspace
    kit.run_turn(ws)
    ws = kit.get(ws)
    api_wt = ws.repos[0].worktree
    shutil.rmtree(api_wt)
    api_wt.mkdir()  # something that is not our worktree now sits there
    (api_wt / "theirs.txt").write_text("not ours\n")
    kit.svc.follow_up(ws, kit.caller(), "go on")
    kit.svc.follow_up(kit.get(ws), kit.caller(), "queued behind")
    claim = kit.claim(kit.get(ws))

    with pytest.raises(KanbanError, match="not a registered worktree"):
        turns.begin(kit.board, ws.task_id, claim.run_id)
    kit.crash(claim, "workspace: not a registered worktree")  # what the supervisor records
    turns.finish(kit.board, claim.run_id)
    assert turns.settle_all(kit.board) == 0

    with kit.board.db.transaction(write=False) as tx:
        assert store.active_turn(tx, ws.id) is None
        [failed] = [
            t for t in store.session_turns(tx, ws.active_session_id or "") if t.prompt == "go on"
        ]
    assert failed.status is TurnStatus.FAILED
    assert "could not be prepared" in (failed.error or "")
    assert kit.get(ws).status is WorkspaceStatus.FAILED
    assert _queued(kit, ws.id) == ["queued behind"]
    assert any("paused" in n["text"] for n in kit.notices(ws))
    assert (api_wt / "theirs.txt").read_text() == "not ours\n"


def test_a_turn_stopped_between_claim_and_start_never_starts(kit: Kit) -> None:
    from kanban_core.errors import KanbanError

    made = kit.create()
    ws = made.workspace
    claim = kit.claim(ws)  # the dispatcher claimed; the supervisor has not begun yet
    kit.svc.stop(kit.get(ws), kit.caller())

    with pytest.raises(KanbanError, match="ended"):
        turns.begin(kit.board, ws.task_id, claim.run_id)

    assert kit.count("workspace_turns") == 1  # no "continue the task" turn was invented
    assert made.first_turn is not None
    assert made.first_turn.turn_id is not None
    assert kit.turn(made.first_turn.turn_id).status is TurnStatus.CANCELLED
    assert kit.get(ws).status is WorkspaceStatus.PAUSED
    assert turns.finish(kit.board, claim.run_id) is False


def test_a_pending_turn_whose_task_was_blocked_by_hand_is_ended_not_waited_on(kit: Kit) -> None:
    ws = kit.create("Add login", repos=("api",)).workspace
    kit.svc.follow_up(kit.get(ws), kit.caller(), "and docs")  # queued behind the first turn
    kit.board.block(Actor("alice"), ws.task_id, "not now")

    assert turns.settle_all(kit.board) >= 1

    with kit.board.db.transaction(write=False) as tx:
        assert store.active_turn(tx, ws.id) is None
        (session,) = store.sessions(tx, ws.id)
    assert session.queue_paused
    assert kit.get(ws).status is WorkspaceStatus.FAILED
    assert any("paused" in n.get("text", "") for n in kit.notices(ws))


def _turn_on_build_2(
    kit: Kit,
) -> tuple[HostIdentity, HostIdentity, Workspace, Claim, TurnContext]:
    """Hosts build-1 and build-2 enrolled; a workspace made on build-2, its turn begun there."""
    operator = Actor("alice")
    here, there = (
        kit.board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)
        for name in ("build-1", "build-2")
    )
    kit.board.host = there
    ws = kit.create(repos=("api",)).workspace
    claim, context = kit.begin(ws)
    return here, there, ws, claim, context


def test_a_dead_supervisors_turn_is_settled_on_its_workspaces_host_only(kit: Kit) -> None:
    """Settling reads the worktree (what the agent left, whether it escaped): another host's
    gateway must leave it to the workspace's own host, unless that host was revoked."""
    here, there, _ws, claim, context = _turn_on_build_2(kit)
    kit.crash(claim, "the supervisor was killed")

    kit.board.host = here
    assert turns.settle_all(kit.board) == 0
    assert kit.turn(context.turn.id).status is TurnStatus.RUNNING

    kit.board.host = there
    assert turns.settle_all(kit.board) == 1
    assert kit.turn(context.turn.id).status is TurnStatus.FAILED


def test_a_revoked_hosts_dead_turn_is_settled_elsewhere_without_its_disk(kit: Kit) -> None:
    operator = Actor("alice")
    here, _there, ws, claim, context = _turn_on_build_2(kit)
    (kit.api / "README.md").write_text("changed on this machine, not by build-2's agent\n")
    kit.board.revoke_host(operator, "build-2")
    kit.board.reclaim(operator, ws.task_id, reason="its host was revoked")

    kit.board.host = here
    assert turns.settle_all(kit.board) == 1
    assert kit.turn(context.turn.id).status is not TurnStatus.RUNNING
    # Its disk is out of reach: nothing read here is reported as what the agent did.
    assert not any("changed your own checkout" in n["text"] for n in kit.notices(ws))
    assert claim.run_id  # the run the turn was bound to is closed
