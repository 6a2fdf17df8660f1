"""The whole gateway as a process on the console adapter: commands in, notifications out, SIGTERM.

Each test runs ``python -m gateway.cli gateway`` with its own ``KANBAN_HOME`` (a SQLite board at
the default path), types commands on its stdin and reads replies and notifications from its
stdout. Waiting is always on a condition, with a timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, TaskId, TaskStatus
from kanban_core.dispatch import health
from tests.support.processes import Lines, alive, host_pid, wait_for

pytestmark = pytest.mark.e2e

STOP_TIMEOUT_S = 15.0
T1 = TaskId(1)


class GatewayProcess:
    """``kanban gateway`` on the console, driven through pipes."""

    def __init__(self, home: Path, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "gateway", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=home.parent,
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out = Lines(self.proc.stdout)
        self.err = Lines(self.proc.stderr)
        self.out.wait_for(lambda line: line.startswith("kanban gateway console"))

    def type(self, line: str | bytes) -> None:
        assert self.proc.stdin is not None
        data = line if isinstance(line, bytes) else line.encode("utf-8")
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def terminate(self) -> tuple[int, str]:
        """SIGTERM; the exit code (within STOP_TIMEOUT_S) and everything on stderr."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"the gateway did not stop within {STOP_TIMEOUT_S}s of SIGTERM"
            ) from None
        finally:
            self._close()
        return code, self.err.rest()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        """Close the pipes of an exited gateway once their readers reached the end."""
        self.out.rest()
        self.err.rest()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def gateway_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
    env["KANBAN_HOME"] = str(home)
    return env


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def start(home: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateways on this home; any still running at the end are killed."""
    started: list[GatewayProcess] = []

    def factory(*args: str, **extra_env: str) -> GatewayProcess:
        gateway = GatewayProcess(home, gateway_env(home) | extra_env, args)
        started.append(gateway)
        return gateway

    yield factory
    for gateway in started:
        gateway.kill()


def open_board(home: Path) -> Kanban:
    return Kanban.open(KernelSettings(home=home, db_url=f"sqlite:///{home / 'kanban.db'}"))


#: The console logs only warnings by default; the tests that read the INFO lines ask for them.
INFO = ("--log-level", "INFO")


def test_create_a_task_hear_it_complete_and_stop_cleanly(start):
    gateway = start(*INFO)
    gateway.type('create "say hello" --assignee demo')
    created = gateway.out.wait_for(lambda line: line.startswith("Created"))
    assert created.startswith("Created t1")
    gateway.out.wait_for(lambda line: line.startswith("(subscribed"))
    gateway.out.wait_for(lambda line: line == "✔ t1 say hello", timeout=60)
    done = gateway.out.next()
    assert done.startswith("completed by @demo: "), done
    assert "hello.txt" in done
    # The console cannot press buttons: it prints what each one would run.
    assert gateway.out.next() == "[Show: /kanban show t1]"

    gateway.type("list")
    row = gateway.out.wait_for(lambda line: "t1" in line)
    assert "done" in row
    assert "say hello" in row

    code, err = gateway.terminate()
    assert code == 0, err
    assert "shutdown complete" in err
    assert "Traceback" not in err


def test_a_task_created_by_another_process_starts_and_is_announced_at_once(start, home):
    # The gateway's own timers are an hour (dispatch tick) and a minute (notifier poll) away:
    # only the change watch can start t1 and deliver its completion within the timeout.
    config = {
        "dispatcher": {"dispatch_interval_seconds": 3600},
        "gateway": {"notify_poll_ms": 60_000},
    }
    (home / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    gateway = start()
    shell = Actor(name="bob")
    with open_board(home) as board:
        wait_for(lambda: any(h.passes >= 1 for h in health.read(board)), 30, "the first pass")
        task = board.create(shell, title="from the shell", assignee="demo").task
        board.subscribe(shell, task.id, platform="console", chat_id="local")

    gateway.out.wait_for(lambda line: line == f"✔ t{task.id} from the shell", timeout=20)
    assert gateway.out.next().startswith("completed by @demo: ")
    code, err = gateway.terminate()
    assert code == 0, err


WAITER = """
import os, subprocess, sys, time
from pathlib import Path

pidfile = Path(os.environ["PIDFILE"])
tmp = pidfile.with_suffix(".tmp")
tmp.write_text(str(os.getpid()))
tmp.replace(pidfile)
gate = Path(os.environ["GATE"])
deadline = time.monotonic() + 120
while not gate.exists():
    if time.monotonic() > deadline:
        sys.exit("gave up waiting for the gate")
    time.sleep(0.05)
done = subprocess.run(
    [sys.executable, "-m", "kanban_core", "complete", "--summary", "the gate opened"],
    capture_output=True,
    text=True,
)
sys.exit(done.returncode and f"complete failed: {done.stderr}")
"""


def test_workers_outlive_the_gateway_and_the_next_gateway_delivers(start, home, tmp_path):
    script = tmp_path / "waiter.py"
    script.write_text(WAITER, encoding="utf-8")
    pidfile, gate = tmp_path / "agent.pid", tmp_path / "gate"
    config = {
        "dispatcher": {"lease_ttl_seconds": 30, "failure_limit": 1},
        "assignees": {
            "waiter": {
                "command": [sys.executable, str(script)],
                "env": {"PIDFILE": str(pidfile), "GATE": str(gate)},
                "sandbox": {"write": [str(tmp_path)]},  # the board's home stays hidden
            }
        },
    }
    (home / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    pids: list[int] = []
    try:
        first = start(*INFO)
        first.type('create "wait for the gate" --assignee waiter')
        first.out.wait_for(lambda line: line.startswith("Created t1"))
        noted = int(wait_for(lambda: pidfile.exists() and pidfile.read_text(), 30, "the agent"))
        agent = host_pid(noted, f"PIDFILE={pidfile}")
        pids.append(agent)
        with open_board(home) as board:
            supervisor = wait_for(lambda: board.runs(T1)[-1].worker_pid, 10, "the supervisor")
        pids.append(supervisor)

        code, err = first.terminate()
        assert code == 0, err
        assert "shutdown complete" in err
        assert alive(agent), "SIGTERM to the gateway killed the agent"
        assert alive(supervisor), "SIGTERM to the gateway killed the worker supervisor"
        with open_board(home) as board:
            assert board.get(T1).status is TaskStatus.RUNNING
            subscribed = [(s.platform, s.chat_id) for s in board.subscriptions(T1)]
            assert subscribed == [("console", "local")]  # kept in the board, not in the gateway

        gate.touch()
        with open_board(home) as board:
            wait_for(lambda: board.get(T1).status is TaskStatus.DONE, 60, "the worker to finish")
            assert [s.platform for s in board.subscriptions(T1)] == []  # ended with the task

        second = start()
        second.out.wait_for(lambda line: line == "✔ t1 wait for the gate", timeout=30)
        assert second.out.next() == "completed by @waiter: the gate opened"
        code, err = second.terminate()
        assert code == 0, err
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)


def run_once(home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gateway"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=gateway_env(home),
        cwd=home.parent,
        timeout=timeout,
        check=False,
    )


def test_an_invalid_config_fails_at_start_naming_the_key(home):
    (home / "config.yaml").write_text("platforms:\n  telegram:\n    token: x\n", encoding="utf-8")
    done = run_once(home)
    assert done.returncode == 1, done.stderr
    assert "platforms.telegram.token" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_one_invalid_config_lists_kernel_and_gateway_problems_together(home):
    (home / "config.yaml").write_text(
        "dispatcher:\n  max_in_progress: 0\n"
        "platforms:\n  telegram:\n    token: x\n"
        "access:\n  users:\n    bob: admin\n",
        encoding="utf-8",
    )
    done = run_once(home)
    assert done.returncode == 1, done.stderr
    for key in ("dispatcher.max_in_progress", "platforms.telegram.token", "access.users.bob"):
        assert key in done.stderr, (key, done.stderr)


DUMPER = """
import json, os, subprocess, sys
from pathlib import Path

out = Path(os.environ["OUT_DIR"]) / (os.environ["KANBAN_TASK"] + ".env.json")
tmp = out.with_suffix(".tmp")
tmp.write_text(json.dumps(dict(os.environ)))
tmp.replace(out)
done = subprocess.run(
    [sys.executable, "-m", "kanban_core", "complete", "--summary", "dumped my environment"],
    capture_output=True,
    text=True,
)
sys.exit(done.returncode and f"complete failed: {done.stderr}")
"""


def starting(*prefixes: str) -> Callable[[str], bool]:
    """A line predicate: the line starts with one of ``prefixes``."""
    return lambda line: line.startswith(prefixes)


def skipped_since(board: Kanban, passes: int) -> Callable[[], bool]:
    """Whether a dispatcher pass after the first ``passes`` skipped one task for its assignee."""
    return lambda: any(
        h.counts.get("unknown_assignee") == 1 and h.passes > passes for h in health.read(board)
    )


def test_dispatch_from_chat_starts_workers_like_the_gateways_own_passes(start, home, tmp_path):
    """A chat ``dispatch`` must hand workers the gateway's environment (``pass_env``, PATH)."""
    script = tmp_path / "dumper.py"
    script.write_text(DUMPER, encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    profile = {
        "command": [sys.executable, str(script)],
        "env": {"OUT_DIR": str(out)},
        "pass_env": ["GW_MARKER"],
        "sandbox": {"read": [str(script)], "write": [str(out)]},
    }

    def configure(**assignees: dict[str, Any]) -> None:
        document = {
            "dispatcher": {"dispatch_interval_seconds": 3600, "failure_limit": 1},
            "assignees": assignees,
        }
        (home / "config.yaml").write_text(json.dumps(document), encoding="utf-8")

    configure()
    gateway = start(GW_MARKER="from the gateway")
    by_chat: dict[str, str] | None = None
    # Each attempt: a task waits for a profile that does not exist yet, the gateway's passes skip
    # it, the profile appears and the chat's ``dispatch`` starts it. A change the gateway saw late
    # can still cause one more pass of its own loop right after the profile appears; then the loop
    # won the race ("Nothing to do." in chat), which proves nothing, so the attempt is repeated.
    for number in range(1, 6):
        task = f"t{number}"
        with open_board(home) as board:
            before = max((h.passes for h in health.read(board)), default=0)
            gateway.type(f'create "by chat {number}" --assignee later{number}')
            gateway.out.wait_for(starting(f"Created {task}"))
            wait_for(
                skipped_since(board, before),
                30,
                "the gateway's pass to skip the task",
            )
        configure(**{f"later{number}": profile})
        gateway.type("dispatch")
        answer = gateway.out.wait_for(
            starting(f"Spawned: {task}", "Nothing to do."),
            timeout=30,
        )
        gateway.out.wait_for(starting(f"✔ t{number} by chat {number}"), timeout=60)
        if answer.startswith("Spawned"):
            by_chat = json.loads((out / f"{task}.env.json").read_text())
            break
        configure()
    assert by_chat is not None, (
        "the gateway's own loop started every task before the chat's dispatch"
    )
    # The next task is started by the gateway's own loop (the create nudges it).
    gateway.type(f'create "by the loop" --assignee later{number}')
    loop_task = f"t{number + 1}"
    gateway.out.wait_for(lambda line: line == f"✔ {loop_task} by the loop", timeout=60)
    by_loop = json.loads((out / f"{loop_task}.env.json").read_text())
    code, err = gateway.terminate()
    assert code == 0, err
    assert by_loop.get("GW_MARKER") == "from the gateway"
    assert "PATH" in by_loop
    missing = [name for name in ("GW_MARKER", "PATH") if by_chat.get(name) != by_loop.get(name)]
    assert missing == [], f"a worker started by /kanban dispatch lacks {missing}"
