"""Enrolled hosts: placement inside the claim, revocation fencing runs, and bad input refused."""

from __future__ import annotations

from typing import Any

import pytest

from kanban_core import RunOutcome, TaskStatus
from kanban_core.board.hosts import HostIdentity, HostState
from kanban_core.board.recovery import FailurePolicy
from kanban_core.errors import PermissionDenied, StaleRun, ValidationError
from tests.kanban_core.support import as_host, rows, snapshot, worker
from tests.support import roundtrips

_SECRET = "-".join(("not", "a", "real", "one"))


def test_a_task_for_a_host_is_claimed_only_by_that_host(board, operator, make_task, enroll):
    alpha, beta = enroll("alpha"), enroll("beta")
    pinned = make_task(host="alpha")
    loose = make_task()

    assert as_host(board, beta).claim(operator, pinned.id) is None
    assert as_host(board, None).claim(operator, pinned.id) is None
    # Picking the next task skips what another host must run.
    claim = as_host(board, beta).claim(operator, None)
    assert claim is not None
    assert claim.task.id == loose.id
    assert as_host(board, beta).claim(operator, None) is None

    mine = as_host(board, alpha).claim(operator, None)
    assert mine is not None
    assert mine.task.id == pinned.id
    assert rows(board, "SELECT host_id FROM task_runs WHERE id = :id", id=mine.run_id) == [
        (alpha.host_id,)
    ]


def test_a_label_routes_work_to_the_hosts_carrying_it(board, operator, make_task, enroll):
    gpu, plain = enroll("gpu-box", "gpu", "linux"), enroll("plain", "linux")
    task = make_task(label="gpu")

    assert as_host(board, plain).claim(operator, None) is None
    assert as_host(board, None).claim(operator, task.id) is None
    claim = as_host(board, gpu).claim(operator, None, assignee=None)
    assert claim is not None
    assert claim.task.id == task.id


def test_caps_still_hold_for_a_host(board, operator, make_task, enroll):
    alpha = enroll("alpha")
    make_task(host="alpha")
    make_task(host="alpha")
    assert as_host(board, alpha).claim(operator, None, max_running=1) is not None
    assert as_host(board, alpha).claim(operator, None, max_running=1) is None


def test_a_wrong_secret_claims_nothing(board, operator, make_task, enroll):
    alpha = enroll("alpha")
    make_task()
    forged = HostIdentity(alpha.host_id, "alpha", "guessed")
    assert as_host(board, forged).claim(operator, None) is None
    assert as_host(board, forged).host_heartbeat() is False


def test_a_revoked_host_claims_nothing_and_its_run_cannot_complete(
    board, operator, make_task, enroll
):
    alpha = enroll("alpha")
    running = make_task()
    waiting = make_task()
    claim = as_host(board, alpha).claim(operator, running.id)
    assert claim is not None

    board.revoke_host(operator, "alpha")
    assert as_host(board, alpha).host_heartbeat() is False
    assert as_host(board, alpha).claim(operator, None) is None
    before = snapshot(board)
    with pytest.raises(StaleRun, match="host 'alpha', which was revoked"):
        board.complete(worker(claim), running.id, result="done anyway")
    with pytest.raises(StaleRun, match="revoked"):
        board.heartbeat(worker(claim), running.id)
    # Nor may its supervisor record the run's end itself, nor its agent comment.
    with pytest.raises(StaleRun, match="revoked"):
        board.record_failure(
            worker(claim),
            running.id,
            claim.run_id,
            RunOutcome.CRASHED,
            "the agent exited 0 without completing",
            FailurePolicy(),
        )
    with pytest.raises(StaleRun, match="revoked"):
        board.comment(worker(claim), waiting.id, "a note from a revoked host")
    # Nor a dispatcher (its own host's, still mid-pass): the leader reclaims such a run instead.
    with pytest.raises(StaleRun, match="which was revoked"):
        board.record_failure(
            operator, running.id, claim.run_id, RunOutcome.CRASHED, "exited", FailurePolicy()
        )
    assert snapshot(board) == before
    assert board.get(running.id).status is TaskStatus.RUNNING
    # Another host takes the rest of the work.
    beta = enroll("beta")
    again = as_host(board, beta).claim(operator, None)
    assert again is not None
    assert again.task.id == waiting.id


def test_hosts_list_labels_state_and_open_runs(board, operator, make_task, enroll):
    alpha = enroll("alpha", "gpu")
    enroll("beta")
    make_task()
    assert as_host(board, alpha).claim(operator, None) is not None
    board.revoke_host(operator, "beta")

    listed = {h.name: h for h in board.list_hosts()}
    assert listed["alpha"].labels == ("gpu",)
    assert listed["alpha"].state is HostState.LIVE
    assert listed["alpha"].running == 1
    assert listed["beta"].state is HostState.REVOKED
    assert listed["beta"].running == 0


def test_re_enrolling_a_revoked_host_needs_readmit(board, operator, enroll):
    enroll("alpha")
    board.revoke_host(operator, "alpha")
    with pytest.raises(PermissionDenied, match="needs an admin"):
        enroll("alpha")
    again = board.enroll_host(
        operator, name="alpha", labels=(), secret="fresh-" + "alpha", readmit=True
    )
    assert as_host(board, again).host_heartbeat() is True
    assert [h.state for h in board.list_hosts()] == [HostState.LIVE]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "nowhere"}, "no host named 'nowhere'"),
        ({"label": "tpu"}, "no enrolled host carries the label 'tpu'"),
        ({"host": "bad name"}, "is not a valid name"),
        ({"host": "alpha", "label": "gpu"}, "not both"),
    ],
)
def test_bad_placement_is_refused_and_changes_nothing(board, operator, enroll, kwargs, message):
    enroll("alpha", "gpu")
    before = snapshot(board)
    with pytest.raises(ValidationError, match=message):
        board.create(operator, title="misplaced", **kwargs)
    assert snapshot(board) == before


