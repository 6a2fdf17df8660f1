"""Execution requests: claimed once by their host, nonces spent, replays refused, expiry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings
from kanban_core.board import exec_requests as xr
from kanban_core.board.exec_records import (
    MAX_REQUEST_EXPIRY_S,
    ExecCommand,
    ExecRequest,
    ExecState,
    Requester,
    WorkspaceHost,
)
from kanban_core.board.hosts import HostIdentity
from kanban_core.errors import ValidationError
from kanban_core.storage import Query
from tests.kanban_core.support import rows, snapshot

ASKER = Requester("telegram", "telegram:42", "alice", "100", "", "operator", None)


@pytest.fixture
def hosts(board: Kanban, operator: Actor) -> tuple[HostIdentity, HostIdentity]:
    return tuple(  # type: ignore[return-value]
        board.enroll_host(operator, name=n, labels=(), secret=f"s-{n}", readmit=False)
        for n in ("build-1", "build-2")
    )


def _target(host: HostIdentity, revoked: bool = False) -> WorkspaceHost:
    return WorkspaceHost(host.host_id, host.name, revoked)


def _create(board: Kanban, task_id: int, host: HostIdentity, **kw: Any) -> tuple[int, bool]:
    with board.db.transaction(write=True) as tx:
        return xr.create(
            tx,
            command=kw.pop("command", ExecCommand.DIFF),
            args=kw.pop("args", {"path": "a.txt"}),
            workspace_id="ws-1",
            task_id=task_id,  # type: ignore[arg-type]
            host=_target(host, kw.pop("revoked", False)),
            requester=kw.pop("requester", ASKER),
            key=kw.pop("key", "telegram:7:diff"),
            ttl_ms=kw.pop("ttl_ms", 60_000),
        )


def _claim(board: Kanban, host: HostIdentity, claimer: str = "gw-b") -> list[ExecRequest]:
    with board.db.transaction(write=True) as tx:
        return xr.claim(tx, host, claimer=claimer)


def _state(board: Kanban, request_id: int) -> tuple[str, str | None]:
    [(state, result)] = rows(
        board, "SELECT state, result FROM exec_requests WHERE id = :id", id=request_id
    )
    return state, result


def _exec(board: Kanban, sql: str, **params: Any) -> int:
    with board.db.transaction(write=True) as tx:
        return tx.execute(Query("test_exec", sql), params)


def test_only_the_target_host_claims_a_request_and_only_once(board, make_task, hosts):
    one, two = hosts
    task = make_task()
    request_id, seen = _create(board, task.id, two)
    assert not seen
    assert _claim(board, one) == []  # not its request
    forged = HostIdentity(two.host_id, two.name, "wrong secret")
    assert _claim(board, forged) == []  # a host proves itself with its secret
    [taken] = _claim(board, two)
    assert (taken.id, taken.command, taken.args) == (
        request_id,
        ExecCommand.DIFF,
        {"path": "a.txt"},
    )
    assert taken.requester == ASKER
    assert taken.state is ExecState.RUNNING
    assert _claim(board, two) == []  # running: never handed out again


def test_the_same_idempotency_key_makes_one_request(board, make_task, hosts):
    task = make_task()
    first = _create(board, task.id, hosts[1])
    again = _create(board, task.id, hosts[1])
    assert again == (first[0], True)
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(1,)]


def test_a_revoked_host_is_refused_at_once_and_nothing_is_written(board, make_task, hosts):
    task = make_task()
    before = snapshot(board)
    with pytest.raises(ValidationError, match="host 'build-2' was revoked") as caught:
        _create(board, task.id, hosts[1], revoked=True)
    assert "\n" not in str(caught.value)
    assert snapshot(board) == before


def test_settling_queues_the_answer_for_the_asking_chat_only(board, make_task, hosts, operator):
    task = make_task()
    board.subscribe(operator, task.id, platform="telegram", chat_id="999")
    request_id, _ = _create(board, task.id, hosts[1])
    _claim(board, hosts[1])
    with board.db.transaction(write=True) as tx:
        assert xr.settle(tx, request_id, ExecState.DONE, "diff text", exit_code=0)
        assert not xr.settle(tx, request_id, ExecState.FAILED, "again")  # ends once
    assert _state(board, request_id) == ("done", "diff text")
    assert rows(
        board,
        "SELECT d.platform, d.chat_id, e.kind FROM notify_deliveries d "
        "JOIN task_events e ON e.id = d.event_id",
    ) == [("telegram", "100", "exec_reply")]


def test_a_done_request_set_back_to_pending_is_refused_and_audited(board, make_task, hosts):
    task = make_task()
    request_id, _ = _create(board, task.id, hosts[1])
    _claim(board, hosts[1])
    with board.db.transaction(write=True) as tx:
        xr.settle(tx, request_id, ExecState.DONE, "ok", exit_code=0)
    _exec(board, "UPDATE exec_requests SET state = 'pending' WHERE id = :id", id=request_id)

    assert _claim(board, hosts[1]) == []
    state, result = _state(board, request_id)
    assert state == "refused"
    assert result is not None
    assert "replay" in result
    [(detail,)] = rows(board, "SELECT detail FROM audit_log WHERE outcome = 'refused'")
    assert f"spent by request {request_id}" in detail
    [(text, done)] = rows(board, "SELECT text, detail FROM audit_log WHERE outcome = 'allowed'")
    assert text == f"/ws diff (request {request_id})"
    assert done == "done on host build-2: ok"


def test_a_request_re_inserted_with_a_spent_nonce_is_refused(board, make_task, hosts):
    task = make_task()
    request_id, _ = _create(board, task.id, hosts[1])
    _claim(board, hosts[1])
    copy_columns = (
        "command, args, workspace_id, task_id, target_host_id, requester_host_id, platform, "
        "user_id, user_name, chat_id, thread_id, role, nonce, created_ms, expires_ms"
    )
    # The same nonce beside the original is refused by the database itself …
    with pytest.raises(Exception, match=r"(?i)unique"):
        _exec(
            board,
            f"INSERT INTO exec_requests ({copy_columns}, idempotency_key, state) "
            f"SELECT {copy_columns}, 'copy', 'pending' FROM exec_requests WHERE id = :id",
            id=request_id,
        )
    # … and once the original is purged, the spent nonce still refuses the copy.
    _exec(board, "UPDATE exec_requests SET nonce = 'purged' WHERE id = :id", id=request_id)
    [(nonce,)] = rows(board, "SELECT nonce FROM exec_nonces")
    _exec(
        board,
        f"INSERT INTO exec_requests ({copy_columns}, idempotency_key, state) "
        f"SELECT command, args, workspace_id, task_id, target_host_id, requester_host_id, "
        "platform, user_id, user_name, chat_id, thread_id, role, :nonce, created_ms, "
        "expires_ms + 600000, 'copy', 'pending' FROM exec_requests WHERE id = :id",
        id=request_id,
        nonce=nonce,
    )
    assert _claim(board, hosts[1]) == []
    [(state,)] = rows(board, "SELECT state FROM exec_requests WHERE idempotency_key = 'copy'")
    assert state == "refused"


def test_an_expired_request_is_never_run(board, make_task, hosts):
    task = make_task()
    request_id, _ = _create(board, task.id, hosts[1], ttl_ms=0)
    assert _claim(board, hosts[1]) == []
    state, result = _state(board, request_id)
    assert state == "expired"
    assert result == f"request {request_id} expired unrun: the host did not take it in time"


def test_a_missing_hosts_request_expires_with_a_clear_message(board, make_task, hosts):
    task = make_task()
    _exec(board, "UPDATE hosts SET last_seen_ms = last_seen_ms - 600000 WHERE name = 'build-2'")
    request_id, _ = _create(board, task.id, hosts[1], ttl_ms=0)
    with board.db.transaction(write=True) as tx:
        assert xr.expire_overdue(tx) == [request_id]
    state, result = _state(board, request_id)
    assert state == "expired"
    assert result is not None
    assert "the host is missing (last seen 6" in result
    kinds = rows(
        board, "SELECT e.kind FROM notify_deliveries d JOIN task_events e ON e.id = d.event_id"
    )
    assert kinds == [("exec_reply",)]


def test_a_running_request_is_failed_as_interrupted_after_a_restart(board, make_task, hosts):
    task = make_task()
    request_id, _ = _create(board, task.id, hosts[1])
    _claim(board, hosts[1], claimer="gw-b:old")
    with board.db.transaction(write=True) as tx:
        assert xr.recover_interrupted(tx, hosts[1].host_id, claimer="gw-b:old") == []
        assert xr.recover_interrupted(tx, hosts[1].host_id, claimer="gw-b:new") == [request_id]
    state, result = _state(board, request_id)
    assert state == "failed"
    assert result is not None
    assert "interrupted" in result
    assert "not run again" in result
    assert _claim(board, hosts[1], claimer="gw-b:new") == []


def test_a_terminal_request_is_answered_on_the_row_not_through_the_outbox(board, make_task, hosts):
    task = make_task()
    cli = Requester("cli", "cli:alice", "alice", "alice", "", "terminal", hosts[0].host_id)
    request_id, _ = _create(board, task.id, hosts[1], requester=cli)
    _claim(board, hosts[1])
    with board.db.transaction(write=True) as tx:
        xr.settle(tx, request_id, ExecState.DONE, "ok", exit_code=0)
    assert rows(board, "SELECT count(*) FROM notify_deliveries") == [(0,)]


def test_the_table_admits_only_the_fixed_commands(board, make_task, hosts):
    task = make_task()
    request_id, _ = _create(board, task.id, hosts[1])
    with pytest.raises(Exception, match=r"(?i)check"):
        _exec(board, "UPDATE exec_requests SET command = 'shell' WHERE id = :id", id=request_id)
    assert _state(board, request_id) == ("pending", None)


def test_racing_claimers_of_one_host_take_each_request_once(fresh_url, tmp_path, operator):
    settings = KernelSettings(home=tmp_path / "race", db_url=fresh_url)
    with Kanban.open(settings) as setup:
        host = setup.enroll_host(
            operator, name="build-2", labels=(), secret=f"s-{2}", readmit=False
        )
        task = setup.create(operator, title="ws").task
        for n in range(40):
            _create(setup, task.id, host, key=f"k{n}")

    def claimer(n: int) -> list[int]:
        with Kanban.open(settings) as board:
            taken: list[int] = []
            while batch := _claim(board, host, claimer=f"gw{n}"):
                taken += [r.id for r in batch]
            return taken

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(claimer, range(4)))
    everything = [i for taken in results for i in taken]
    assert sorted(everything) == list(range(1, 41))  # each exactly once


def test_an_expiry_beyond_the_longest_is_refused_and_nothing_is_written(board, make_task, hosts):
    task = make_task()
    before = snapshot(board)
    for ttl_ms in (MAX_REQUEST_EXPIRY_S * 1000 + 1, -1):
        with pytest.raises(ValidationError, match="expiry must be between 0 and 86400 seconds"):
            _create(board, task.id, hosts[1], ttl_ms=ttl_ms)
    assert snapshot(board) == before


# -- gc: spent nonces and finished requests -----------------------------------------------------

_COPY_COLUMNS = (
    "command, args, workspace_id, task_id, target_host_id, requester_host_id, platform, "
    "user_id, user_name, chat_id, thread_id, role, nonce, created_ms, expires_ms"
)


def _done(board: Kanban, task_id: int, host: HostIdentity, key: str) -> int:
    """A request made, claimed (its nonce spent) and finished."""
    request_id, _ = _create(board, task_id, host, key=key)
    [taken] = _claim(board, host)
    assert taken.id == request_id
    with board.db.transaction(write=True) as tx:
        assert xr.settle(tx, request_id, ExecState.DONE, "ok", exit_code=0)
    return request_id


def _age_request(board: Kanban, request_id: int, ms: int) -> None:
    """Pretend the request was made, claimed and finished ``ms`` earlier."""
    _exec(
        board,
        "UPDATE exec_requests SET created_ms = created_ms - :ms, expires_ms = expires_ms - :ms, "
        "claimed_ms = claimed_ms - :ms, finished_ms = finished_ms - :ms WHERE id = :id",
        id=request_id,
        ms=ms,
    )
    _exec(
        board,
        "UPDATE exec_nonces SET used_ms = used_ms - :ms WHERE request_id = :id",
        id=request_id,
        ms=ms,
    )


def _gc(board: Kanban, operator: Actor, days: int) -> tuple[int, int]:
    report = board.gc(operator, event_retention_days=days, log_retention_days=30)
    return report.exec_requests, report.exec_nonces


def test_gc_forgets_nonces_past_the_longest_expiry_and_keeps_fresh_ones(
    board, make_task, hosts, operator
):
    task = make_task()
    old = _done(board, task.id, hosts[1], "old")
    fresh = _done(board, task.id, hosts[1], "fresh")
    _age_request(board, old, xr.NONCE_KEEP_MS + 60_000)
    # Just inside the bound: a copy of this one might still be unexpired somewhere.
    _age_request(board, fresh, xr.NONCE_KEEP_MS - 60_000)

    assert _gc(board, operator, days=30) == (0, 1)  # both rows are younger than the retention
    assert rows(board, "SELECT request_id FROM exec_nonces") == [(fresh,)]
    assert _gc(board, operator, days=30) == (0, 0)


def test_a_request_set_back_to_pending_after_its_nonce_was_purged_is_expired_unrun(
    board, make_task, hosts, operator
):
    task = make_task()
    request_id = _done(board, task.id, hosts[1], "k")
    _age_request(board, request_id, xr.NONCE_KEEP_MS + 60_000)
    assert _gc(board, operator, days=30) == (0, 1)
    _exec(board, "UPDATE exec_requests SET state = 'pending' WHERE id = :id", id=request_id)

    assert _claim(board, hosts[1]) == []  # the expiry refuses it before the nonce is looked at
    state, result = _state(board, request_id)
    assert state == "expired"
    assert result == f"request {request_id} expired unrun: the host did not take it in time"
    assert rows(board, "SELECT count(*) FROM exec_nonces") == [(0,)]  # never spent again


def test_a_copy_of_a_request_whose_row_and_nonce_gc_removed_is_expired_unrun(
    board, make_task, hosts, operator
):
    task = make_task()
    request_id = _done(board, task.id, hosts[1], "k")
    _age_request(board, request_id, xr.NONCE_KEEP_MS + 60_000)
    [original] = rows(
        board, f"SELECT {_COPY_COLUMNS} FROM exec_requests WHERE id = :id", id=request_id
    )
    assert _gc(board, operator, days=1) == (1, 1)  # finished 3 days ago, retention 1 day
    assert rows(board, "SELECT count(*) FROM exec_requests") == [(0,)]

    values = ", ".join(f":c{n}" for n in range(len(original)))
    _exec(
        board,
        f"INSERT INTO exec_requests ({_COPY_COLUMNS}, idempotency_key, state) "
        f"VALUES ({values}, 'copy', 'pending')",
        **{f"c{n}": value for n, value in enumerate(original)},
    )
    assert _claim(board, hosts[1]) == []
    [(state, result)] = rows(
        board, "SELECT state, result FROM exec_requests WHERE idempotency_key = 'copy'"
    )
    assert state == "expired"
    assert "expired unrun" in result


def test_gc_removes_finished_requests_past_the_retention_only(board, make_task, hosts, operator):
    task = make_task()
    old_done = _done(board, task.id, hosts[1], "old")
    fresh_done = _done(board, task.id, hosts[1], "fresh")
    running, _ = _create(board, task.id, hosts[1], key="running")
    _claim(board, hosts[1])
    pending, _ = _create(
        board, task.id, hosts[1], key="pending", ttl_ms=MAX_REQUEST_EXPIRY_S * 1000
    )
    for request_id in (old_done, running, pending):
        _age_request(board, request_id, 10 * 86_400_000)
    audited = rows(board, "SELECT text, detail FROM audit_log ORDER BY id")

    assert _gc(board, operator, days=7) == (1, 2)  # old_done's and running's nonces too
    assert rows(board, "SELECT id, state FROM exec_requests ORDER BY id") == [
        (fresh_done, "done"),
        (running, "running"),
        (pending, "pending"),
    ]
    assert rows(board, "SELECT text, detail FROM audit_log ORDER BY id")[: len(audited)] == audited


def test_the_scheduled_gc_collects_nonces_and_says_so(board, make_task, hosts):
    task = make_task()
    request_id = _done(board, task.id, hosts[1], "k")
    _age_request(board, request_id, xr.NONCE_KEEP_MS + 60_000)
    report = board.scheduled_gc(owner="gw-a", interval_ms=60_000, event_retention_days=30)
    assert report is not None
    assert (report.exec_requests, report.exec_nonces) == (0, 1)
    (run,) = board.maintenance_runs()
    assert run.summary is not None
    assert "0 exec request(s), 1 spent nonce(s) removed" in run.summary
