"""Real workers: the dispatcher, the ``kanban worker`` supervisor and agent processes.

Each test writes small Python "agents" into its temporary directory and configures assignee
profiles whose command runs them. The agents talk to the board only through the ``kanban`` CLI
with the credentials the supervisor hands them (``KANBAN_TASK``, ``KANBAN_RUN_ID``,
``KANBAN_RUN_TOKEN``), exactly like a coding agent would. Dispatcher passes run either in this
process (a Dispatcher over the real SubprocessSpawner, so exited supervisors are reaped) or as a
``kanban dispatch`` subprocess. Waiting is always on a condition, with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, RunOutcome, Task, TaskId, TaskStatus
from kanban_core.config import load_config
from kanban_core.dispatch.dispatcher import Dispatcher, DispatchReport
from kanban_core.dispatch.logs import log_path
from kanban_core.dispatch.spawn import SubprocessSpawner
from kanban_core.storage import Query
from tests.integration.conftest import Cli, Outcome
from tests.support.processes import alive, host_pid, wait_for

pytestmark = pytest.mark.integration

OPERATOR = Actor(name="alice")
#: Dispatcher settings every test starts from: generous leases (the supervisor renews them
#: every ttl/3 seconds) and a long backoff, so a failed task is not retried behind a test's back.
DISPATCHER_DEFAULTS = {
    "max_in_progress": 4,
    "failure_limit": 3,
    "backoff_base_seconds": 60,
    "backoff_cap_seconds": 60,
    "lease_ttl_seconds": 30,
    "terminate_grace_seconds": 2,
}

#: Imported by every agent script (they run with their own directory first on sys.path).
AGENTLIB = '''
import json
import os
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["TEST_STATE"])
TASK = os.environ["KANBAN_TASK"]


def kanban(*args, check=True):
    """Run a kanban verb as this worker; the credentials come from the environment."""
    done = subprocess.run(
        [sys.executable, "-m", "kanban_core", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        sys.exit(f"kanban {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def put(name, text):
    """Leave a note for the test, atomically."""
    tmp = STATE / f".{TASK}.{name}.tmp"
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(STATE / f"{TASK}.{name}")


def wait_file(name, timeout=60.0):
    """Wait until the test creates STATE/name."""
    path = STATE / name
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            sys.exit(f"gave up waiting for {path}")
        time.sleep(0.05)


def idle(seconds=60.0):
    """Look busy until killed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
