"""Fixtures for integration tests that drive the ``kanban`` CLI as a subprocess.

Every test gets its own ``KANBAN_HOME`` under ``tmp_path``. On SQLite the board lives at the
default ``$KANBAN_HOME/kanban.db`` (``KANBAN_DB_URL`` is removed from the environment); it is
copied from a board ``kanban init`` made once per session, so a test does not pay for the
migration. With ``KANBAN_TEST_PG_URL`` set, the ``cli`` fixture also runs each test against a
PostgreSQL database created (with psycopg) for the test module and dropped afterwards; its tables
are emptied before every test so task ids start at t1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import Lines

PG_URL = os.environ.get("KANBAN_TEST_PG_URL", "")
#: The operator every command runs as unless a test says otherwise (``--mine`` relies on it).
OPERATOR = "alice"
#: Generous: a subprocess starts in ~0.15 s, but CI machines can be slow and loaded.
COMMAND_TIMEOUT_S = 60.0

Env = Mapping[str, str | None]


@dataclass(frozen=True)
class Outcome:
    """One finished ``kanban`` process."""

    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as JSON."""
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"stdout is not JSON ({exc}):\n{self.describe()}") from None

    @property
    def err_lines(self) -> list[str]:
        """The non-empty lines of stderr."""
        return [line for line in self.err.splitlines() if line.strip()]

    def describe(self) -> str:
        """Everything about the run, for assertion messages."""
        return (
            f"kanban {' '.join(map(repr, self.argv))}\n"
            f"  exit code: {self.code}\n  stdout: {self.out!r}\n  stderr: {self.err!r}"
        )


def refusal_problem(result: Outcome, code: int, needle: str) -> str | None:
    """Why ``result`` is not a clean refusal with ``code`` mentioning ``needle``; None if it is.

    Exit 1 must be exactly one ``kanban: …`` line on stderr. Exit 2 (usage) may print the usage
    first, but its last line carries the message. Neither writes to stdout or shows a traceback.
    """
    lines = result.err_lines
    if result.code != code:
        return f"expected exit {code}, got {result.code}"
    if "Traceback" in result.err:
        return "a traceback instead of a message"
    if result.out.strip():
        return "a refusal printed on stdout"
    if not lines:
        return "no message on stderr"
    if code == 1 and len(lines) != 1:
        return f"expected one line on stderr, got {len(lines)}"
    if not lines[0].startswith("kanban: "):
        return "stderr does not start with 'kanban: '"
    if needle.lower() not in lines[-1].lower():
        return f"the message does not mention {needle!r}"
    return None


class Follower:
    """A streaming command (``tail``/``watch`` without ``--once``) and the lines it printed."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.lines = Lines(proc.stdout)
        self.code: int | None = None
        self.err = ""

    def stop(self) -> None:
        """Interrupt it like Ctrl-C would, wait for it, and collect its exit code and stderr."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            self.code = proc.wait(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the streaming command ignored SIGINT") from None
        finally:
            assert proc.stderr is not None
            assert proc.stdout is not None
            self.err = proc.stderr.read().decode("utf-8")
            proc.stderr.close()
            self.lines.join(COMMAND_TIMEOUT_S)
            proc.stdout.close()