def test_a_duplicate_name_or_a_revoke_of_nobody_is_refused(board, operator, enroll):
    enroll("alpha")
    before = snapshot(board)
    with pytest.raises(ValidationError, match="already enrolled"):
        enroll("alpha")
    with pytest.raises(ValidationError, match="no host named 'ghost'"):
        board.revoke_host(operator, "ghost")
    assert snapshot(board) == before


def test_a_worker_may_not_enroll_or_revoke(board, operator, make_task, enroll):
    enroll("alpha")
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    with pytest.raises(PermissionDenied):
        board.revoke_host(worker(claim), "alpha")
    with pytest.raises(PermissionDenied):
        board.enroll_host(worker(claim), name="beta", labels=(), secret=_SECRET, readmit=False)


def test_a_worktree_made_by_a_hosts_run_binds_the_task_to_that_host(
    board, operator, enroll, worktree_made_on
):
    alpha, beta = enroll("alpha"), enroll("beta")
    task = worktree_made_on(alpha)

    assert as_host(board, beta).claim(operator, task.id) is None
    again = as_host(board, alpha).claim(operator, task.id)
    assert again is not None


def test_a_scratch_workspace_binds_nothing(board, operator, make_task, enroll):
    alpha, beta = enroll("alpha"), enroll("beta")
    task = make_task()
    claim = as_host(board, alpha).claim(operator, task.id)
    assert claim is not None
    board.set_workspace(worker(claim), task.id, path="/srv/scratch/t1", branch=None)
    board.reclaim(operator, task.id, reason="retry")
    assert as_host(board, beta).claim(operator, task.id) is not None


@pytest.mark.parametrize("form", ["next", "by id capped"])
def test_a_hosts_claim_and_completion_stay_one_round_trip(board, operator, make_task, enroll, form):
    alpha = enroll("alpha", "gpu")
    task = make_task(label="gpu")
    if board.db.dialect != "postgresql":
        pytest.skip("round trips are PostgreSQL's")
    host_board = as_host(board, alpha)
    kwargs: dict[str, Any] = (
        {} if form == "next" else {"task_id": task.id, "max_running": 5, "max_running_assignee": 5}
    )
    with roundtrips.counting(board.db) as trips:
        claim = host_board.claim(operator, **kwargs)
    assert claim is not None
    assert trips.count == 1, trips.lines
    with roundtrips.counting(board.db) as trips:
        board.complete(worker(claim), task.id, result="ok")
    assert trips.count == 1, trips.lines


def test_hosts_show_the_leases_their_gateways_hold(board, enroll):
    from kanban_core.board import leases

    alpha, beta = enroll("alpha"), enroll("beta")
    leases.acquire(board.db, "leader", "gw-a", ttl_s=60, host_id=alpha.host_id)
    leases.acquire(board.db, "platform:telegram", "gw-a", ttl_s=60, host_id=alpha.host_id)
    leases.acquire(board.db, "platform:slack", "gw-b", ttl_s=60, host_id=beta.host_id)
    gone = leases.acquire(board.db, "platform:discord", "gw-b", ttl_s=60, host_id=beta.host_id)
    assert gone is not None
    assert leases.release(board.db, gone)
    leases.acquire(board.db, "platform:matrix", "gw-implicit", ttl_s=60)  # the implicit host

    listed = {h.name: h for h in board.list_hosts()}
    assert (listed["alpha"].platforms, listed["alpha"].leader) == (("telegram",), True)
    assert (listed["beta"].platforms, listed["beta"].leader) == (("slack",), False)
    assert listed["alpha"].to_json()["platforms"] == ["telegram"]
    assert listed["beta"].to_json()["leader"] is False


def test_the_missing_threshold_is_the_callers(board, enroll):
    from tests.kanban_core.support import execute

    enroll("alpha")
    execute(board, "UPDATE hosts SET last_seen_ms = last_seen_ms - 200000")
    assert board.list_hosts()[0].state is HostState.MISSING  # 2 minutes by default
    assert board.list_hosts(missing_after_ms=300_000)[0].state is HostState.LIVE


def test_a_revoked_host_can_neither_take_nor_keep_a_lease(board, operator, enroll):
    from kanban_core.board import leases

    alpha, beta = enroll("alpha"), enroll("beta")
    held = leases.acquire(board.db, "platform:telegram", "gw-a", ttl_s=60, host_id=alpha.host_id)
    assert held is not None
    board.revoke_host(operator, "alpha")
    assert leases.renew(board.db, held, ttl_s=60) is None  # its gateway stops the duty
    assert leases.acquire(board.db, "leader", "gw-a", ttl_s=60, host_id=alpha.host_id) is None
    assert leases.release(board.db, held)  # and hands it over at once
    taken = leases.acquire(board.db, "platform:telegram", "gw-b", ttl_s=60, host_id=beta.host_id)
    assert taken is not None
    assert taken.fence == held.fence + 1
    # The implicit host (no enrollment) is never revoked.
    assert leases.acquire(board.db, "platform:slack", "gw-x", ttl_s=60) is not None