'''

COMPLETES = """
import json, os
from agentlib import kanban
print("COMPLETE-AGENT: starting")
kanban("heartbeat", "--note", "halfway there")
summary = os.environ.get("AGENT_SUMMARY", "did the thing") + "\\nsecond line of the handoff"
kanban("complete", "--summary", summary, "--metadata", json.dumps({"files": 2, "ok": True}))
print("COMPLETE-AGENT: done")
"""

BLOCKS = """
from agentlib import kanban
kanban("block", "need the staging password")
"""

NO_VERDICT = """
import sys
print("EVIDENCE: looked at the repository, found nothing to do")
print("EVIDENCE on stderr", file=sys.stderr)
"""

WAITS_TO_BE_KILLED = """
import os
from agentlib import idle, put
put("pid", str(os.getpid()))
print("SIGKILL-AGENT: waiting to be killed", flush=True)
idle()
"""

IGNORES_SIGTERM = """
import os, signal, subprocess, sys
from agentlib import idle, put
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the child below
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
put("pids", f"{os.getpid()} {child.pid}")
idle(120)
"""

LATE_COMPLETION = """
import json, os, signal
from agentlib import kanban, put, wait_file
# If the supervisor notices the reclaim first, its SIGTERM must not cut the attempt short.
signal.signal(signal.SIGTERM, signal.SIG_IGN)
put("waiting", "")
wait_file("go")
done = kanban("complete", "--summary", "late news", check=False)
put("result", json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr}))
"""

WAITS_THEN_COMPLETES = """
from agentlib import kanban, put, wait_file
put("waiting", "")
wait_file("go")
kanban("complete", "--summary", "finished after the dispatcher restarted")
"""

DUMPS_ENV = """
import json, os
from agentlib import kanban, put
put("env", json.dumps(dict(os.environ)))
kanban("complete", "--summary", "looked at my environment")
"""

CHATTY = """
import os, sys
from agentlib import kanban
run = os.environ["KANBAN_RUN_ID"]
for i in range(60):
    print(f"ATTEMPT-{run} line {i:02d} " + "." * 20)
sys.stdout.flush()
if int(run) < 3:
    sys.exit(3)
kanban("complete", "--summary", f"third time lucky (run {run})")
"""

READS_CONTEXT = """
from agentlib import kanban, put
put("context", kanban("context").stdout)
kanban("complete", "--summary", "read my context")
"""


# -- helpers ----------------------------------------------------------------------------------


def processes_under(root: Path) -> list[int]:
    """Live processes whose working directory is inside ``root``: ones this test started."""
    found = []
    prefix = str(root) + os.sep
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = str((entry / "cwd").readlink())
        except OSError:
            continue
        if (cwd == str(root) or cwd.startswith(prefix)) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


class Harness:
    """One board (SQLite file or PostgreSQL), its config.yaml, agents and dispatchers."""

    def __init__(self, cli: Cli, root: Path) -> None:
        self.cli = cli
        self.root = root
        self.home = cli.home
        self.state = root / "state"
        self.agents = root / "agents"
        self.state.mkdir()
        self.agents.mkdir()
        (self.agents / "agentlib.py").write_text(AGENTLIB, encoding="utf-8")
        url = cli.db_url or f"sqlite:///{self.home / 'kanban.db'}"
        self.board = Kanban.open(KernelSettings(home=self.home, db_url=url))
        self.spawners: list[SubprocessSpawner] = []

    # -- setup --------------------------------------------------------------------------------

    def profile(self, source: str, **options: Any) -> dict[str, Any]:
        """An assignee profile running ``source`` as an agent script."""
        name = f"agent_{uuid.uuid4().hex[:8]}.py"
        (self.agents / name).write_text(source, encoding="utf-8")
        env = {"TEST_STATE": str(self.state), **options.pop("env", {})}
        # Contained like any agent, with its script readable and its notes to the test writable.
        sandbox = {"read": [str(self.agents)], "write": [str(self.state)]}
        return {
            "command": [sys.executable, str(self.agents / name)],
            "env": env,
            "sandbox": sandbox,
            **options,
        }

    def configure(self, assignees: dict[str, dict[str, Any]], **dispatcher: Any) -> None:
        """Write config.yaml (JSON is YAML), read afresh by every dispatcher pass."""
        document = {"dispatcher": DISPATCHER_DEFAULTS | dispatcher, "assignees": assignees}
        (self.home / "config.yaml").write_text(json.dumps(document, indent=2), encoding="utf-8")

    def create(self, title: str, **options: Any) -> TaskId:
        return self.board.create(OPERATOR, title=title, **options).task.id

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a dispatcher or CLI call on this board."""
        return self.cli.env(extra)

    def dispatcher(self, **options: Any) -> Dispatcher:
        """An in-process dispatcher over the real SubprocessSpawner."""
        spawner = SubprocessSpawner(self.env())
        self.spawners.append(spawner)
        return Dispatcher(
            self.board,
            config=lambda: load_config(self.home / "config.yaml", {}),
            spawner=spawner,
            name=f"test-{uuid.uuid4().hex[:8]}",
            **options,
        )

    # -- observing ----------------------------------------------------------------------------

    def task(self, task_id: TaskId) -> Task:
        return self.board.get(task_id)

    def host_pids(self, task_id: TaskId, name: str) -> list[int]:
        """The pids an agent noted, as this process sees them: a contained agent lives in a
        pid namespace of its own, where its pids mean nothing out here."""
        noted = [int(word) for word in self.wait_note(task_id, name).split()]
        return [host_pid(pid, f"TEST_STATE={self.state}") for pid in noted]

    def note(self, task_id: TaskId, name: str) -> Path:
        return self.state / f"t{task_id}.{name}"

    def wait_note(self, task_id: TaskId, name: str, timeout: float = 30) -> str:
        path = self.note(task_id, name)
        wait_for(path.exists, timeout, f"the agent of t{task_id} to write {path.name}")
        return path.read_text(encoding="utf-8")

    def wait_status(self, task_id: TaskId, *statuses: TaskStatus, timeout: float = 30) -> Task:
        def reached() -> Task | None:
            task = self.task(task_id)
            return task if task.status in statuses else None

        task: Task = wait_for(reached, timeout, f"t{task_id} to become {statuses}")
        return task

    def drive_to_pause(self, dispatcher: Dispatcher, task_id: TaskId, *, timeout: float) -> Task:
        """Run passes until the task is paused at a usage limit; a pause is not a failure."""
        self.drive(
            dispatcher,
            lambda: self.task(task_id).pause_reason is not None and self.supervisors_done(),
            timeout=timeout,
            what="the task to pause at the usage limit",
        )
        paused = self.task(task_id)
        assert paused.status is TaskStatus.READY
        assert paused.consecutive_failures == 0
        assert self.board.runs(task_id)[-1].outcome is RunOutcome.QUOTA
        return paused

    def drive(
        self,
        dispatcher: Dispatcher,
        until: Callable[[], Any],
        *,
        timeout: float,
        what: str,
        **pass_options: Any,
    ) -> list[DispatchReport]:
        """Run passes (reaping, recovering, claiming) until ``until()`` holds."""
        reports: list[DispatchReport] = []

        def one_pass() -> Any:
            reports.append(dispatcher.run_pass(**pass_options))
            return until()

        wait_for(one_pass, timeout, what)
        return reports

    def supervisors_done(self) -> bool:
        return all(s.running() == 0 for s in self.spawners)

    def kanban(self, *args: str, **env: str) -> Outcome:
        return self.cli.run(*args, env=env or None)

    def log(self, task_id: TaskId) -> str:
        return log_path(self.home, task_id).read_text(encoding="utf-8")

    # -- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        for pid in processes_under(self.root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for spawner in self.spawners:
            spawner.wait_all(timeout=30)
        self.board.close()


@pytest.fixture
def harness(sqlite_cli: Cli, tmp_path: Path) -> Iterator[Harness]:
    """A SQLite board at ``$KANBAN_HOME/kanban.db``."""
    h = Harness(sqlite_cli, tmp_path)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """The same, on SQLite and then on PostgreSQL (when KANBAN_TEST_PG_URL is set)."""
    cli: Cli = request.getfixturevalue("sqlite_cli" if request.param == "sqlite" else "pg_cli")
    h = Harness(cli, tmp_path)
    try:
        yield h
    finally:
        h.close()


def event_kinds(h: Harness, task_id: TaskId) -> list[str]:
    return [e.kind for e in h.board.detail(task_id).events]


# -- verdicts ---------------------------------------------------------------------------------


def test_a_worker_that_completes_hands_off_its_summary_and_metadata(any_harness: Harness):
    h = any_harness
    h.configure({"finisher": h.profile(COMPLETES)})
    task_id = h.create("write the report", assignee="finisher")
    dispatcher = h.dispatcher()

    report = dispatcher.run_pass()

    (spawned,) = report.spawned
    assert (spawned.task_id, spawned.assignee) == (task_id, "finisher")
    assert spawned.pid is not None
    h.wait_status(task_id, TaskStatus.DONE)
    later = h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")
    assert all(r.reclaimed == [] and r.spawned == [] for r in later)

    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.COMPLETED
    assert run.summary == "did the thing\nsecond line of the handoff"
    assert run.metadata == {"files": 2, "ok": True}
    assert run.worker_pid == spawned.pid
    assert event_kinds(h, task_id) == ["created", "claimed", "spawned", "heartbeat", "completed"]
    shown = h.kanban("show", f"t{task_id}")
    assert shown.code == 0, shown.describe()
    assert "completed" in shown.out
    assert "→ did the thing" in shown.out
    assert '≡ {"files":2,"ok":true}' in shown.out
    log = h.log(task_id)
    assert "COMPLETE-AGENT: done" in log
    assert "after recording its verdict" in log


def test_the_spawner_knows_its_live_supervisors_and_can_wait_for_them(harness: Harness):
    h = harness
    h.configure({"patient": h.profile(WAITS_THEN_COMPLETES)})
    task_id = h.create("wait for go", assignee="patient")
    dispatcher = h.dispatcher()
    spawner = h.spawners[-1]

    (spawned,) = dispatcher.run_pass().spawned
    h.wait_note(task_id, "waiting")

    assert spawner.live_pids() == [spawned.pid]
    assert spawner.running() == 1
    (h.state / "go").touch()
    assert spawner.wait_all(timeout=30) == [(spawned.pid, 0)]
    assert (spawner.live_pids(), spawner.running(), spawner.reap()) == ([], 0, [])
    assert h.task(task_id).status is TaskStatus.DONE


def test_a_worker_that_blocks_stays_blocked(harness: Harness):
    h = harness
    h.configure({"asker": h.profile(BLOCKS)})
    task_id = h.create("deploy to staging", assignee="asker")
    dispatcher = h.dispatcher(sweep_every=1)  # the promotion sweep runs on every pass

    assert len(dispatcher.run_pass().spawned) == 1
    task = h.wait_status(task_id, TaskStatus.BLOCKED)
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")
    for _ in range(3):
        report = dispatcher.run_pass()
        assert report.spawned == []
        assert report.promoted == []

    task = h.task(task_id)
    assert task.status is TaskStatus.BLOCKED
    assert task.block_kind is not None
    assert task.block_kind.value == "human"
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.BLOCKED
    assert run.summary == "need the staging password"
    comments = [c.body for c in h.board.detail(task_id).comments]
    assert comments == ["BLOCKED: need the staging password"]
    assert event_kinds(h, task_id).count("claimed") == 1


def test_exit_zero_without_a_verdict_is_a_protocol_failure(harness: Harness):
    h = harness
    h.configure({"quitter": h.profile(NO_VERDICT)})
    task_id = h.create("fix the bug", assignee="quitter")
    dispatcher = h.dispatcher()

    dispatcher.run_pass()
    task = h.wait_status(task_id, TaskStatus.READY)
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")

    assert task.consecutive_failures == 1
    assert task.last_failure_error is not None
    assert "protocol failure" in task.last_failure_error
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert "exited 0 without completing or blocking (protocol failure)" in run.error
    assert "--- log tail ---" in run.error
    assert "EVIDENCE: looked at the repository" in run.error
    assert "EVIDENCE on stderr" in run.error
    assert event_kinds(h, task_id).count("crashed") == 1
    # Backoff: the next passes leave it alone.
    assert dispatcher.run_pass().spawned == []
    assert h.task(task_id).status is TaskStatus.READY


def test_an_agent_killed_by_sigkill_is_a_crash(harness: Harness):
    h = harness
    h.configure({"victim": h.profile(WAITS_TO_BE_KILLED)})
    task_id = h.create("long job", assignee="victim")
    dispatcher = h.dispatcher()
    dispatcher.run_pass()
    (agent_pid,) = h.host_pids(task_id, "pid")
    assert h.task(task_id).status is TaskStatus.RUNNING

    os.kill(agent_pid, signal.SIGKILL)

    task = h.wait_status(task_id, TaskStatus.READY)
    reports = h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")
    reports.append(dispatcher.run_pass())
    assert all(r.reclaimed == [] for r in reports)  # the supervisor's verdict is the only one
    assert task.consecutive_failures == 1
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert "killed by signal 9" in run.error
    assert "SIGKILL-AGENT: waiting to be killed" in run.error
    assert event_kinds(h, task_id).count("crashed") == 1


def test_an_agent_past_its_max_runtime_is_terminated_and_timed_out(harness: Harness):
    h = harness
    h.configure(
        {"sleeper": h.profile(IGNORES_SIGTERM, max_runtime="2s")},
        lease_ttl_seconds=3,  # the supervisor checks the clock every second
        terminate_grace_seconds=1,
    )
    task_id = h.create("never ends", assignee="sleeper")
    dispatcher = h.dispatcher()
    dispatcher.run_pass()
    agent_pid, child_pid = h.host_pids(task_id, "pids")

    task = h.wait_status(task_id, TaskStatus.READY, timeout=30)

    # SIGTERM was ignored by both, so only the SIGKILL to the whole group ended them.
    wait_for(lambda: not alive(agent_pid), 10, "the agent to be gone")
    wait_for(lambda: not alive(child_pid), 10, "the agent's child to be gone")
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.TIMED_OUT
    assert run.error is not None
    assert run.error.startswith("exceeded its max runtime of 2s")
    assert run.ended_ms is not None
    assert run.ended_ms - run.started_ms >= 2000
    assert task.consecutive_failures == 1
    assert event_kinds(h, task_id).count("timed_out") == 1
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")


def test_a_missing_command_backs_off_then_gives_up(harness: Harness):
    h = harness
    missing = str(h.root / "no-such-agent")
    h.configure(
        {"ghostly": {"command": [missing, "{task_id}"]}},
        backoff_base_seconds=1,
        backoff_cap_seconds=2,
        failure_limit=3,
    )
    task_id = h.create("use a tool that is not installed", assignee="ghostly")
    dispatcher = h.dispatcher()

    def gave_up() -> bool:
        return h.task(task_id).status is TaskStatus.BLOCKED

    h.drive(dispatcher, gave_up, timeout=45, what="the task to give up")
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisors to exit")

    task = h.task(task_id)
    assert task.block_kind is not None
    assert task.block_kind.value == "gave_up"
    assert task.consecutive_failures == 3
    assert task.last_failure_error is not None
    assert f"cannot start {missing!r}" in task.last_failure_error
    runs = h.board.runs(task_id)
    assert [r.outcome for r in runs] == [RunOutcome.SPAWN_FAILED] * 3
    # The backoff held: 1 s after the first failure, 2 s after the second (database clock;
    # the run is closed a statement after the backoff is set, hence the small slack).
    assert runs[0].ended_ms is not None
    assert runs[1].ended_ms is not None
    assert runs[1].started_ms - runs[0].ended_ms >= 1000 - 50
    assert runs[2].started_ms - runs[1].ended_ms >= 2000 - 50
    kinds = event_kinds(h, task_id)
    assert kinds.count("spawn_failed") == 3
    assert kinds[-1] == "gave_up"
    # Given up means given up: later passes do not try again.
    assert dispatcher.run_pass().spawned == []
    assert len(h.board.runs(task_id)) == 3


def test_a_supervisor_killed_without_a_verdict_is_a_crash_at_once(harness: Harness):
    h = harness
    h.configure({"orphaned": h.profile(WAITS_TO_BE_KILLED)})  # leases of 30 s
    task_id = h.create("lose the supervisor", assignee="orphaned", max_runtime_s=600)
    dispatcher = h.dispatcher()
    (spawned,) = dispatcher.run_pass().spawned
    assert spawned.pid is not None
    h.wait_note(task_id, "pid")

    os.kill(spawned.pid, signal.SIGKILL)  # nothing is left to record a verdict

    reports = h.drive(
        dispatcher,
        lambda: h.task(task_id).status is TaskStatus.READY,
        timeout=10,
        what="the dispatcher to notice the dead supervisor (long before its lease ends)",
    )
    assert reports[-1].crashed == [task_id]
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert f"the worker supervisor (pid {spawned.pid}) exited with code -9" in run.error
    assert "SIGKILL-AGENT: waiting to be killed" in run.error  # the log's tail
    assert event_kinds(h, task_id).count("crashed") == 1


def test_a_dispatcher_timeout_of_an_overdue_run_stops_its_agent(harness: Harness):
    h = harness
    # The supervisor renews the lease every 10 s and is given 2 s to stop, like the defaults
    # (every 20 s, 10 s to stop) — a supervisor gets no chance to act on SIGTERM in time.
    h.configure({"hung": h.profile(WAITS_TO_BE_KILLED)}, terminate_grace_seconds=2)
    task_id = h.create("hang", assignee="hung", max_runtime_s=600)
    dispatcher = h.dispatcher()
    (spawned,) = dispatcher.run_pass().spawned
    supervisor = spawned.pid
    assert supervisor is not None
    (agent_pid,) = h.host_pids(task_id, "pid")
    # The deadline (kept by the database clock) passed long ago: the supervisor missed it, as
    # a hung supervisor would, so the dispatcher is the one to time the run out.
    with h.board.db.transaction(write=True) as tx:
        tx.execute(
            Query("test_overdue", "UPDATE tasks SET deadline_ms = {now} - 3600000 WHERE id = :id"),
            {"id": task_id},
        )

    report = dispatcher.run_pass()

    assert report.timed_out == [task_id]
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.TIMED_OUT
    assert run.error == "exceeded its max runtime of 600s"
    wait_for(lambda: not alive(supervisor), 10, "the supervisor to be stopped")
    # The run is over, and a retry would reuse the workspace: its agent must not live on.
    wait_for(lambda: not alive(agent_pid), 10, "the agent of the timed-out run to be stopped")


# -- stale attempts and restarts --------------------------------------------------------------


def test_a_late_completion_from_a_reclaimed_attempt_is_refused(harness: Harness):
    h = harness
    h.configure({"slowpoke": h.profile(LATE_COMPLETION)}, terminate_grace_seconds=30)
    task_id = h.create("slow work", assignee="slowpoke")
    dispatcher = h.dispatcher()
    dispatcher.run_pass()
    h.wait_note(task_id, "waiting")

    h.board.reclaim(OPERATOR, task_id, reason="looks stuck")
    before = h.board.detail(task_id)
    (h.state / "go").touch()

    result = json.loads(h.wait_note(task_id, "result"))
    # Passes that spawn nothing, so the requeued task stays as the reclaim left it.
    h.drive(dispatcher, h.supervisors_done, timeout=45, what="the supervisor to exit", max_spawn=0)

    assert result["code"] == 1, result
    assert result["out"] == ""
    assert result["err"].startswith("kanban: refused to complete"), result
    assert "nothing was changed" in result["err"]
    assert len(result["err"].strip().splitlines()) == 1
    after = h.board.detail(task_id)
    assert after == before
    assert after.task.status is TaskStatus.READY
    (run,) = after.runs
    assert run.outcome is RunOutcome.RECLAIMED
    assert run.summary is None


def test_workers_outlive_a_dispatcher_restart_and_their_verdict_lands(any_harness: Harness):
    h = any_harness
    h.configure({"patient": h.profile(WAITS_THEN_COMPLETES)})
    task_id = h.create("outlive the dispatcher", assignee="patient")

    first = h.kanban("dispatch", "--json")  # a whole dispatcher process, gone when it returns

    assert first.code == 0, first.describe()
    (spawned,) = first.json()["spawned"]
    assert spawned["task_id"] == f"t{task_id}"
    supervisor = int(spawned["pid"])
    h.wait_note(task_id, "waiting")
    assert alive(supervisor)
    assert h.task(task_id).status is TaskStatus.RUNNING

    second = h.kanban("dispatch", "--json")  # a new dispatcher that never knew the worker
    assert second.code == 0, second.describe()
    data = second.json()
    assert (data["reclaimed"], data["timed_out"], data["spawned"]) == ([], [], [])
    assert h.task(task_id).status is TaskStatus.RUNNING

    (h.state / "go").touch()
    h.wait_status(task_id, TaskStatus.DONE)
    wait_for(lambda: not alive(supervisor), 30, "the supervisor to exit")

    third = h.kanban("dispatch", "--json")
    assert third.code == 0, third.describe()
    assert (third.json()["reclaimed"], third.json()["timed_out"]) == ([], [])
    (run,) = h.board.runs(task_id)
    assert run.outcome is RunOutcome.COMPLETED
    assert run.summary == "finished after the dispatcher restarted"
    kinds = event_kinds(h, task_id)
    assert "crashed" not in kinds
    assert kinds[-1] == "completed"
    status = h.kanban("status", "--json")
    assert status.code == 0, status.describe()
    assert len(status.json()["dispatchers"]) >= 1


# -- environment, logs, context ---------------------------------------------------------------


def test_the_agent_gets_its_credentials_and_pass_env_but_no_other_secrets(harness: Harness):
    h = harness
    h.configure(
        {"snoop": h.profile(DUMPS_ENV, pass_env=["AGENT_API_KEY"], env={"PROFILE_SETTING": "on"})}
    )
    task_id = h.create("print your environment", assignee="snoop")
    dispatcher_env = {
        "TELEGRAM_TOKEN": "tg-secret-123456",
        "SLACK_BOT_TOKEN": "xoxb-secret-654321",
        "AGENT_API_KEY": "sk-passed-through",
    }

    result = h.kanban("dispatch", **dispatcher_env)
    assert result.code == 0, result.describe()
    seen: dict[str, str] = json.loads(h.wait_note(task_id, "env"))
    h.wait_status(task_id, TaskStatus.DONE)

    assert "TELEGRAM_TOKEN" not in seen
    assert "SLACK_BOT_TOKEN" not in seen
    assert "KANBAN_SUPERVISOR_TOKEN" not in seen
    assert "KANBAN_USER" not in seen
    assert not any("secret" in value for value in seen.values())
    assert seen["AGENT_API_KEY"] == "sk-passed-through"
    assert seen["PROFILE_SETTING"] == "on"
    (run,) = h.board.runs(task_id)
    assert seen["KANBAN_TASK"] == f"t{task_id}"
    assert seen["KANBAN_RUN_ID"] == str(run.id)
    assert len(seen["KANBAN_RUN_TOKEN"]) >= 20
    assert seen["KANBAN_WORKSPACE"] == h.task(task_id).workspace_path
    assert Path(seen["KANBAN_WORKSPACE"]).is_dir()
    # The board is reached through the run's capability; the database is not named at all.
    assert "KANBAN_HOME" not in seen
    assert "KANBAN_DB_URL" not in seen
    # The token is the agent's alone: not in the log anyone can read.
    wait_for(lambda: "after recording its verdict" in h.log(task_id), 30, "the supervisor note")
    assert seen["KANBAN_RUN_TOKEN"] not in h.log(task_id)
    wait_for(
        lambda: not Path(seen["KANBAN_RUN_SOCKET"]).parent.exists(),
        30,
        "the run's capability to go",
    )


def test_worker_logs_rotate_and_log_tail_shows_the_end(harness: Harness):
    h = harness
    h.configure(
        {"chatty": h.profile(CHATTY)},
        failure_limit=5,
        backoff_base_seconds=1,
        backoff_cap_seconds=1,
        log_rotate_bytes=1500,
        log_backups=1,
    )
    task_id = h.create("talk a lot", assignee="chatty")
    dispatcher = h.dispatcher()

    h.drive(
        dispatcher,
        lambda: h.task(task_id).status is TaskStatus.DONE,
        timeout=45,
        what="the third attempt to complete",
    )
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisor to exit")

    assert [r.id for r in h.board.runs(task_id)] == [1, 2, 3]
    current = log_path(h.home, task_id)
    backup = current.with_name(current.name + ".1")
    assert "ATTEMPT-3 line 00" in current.read_text(encoding="utf-8")
    assert "ATTEMPT-2" not in current.read_text(encoding="utf-8")
    assert "ATTEMPT-2 line 59" in backup.read_text(encoding="utf-8")
    assert "ATTEMPT-1" not in backup.read_text(encoding="utf-8")  # one backup kept
    assert not current.with_name(current.name + ".2").exists()

    full = h.kanban("log", f"t{task_id}")
    assert full.code == 0, full.describe()
    assert "ATTEMPT-3 line 00" in full.out
    tail = h.kanban("log", f"t{task_id}", "--tail", "200")
    assert tail.code == 0, tail.describe()
    assert len(tail.out.encode()) <= 201
    assert tail.out.rstrip("\n").endswith("after recording its verdict")
    assert "ATTEMPT-3 line 00" not in tail.out
    assert tail.out == full.out[-len(tail.out) :]
    bad = h.kanban("log", f"t{task_id}", "--tail", "0")
    assert bad.code == 2, bad.describe()
    missing = h.kanban("log", f"t{h.create('never ran')}")
    assert missing.code == 1, missing.describe()
    assert "no log" in missing.err
    # Each file holds whole attempts: the third attempt's first line (the supervisor's
    # greeting) belongs in the current log, not at the end of the backup.
    assert "r3: supervisor" in current.read_text(encoding="utf-8")
    assert "r3:" not in backup.read_text(encoding="utf-8")


def test_kanban_context_shows_the_parent_handoff(harness: Harness):
    h = harness
    h.configure(
        {
            "planner": h.profile(
                COMPLETES, env={"AGENT_SUMMARY": "PARENT-HANDOFF: schema is in db/schema.sql"}
            ),
            "reader": h.profile(READS_CONTEXT),
        }
    )
    parent = h.create("design the schema", assignee="planner")
    child = h.create("build on the schema", assignee="reader", parents=[parent])
    assert h.task(child).status is TaskStatus.TODO
    dispatcher = h.dispatcher()

    h.drive(
        dispatcher,
        lambda: h.task(child).status is TaskStatus.DONE,
        timeout=45,
        what="parent and child to complete",
    )
    h.drive(dispatcher, h.supervisors_done, timeout=30, what="the supervisors to exit")

    seen = h.note(child, "context").read_text(encoding="utf-8")
    assert f"# Kanban task t{child}: build on the schema" in seen
    assert "## Parent task results" in seen
    assert f"### t{parent} — design the schema" in seen
    assert "> PARENT-HANDOFF: schema is in db/schema.sql" in seen
    assert '_metadata_: {"files":2,"ok":true}' in seen
    shown = h.kanban("context", f"t{child}")
    assert shown.code == 0, shown.describe()
    assert "> PARENT-HANDOFF: schema is in db/schema.sql" in shown.out
    assert "## Prior attempts on this task" in shown.out  # the child's own completed run


# -- containment where bubblewrap is missing ---------------------------------------------------


def test_without_bubblewrap_auto_runs_loudly_uncontained_and_required_refuses(harness: Harness):
    h = harness
    h.configure(
        {
            "relaxed": h.profile(COMPLETES),
            "strict": h.profile(COMPLETES) | {"sandbox": {"mode": "required"}},
        }
    )
    relaxed = h.create("run anyway", assignee="relaxed")
    strict = h.create("run only contained", assignee="strict")
    # A PATH with Python but no bwrap: the dispatcher's probe finds none.
    no_bwrap = h.root / "bin"
    no_bwrap.mkdir()
    (no_bwrap / "python3").symlink_to(sys.executable)
    env = {"PATH": str(no_bwrap)}

    status = h.kanban("status", "--json", **env)
    result = h.kanban("dispatch", **env)

    assert status.code == 0, status.describe()
    contained = status.json()["containment"]
    assert contained["relaxed"]["contained"] is False
    assert contained["relaxed"]["summary"].startswith("NOT CONTAINED: bubblewrap is not")
    assert contained["strict"]["summary"].startswith("REFUSED TO RUN: sandbox required")
    assert result.code == 0, result.describe()
    h.wait_status(relaxed, TaskStatus.DONE)
    assert "WARNING NOT CONTAINED: bubblewrap is not installed" in h.log(relaxed)
    task = h.wait_status(strict, TaskStatus.BLOCKED, TaskStatus.READY)
    (run,) = h.board.runs(strict)
    assert run.outcome is RunOutcome.SPAWN_FAILED
    assert run.error is not None
    assert run.error.startswith("sandbox: REFUSED TO RUN: sandbox required but bubblewrap")
    assert task.consecutive_failures == 1
    assert "COMPLETE-AGENT" not in h.log(strict)


UNSETS_ITS_VARIABLES = """
import json, os, subprocess, sys
from agentlib import kanban, put
target, db = os.environ["TARGET_TASK"], os.environ["TARGET_DB"]
bare = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}

def attempt(*args):
    done = subprocess.run(
        [sys.executable, "-m", "kanban_core", "--db", db, *args],
        env=bare, capture_output=True, text=True,
    )
    return {"code": done.returncode, "err": done.stderr}

results = {"direct": attempt("complete", target, "--summary", "pwned")}
# Daemonised (double fork, own session): still under the supervisor, which adopts orphans.
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, json.dumps(attempt("archive", target)).encode())
        os._exit(0)
    os._exit(0)
os.close(w)
os.wait()
data = b""
while chunk := os.read(r, 65536):
    data += chunk
results["daemonised"] = json.loads(data)
put("results", json.dumps(results))
kanban("complete", "--summary", "tried to act as the local operator")
"""


def test_an_uncontained_agent_without_its_variables_is_refused_not_the_local_operator(
    harness: Harness,
):
    h = harness
    target = h.create("someone else's task")
    env = {"TARGET_TASK": f"t{target}", "TARGET_DB": f"sqlite:///{h.home / 'kanban.db'}"}
    h.configure({"sly": h.profile(UNSETS_ITS_VARIABLES, env=env) | {"sandbox": "off"}})
    task_id = h.create("unset your variables", assignee="sly")

    result = h.kanban("dispatch")

    assert result.code == 0, result.describe()
    outcome = json.loads(h.wait_note(task_id, "results"))
    h.wait_status(task_id, TaskStatus.DONE)
    for how in ("direct", "daemonised"):
        assert outcome[how]["code"] == 1, outcome
        assert "inside a worker run" in outcome[how]["err"], outcome
    assert h.task(target).status is TaskStatus.READY
    assert "WARNING NOT CONTAINED: sandbox off for this profile" in h.log(task_id)