class Cli:
    """Runs ``python -m kanban_core`` against one board."""

    def __init__(self, home: Path, *, backend: str, db_url: str | None = None) -> None:
        self.home = home
        self.backend = backend
        self.db_url = db_url

    # -- processes --------------------------------------------------------------------------

    def env(self, extra: Env | None = None) -> dict[str, str]:
        """A clean environment: no inherited KANBAN_*, this board, the operator ``alice``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KANBAN_")}
        env["KANBAN_HOME"] = str(self.home)
        env["KANBAN_USER"] = OPERATOR
        if self.db_url:
            env["KANBAN_DB_URL"] = self.db_url
        for key, value in (extra or {}).items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
        return env

    def start(self, *args: str, env: Env | None = None) -> subprocess.Popen[bytes]:
        """Start a command without waiting for it."""
        return subprocess.Popen(
            [sys.executable, "-m", "kanban_core", *args],
            env=self.env(env),
            cwd=self.home.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    @contextmanager
    def follow(self, *args: str, env: Env | None = None) -> Iterator[Follower]:
        """Run a streaming command for the duration of a ``with`` block."""
        follower = Follower(self.start(*args, env=env))
        try:
            yield follower
        finally:
            follower.stop()

    @staticmethod
    def finish(argv: Sequence[str], proc: subprocess.Popen[bytes]) -> Outcome:
        """Wait for a started command and collect its output."""
        try:
            out, err = proc.communicate(timeout=COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"kanban {list(argv)} did not finish") from None
        return Outcome(tuple(argv), proc.returncode, out.decode("utf-8"), err.decode("utf-8"))

    def run(self, *args: str, env: Env | None = None) -> Outcome:
        """Run one command to completion."""
        return self.finish(args, self.start(*args, env=env))

    def run_many(self, commands: Sequence[Sequence[str]], env: Env | None = None) -> list[Outcome]:
        """Run independent commands concurrently; results in the order given."""
        return self.run_each([(argv, env) for argv in commands])

    def run_each(self, commands: Sequence[tuple[Sequence[str], Env | None]]) -> list[Outcome]:
        """Run ``(argv, env)`` commands concurrently; results in the order given."""
        procs = [(argv, self.start(*argv, env=env)) for argv, env in commands]
        return [self.finish(argv, proc) for argv, proc in procs]

    # -- assertions -------------------------------------------------------------------------

    def ok(self, *args: str, env: Env | None = None) -> Outcome:
        """Run a command that must succeed quietly (exit 0, nothing on stderr)."""
        result = self.run(*args, env=env)
        assert result.code == 0, result.describe()
        assert result.err == "", result.describe()
        return result

    def json(self, *args: str, env: Env | None = None) -> Any:
        """Run a ``--json`` command that must succeed and return its parsed output."""
        return self.ok(*args, "--json", env=env).json()

    def refused(self, *args: str, code: int = 1, match: str = "", env: Env | None = None) -> str:
        """Run a command that must be refused cleanly; returns its (last) error line."""
        result = self.run(*args, env=env)
        problem = refusal_problem(result, code, match)
        assert problem is None, f"{problem}\n{result.describe()}"
        return result.err_lines[-1]

    def refusal_problems(
        self, cases: Sequence[tuple[Sequence[str], int, str]], env: Env | None = None
    ) -> list[str]:
        """Run ``(argv, code, needle)`` cases concurrently; describe each not refused cleanly."""
        return self.refusal_problems_each(
            [(argv, env, code, needle) for argv, code, needle in cases]
        )

    def refusal_problems_each(
        self, cases: Sequence[tuple[Sequence[str], Env | None, int, str]]
    ) -> list[str]:
        """Like refusal_problems, with an environment per case."""
        results = self.run_each([(argv, env) for argv, env, _, _ in cases])
        problems = []
        for (_, _, code, needle), result in zip(cases, results, strict=True):
            problem = refusal_problem(result, code, needle)
            if problem is not None:
                problems.append(f"{problem}\n{result.describe()}")
        return problems

    # -- board helpers ----------------------------------------------------------------------

    def create(self, title: str, *options: str, env: Env | None = None) -> str:
        """Create a task; returns its id (``t1``)."""
        data = self.json("create", title, *options, env=env)
        assert data["created"] is True, data
        return str(data["id"])

    def show(self, task_id: str) -> dict[str, Any]:
        """``show --json``."""
        data: dict[str, Any] = self.json("show", task_id)
        return data

    def task(self, task_id: str) -> dict[str, Any]:
        """The task dict of ``show --json``."""
        task: dict[str, Any] = self.show(task_id)["task"]
        return task

    def tasks(self, *options: str) -> list[dict[str, Any]]:
        """``list --json``."""
        data = self.json("list", *options)
        assert isinstance(data, list), data
        return data

    def claim(self, task_id: str | None = None, *options: str) -> dict[str, Any]:
        """``claim --json`` (by id, or ``--next``)."""
        target = [task_id] if task_id else ["--next"]
        data: dict[str, Any] = self.json("claim", *target, *options)
        return data

    def snapshot(self, *task_ids: str, subscriptions: bool = False) -> dict[str, Any]:
        """The board as the CLI shows it, to compare before and after a refused command.

        Every task (``list --archived --json``) and every event on the board (``watch --once``;
        comments, runs and links all leave one), plus ``show --json`` of the tasks named and,
        if asked, ``notify-list --json`` (subscribing leaves no event). Read concurrently.
        """
        commands: list[Sequence[str]] = [
            ("list", "--archived", "--json"),
            ("watch", "--once", "--limit", "1000"),
        ]
        commands += [("show", task_id, "--json") for task_id in task_ids]
        if subscriptions:
            commands.append(("notify-list", "--json"))
        results = self.run_many(commands)
        for result in results:
            assert result.code == 0, result.describe()
        listed, events, *rest = results
        shows = rest[: len(task_ids)]
        return {
            "list": listed.json(),
            "events": events.out.splitlines(),
            "show": {task_id: r.json() for task_id, r in zip(task_ids, shows, strict=True)},
            "subscriptions": rest[-1].json() if subscriptions else None,
        }


def worker_env(claim: Mapping[str, Any], **extra: str) -> dict[str, str | None]:
    """The environment of a worker acting on the run ``claim --json`` handed out."""
    env: dict[str, str | None] = {
        "KANBAN_TASK": str(claim["task_id"]),
        "KANBAN_RUN_ID": str(claim["run_id"]),
        "KANBAN_RUN_TOKEN": str(claim["run_token"]),
    }
    env.update(extra)
    return env


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def template_board(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite board made once by ``kanban init``; tests start from copies of it."""
    home = tmp_path_factory.mktemp("template") / "home"
    result = Cli(home, backend="sqlite").run("init")
    assert result.code == 0, result.describe()
    assert (home / "kanban.db").is_file(), result.describe()
    return home


