"""board.maintenance (``gc``): old events of finished tasks, sent deliveries, old logs."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban, PermissionDenied, TaskId, ValidationError
from kanban_core.board.domain import GcReport, WorkspaceKind
from kanban_core.board.maintenance import collect_logs
from tests.kanban_core.support import DAY_MS, count, execute, rows, worker

OLD_S = 30 * 86400


def age_events(board: Kanban, days: int) -> None:
    """Pretend every event so far happened ``days`` ago."""
    execute(board, "UPDATE task_events SET created_ms = created_ms - :delta", delta=days * DAY_MS)


def event_ids(board: Kanban, task_id: TaskId) -> list[int]:
    return [e.id for e in board.detail(task_id).events]


def gc(board: Kanban, operator: Actor, events: int = 7, logs: int = 7) -> GcReport:
    return board.gc(operator, event_retention_days=events, log_retention_days=logs)


# -- events and deliveries --------------------------------------------------------------------


def test_gc_deletes_only_old_events_of_finished_tasks(board, operator, make_task):
    done, archived = make_task(), make_task()
    ready, blocked, todo, triage = make_task(), make_task(), make_task(), make_task(triage=True)
    running = make_task()
    board.complete(operator, done.id)
    board.archive(operator, archived.id)
    board.block(operator, blocked.id, "hold")
    board.link(operator, ready.id, todo.id)
    board.claim(operator, running.id)
    age_events(board, 10)
    # Fresh events of a finished task are kept too.
    board.comment(operator, done.id, "after the fact")
    fresh = event_ids(board, done.id)[-1]
    live = {t.id: event_ids(board, t.id) for t in (ready, blocked, todo, triage, running)}

    report = gc(board, operator, events=7)

    assert report.events == 4  # done: created, completed; archived: created, archived
    assert event_ids(board, done.id) == [fresh]
    assert event_ids(board, archived.id) == []
    assert {t: event_ids(board, t) for t in live} == live
    assert report.deliveries == 0


def test_gc_keeps_the_newest_event_so_its_id_is_never_handed_out_again(board, operator, make_task):
    task = make_task()
    board.complete(operator, task.id)
    newest = event_ids(board, task.id)[-1]
    age_events(board, 10)

    assert gc(board, operator).events == 1  # created goes, completed (the newest) stays
    assert event_ids(board, task.id) == [newest]
    board.comment(operator, task.id, "later")
    assert board.events_after(newest) == [e for e in board.detail(task.id).events if e.id > newest]
    assert event_ids(board, task.id)[-1] == newest + 1


def test_gc_keeps_events_younger_than_the_retention(board, operator, make_task):
    task = make_task()
    board.complete(operator, task.id)
    age_events(board, 3)
    before = event_ids(board, task.id)
    report = gc(board, operator, events=7)
    assert (report.events, report.deliveries) == (0, 0)
    assert event_ids(board, task.id) == before


def test_gc_keeps_events_a_delivery_still_needs(board, operator, make_task):
    task = make_task()
    board.subscribe(operator, task.id, platform="telegram", chat_id="1")
    board.complete(operator, task.id)
    completed = event_ids(board, task.id)[-1]
    age_events(board, 10)
    execute(board, "UPDATE notify_deliveries SET created_ms = created_ms - :d", d=10 * DAY_MS)

    report = gc(board, operator)
    assert (report.events, report.deliveries) == (1, 0)  # the pending delivery keeps its event
    assert event_ids(board, task.id) == [completed]

    make_task()  # a newer event, so the completed one is not the newest (which gc keeps)
    execute(board, "UPDATE notify_deliveries SET status = 'sent'")
    report = gc(board, operator)
    assert (report.events, report.deliveries) == (1, 1)
    assert event_ids(board, task.id) == []
    assert count(board, "notify_deliveries") == 0


@pytest.mark.parametrize(("status", "collected"), [("sent", 1), ("dead", 1), ("pending", 0)])
def test_gc_deletes_old_sent_and_dead_deliveries_only(
    board, operator, make_task, status, collected
):
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.subscribe(operator, task.id, platform="telegram", chat_id="1")
    board.block(worker(claim), task.id, "help")
    execute(
        board,
        "UPDATE notify_deliveries SET status = :s, created_ms = created_ms - :d",
        s=status,
        d=10 * DAY_MS,
    )
    report = gc(board, operator)
    assert report.deliveries == collected
    assert count(board, "notify_deliveries") == 1 - collected
    assert report.events == 0  # a blocked task's events are never collected


def test_gc_refusals(board, operator, make_task):
    with pytest.raises(ValidationError, match="must be between 0 and 36500"):
        gc(board, operator, events=-1)
    with pytest.raises(ValidationError, match="must be between 0 and 36500"):
        gc(board, operator, logs=-1)
    task = make_task()
    claim = board.claim(operator, task.id)
    assert claim is not None
    with pytest.raises(PermissionDenied):
        gc(board, operator=worker(claim))


# -- log files --------------------------------------------------------------------------------


def write(path: Path, *, old: bool) -> Path:
    path.write_text("log\n")
    if old:
        stamp = time.time() - OLD_S
        os.utime(path, (stamp, stamp))
    return path


def test_gc_deletes_only_our_old_log_files(board, operator, settings):
    logs = settings.logs_dir
    logs.mkdir(parents=True)
    ours_old = [write(logs / name, old=True) for name in ("t1.log", "t2.log.1", "t33.log.12")]
    ours_fresh = write(logs / "t4.log", old=False)
    others = [
        write(logs / name, old=True)
        for name in (
            "notes.txt",
            "t1.log.bak",
            "t1.logx",
            "x1.log",
            "t.log",
            "T1.log",
            "t1.log.1.gz",
            "t1.log.",
            "tt1.log",
            ".t1.log",
        )
    ]
    (logs / "t9.log").mkdir()  # a directory with our name
    target = write(board.settings.home / "precious.log", old=True)
    (logs / "t8.log").symlink_to(target)
    stamp = time.time() - OLD_S
    os.utime(logs / "t8.log", (stamp, stamp), follow_symlinks=False)

    report = gc(board, operator, logs=7)

    assert report.log_files == 3
    assert not any(path.exists() for path in ours_old)
    assert ours_fresh.exists()
    assert all(path.exists() for path in others)
    assert (logs / "t9.log").is_dir()
    assert (logs / "t8.log").is_symlink()
    assert target.exists()


def test_gc_leaves_lookalike_log_names(tmp_path):
    # Names that only look like ours to a loose pattern: a trailing newline (``$`` matches before
    # it) and non-ASCII digits (``\d`` matches them).
    names = ["t1.log\n", "t\u0661.log", "t1.log.\u0661"]
    for name in names:
        write(tmp_path / name, old=True)
    assert collect_logs(tmp_path, retention_days=1) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_gc_without_a_logs_folder(board, operator):
    assert not board.settings.logs_dir.exists()
    assert gc(board, operator).log_files == 0


def test_log_retention_zero_deletes_every_log_older_than_now(tmp_path):
    write(tmp_path / "t1.log", old=True)
    assert collect_logs(tmp_path, retention_days=0) == 1
    assert list(tmp_path.iterdir()) == []


def test_gc_report_counts_nothing_on_an_empty_board(board, operator):
    report = gc(board, operator)
    assert (report.events, report.deliveries, report.log_files, report.workspaces) == (0, 0, 0, 0)
    assert rows(board, "SELECT count(*) FROM task_events") == [(0,)]


def test_gc_removes_only_our_workspaces_of_archived_tasks(board, operator, make_task, tmp_path):
    from kanban_core.board.validation import parse_workspace
    from kanban_core.profiles import DEMO_PROFILE
    from kanban_core.workspaces import cleanup
    from kanban_core.workspaces.places import prepare, scratch_root

    home = board.settings.home
    archived = make_task()
    live = make_task()
    foreign = make_task()
    user_dir = tmp_path / "users-project"
    user_dir.mkdir()
    (user_dir / "keep.txt").write_text("mine")
    mine_dir = make_task(workspace=parse_workspace(f"dir:{user_dir}"))
    for task in (archived, live):
        prepare(board.get(task.id), DEMO_PROFILE, home)
    # A directory at a task's scratch path without our marker is not ours.
    (scratch_root(home) / f"t{foreign.id}").mkdir(parents=True)
    for task in (archived, foreign, mine_dir):
        board.archive(operator, task.id)

    report = cleanup.gc(board, operator, event_retention_days=30, log_retention_days=30)

    assert report.workspaces == 1
    assert not (scratch_root(home) / f"t{archived.id}").exists()
    assert (scratch_root(home) / f"t{live.id}").is_dir()  # not archived: kept
    assert (scratch_root(home) / f"t{foreign.id}").is_dir()
    assert any(f"t{foreign.id}" in note and "marker" in note for note in report.notes)
    assert (user_dir / "keep.txt").read_text() == "mine"


# -- the leader's scheduled gc ------------------------------------------------------------------


def test_scheduled_gc_runs_once_per_interval_whoever_asks(board, operator, make_task):
    done = make_task()
    board.complete(operator, done.id)
    make_task()  # a newer event, so the old ones are not the newest
    age_events(board, 40)
    hour_ms = 3_600_000

    first = board.scheduled_gc(owner="gw-a", interval_ms=hour_ms, event_retention_days=30)
    assert first is not None
    assert first.events > 0
    # Another gateway (a new leader) within the interval: not due, nothing done.
    assert board.scheduled_gc(owner="gw-b", interval_ms=hour_ms, event_retention_days=30) is None
    (run,) = board.maintenance_runs()
    assert (run.job, run.owner, run.runs) == ("gc", "gw-a", 1)
    assert run.summary is not None
    assert run.summary.startswith(f"{first.events} event(s)")

    # The interval is up (by the database clock): the next asker runs it.
    execute(board, "UPDATE maintenance_runs SET last_ms = last_ms - :d", d=hour_ms)
    assert board.scheduled_gc(owner="gw-b", interval_ms=hour_ms, event_retention_days=30)
    (run,) = board.maintenance_runs()
    assert (run.owner, run.runs) == ("gw-b", 2)


def test_a_failed_scheduled_gc_leaves_the_interval_unclaimed(board, monkeypatch):
    from kanban_core.board import maintenance

    def broken(*_args: object, **_kwargs: object) -> tuple[int, int]:
        raise ValidationError("disk on fire")

    monkeypatch.setattr(maintenance, "collect", broken)
    with pytest.raises(ValidationError):
        board.scheduled_gc(owner="gw-a", interval_ms=60_000, event_retention_days=30)
    assert board.maintenance_runs() == []


def test_gc_leaves_a_worktree_bound_to_another_host_to_that_host(
    board, operator, make_task, tmp_path
):
    """A worktree task bound to build-2 has its files on build-2's disk: gc on build-1 finds
    a path that is not that worktree (here: a real removable worktree at the same path) and
    must leave it alone; gc on build-2 removes it."""
    from kanban_core.board.validation import WorkspaceSpec
    from kanban_core.workspaces import cleanup, places
    from kanban_core.workspaces.worktrees import ensure_worktree
    from tests.gitrepos import make_repo

    one, two = (
        board.enroll_host(operator, name=name, labels=(), secret=f"s-{name}", readmit=False)
        for name in ("build-1", "build-2")
    )
    repo = make_repo(tmp_path, "proj", "hello\n")
    task = make_task(workspace=WorkspaceSpec(WorkspaceKind.WORKTREE), repo=str(repo))
    board.host = two
    claim = board.claim(operator, task.id)
    assert claim is not None
    path, branch, _ = ensure_worktree(
        repo,
        task=board.get(task.id),
        root=places.worktree_root(board.settings.home),
        allow_dirty_base=False,
    )
    board.set_workspace(worker(claim), task.id, path=str(path), branch=branch)
    board.complete(worker(claim), task.id, result="done")
    board.archive(operator, task.id)

    board.host = one
    report = cleanup.gc(board, operator, event_retention_days=30, log_retention_days=30)
    assert report.workspaces == 0
    assert path.is_dir()
    assert any(f"t{task.id}" in n and "on host build-2's disk" in n for n in report.notes)

    board.host = two
    report = cleanup.gc(board, operator, event_retention_days=30, log_retention_days=30)
    assert report.workspaces == 1, report.notes
    assert not path.exists()
