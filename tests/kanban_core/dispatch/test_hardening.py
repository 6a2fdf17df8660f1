"""Process hardening: the supervisor's allow-listed environment and non-dumpable processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from kanban_core.dispatch.hardening import SUPERVISOR_ENV, supervisor_environ
from tests.support.processes import Lines

SECRET = "tg-secret-0123456789"  # noqa: S105 - a fake token to look for


def test_the_supervisor_environment_keeps_only_the_allow_list_and_pass_env():
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "PGPASSWORD": "db-pass",
        "TELEGRAM_BOT_TOKEN": SECRET,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "GITHUB_TOKEN": "ghp_1",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "AGENT_API_KEY": "sk-agent",
        "KANBAN_RUN_TOKEN": "stale",
    }

    env = supervisor_environ(environ, ["AGENT_API_KEY", "NOT_SET"])

    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/me",
        "PGPASSWORD": "db-pass",
        "AGENT_API_KEY": "sk-agent",
    }
    assert not any(name.endswith("_TOKEN") for name in SUPERVISOR_ENV)


def _capless(argv: list[str]) -> list[str]:
    """Run ``argv`` without capabilities, like an ordinary user's process (root with
    CAP_SYS_PTRACE reads any process, and a capless reader may not read a capable one)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop capabilities for the reader")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-all", "--", *argv]


@pytest.fixture
def holder() -> Iterator[Callable[[bool], int]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(undumpable: bool) -> int:
        code = (
            "import sys\n"
            "from kanban_core.dispatch.hardening import make_undumpable, is_dumpable\n"
            f"if {undumpable!r}:\n"
            "    assert make_undumpable()\n"
            "print('dumpable' if is_dumpable() else 'closed', flush=True)\n"
            "sys.stdin.read()\n"
        )
        child = subprocess.Popen(
            _capless([sys.executable, "-c", code]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=os.environ | {"HELD_SECRET": SECRET},
        )
        started.append(child)
        assert child.stdout is not None
        Lines(child.stdout).next(timeout=30)
        return child.pid

    yield start
    for child in started:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)
        if child.stdout is not None:
            child.stdout.close()


def _read(pid: int, name: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        _capless(["cat", f"/proc/{pid}/{name}"]), capture_output=True, check=False, timeout=30
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_a_non_dumpable_process_hides_its_environment_and_memory_from_the_same_user(
    holder: Callable[[bool], int],
):
    open_pid = holder(False)
    closed_pid = holder(True)

    control = _read(open_pid, "environ")
    assert control.returncode == 0, control.stderr
    assert SECRET.encode() in control.stdout  # the reader could see it, were it not closed

    for name in ("environ", "mem", "maps"):
        attempt = _read(closed_pid, name)
        assert attempt.returncode != 0, name
        assert SECRET.encode() not in attempt.stdout
        assert b"Permission denied" in attempt.stderr, attempt.stderr