@pytest.fixture
def sqlite_cli(template_board: Path, tmp_path: Path) -> Cli:
    """A CLI on a fresh per-test SQLite board at ``$KANBAN_HOME/kanban.db``."""
    home = tmp_path / "home"
    home.mkdir()
    for path in template_board.iterdir():
        if path.name.startswith("kanban.db") and not path.name.endswith(".lock"):
            shutil.copy2(path, home / path.name)
    return Cli(home, backend="sqlite")


@pytest.fixture(scope="module")
def pg_module_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database for this test module, initialised by ``kanban init``."""
    if not PG_URL:
        pytest.skip("no PostgreSQL (set KANBAN_TEST_PG_URL)")
    import psycopg

    name = f"kanban_cli_{uuid.uuid4().hex[:12]}"
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        home = tmp_path_factory.mktemp("pg-init") / "home"
        result = Cli(home, backend="postgresql", db_url=url).run("init")
        assert result.code == 0, result.describe()
        assert name in result.out, result.describe()
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_cli(pg_module_url: str, tmp_path: Path) -> Cli:
    """A CLI on the module's PostgreSQL database, emptied for this test."""
    import psycopg

    with psycopg.connect(pg_module_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version'"
        ).fetchall()
        tables = ", ".join(f'"{name}"' for (name,) in rows)
        conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, backend="postgresql", db_url=pg_module_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def cli(request: pytest.FixtureRequest) -> Cli:
    """The CLI on each backend in turn (PostgreSQL only when KANBAN_TEST_PG_URL is set)."""
    fixture = "sqlite_cli" if request.param == "sqlite" else "pg_cli"
    board: Cli = request.getfixturevalue(fixture)
    return board
