"""``kanban doctor``: the database, the leases and each platform's credentials and server, in
plain words; exit 1 only when something is wrong; secrets never printed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gateway.doctor import Status, diagnose, render
from kanban_core import Kanban, KernelSettings
from kanban_core.board import leases
from tests.support.network import closed_port

TOKEN = "123:never-printed-secret"  # noqa: S105 - a test value


class _Root(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base's name
        return


@pytest.fixture
def server() -> Iterator[str]:
    """A loopback HTTP server standing in for a platform's API root."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Root)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> KernelSettings:
    """A board file the doctor can open on its own (an in-memory one would be another board)."""
    url = f"sqlite:///{tmp_path / 'kanban.db'}" if db_url.startswith("sqlite") else db_url
    return KernelSettings(home=tmp_path / "home", db_url=url)


def write_config(home: Path, api_base_url: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.yaml"
    path.write_text(
        f"platforms:\n  telegram:\n    token_env: TG_TOKEN\n    api_base_url: {api_base_url}\n",
        encoding="utf-8",
    )
    return path


def test_a_ready_host_passes_and_shows_who_holds_what(
    board: Kanban, settings: KernelSettings, server: str
) -> None:
    config = write_config(settings.home, server)
    leases.acquire(board.db, "platform:telegram", "host-a:1:ab", ttl_s=60)

    checks = diagnose(settings, config, {"TG_TOKEN": TOKEN})

    by_name = {c.name: c for c in checks}
    assert by_name["database"].status is Status.OK
    assert "schema" in by_name["database"].detail
    assert by_name["platform:telegram"].status is Status.OK
    assert "held by host-a:1:ab" in by_name["platform:telegram"].detail
    assert by_name["leader"].status is Status.WARN  # nobody has run it yet: not a failure
    assert by_name["platform telegram"].status is Status.OK
    lines = render(checks)
    assert lines[-1] == "all good"
    assert TOKEN not in "\n".join(lines)


def test_missing_credentials_and_an_unreachable_server_are_said_plainly(
    board: Kanban, settings: KernelSettings
) -> None:
    config = write_config(settings.home, f"http://127.0.0.1:{closed_port()}")

    missing = {c.name: c for c in diagnose(settings, config, {})}["platform telegram"]
    assert missing.status is Status.FAIL
    assert missing.detail == "credentials missing: set TG_TOKEN in this host's environment"

    unreachable = {c.name: c for c in diagnose(settings, config, {"TG_TOKEN": TOKEN})}
    check = unreachable["platform telegram"]
    assert check.status is Status.FAIL
    assert "unreachable" in check.detail
    assert TOKEN not in check.detail


def test_an_expired_lease_is_reported_with_its_last_owner(
    board: Kanban, settings: KernelSettings, server: str
) -> None:
    config = write_config(settings.home, server)
    held = leases.acquire(board.db, "platform:telegram", "host-b:2:cd", ttl_s=60)
    assert held is not None
    leases.release(board.db, held)

    check = {c.name: c for c in diagnose(settings, config, {"TG_TOKEN": TOKEN})}
    assert check["platform:telegram"].status is Status.WARN
    assert "last held by host-b:2:cd" in check["platform:telegram"].detail
    assert "no gateway is running it" in check["platform:telegram"].detail


def test_an_unreachable_database_fails_and_a_missing_board_says_how_to_make_one(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "home", "http://127.0.0.1:1")
    down = KernelSettings(
        home=tmp_path, db_url=f"postgresql://nobody@127.0.0.1:{closed_port()}/kanban"
    )
    (check,) = diagnose(down, config, {})[:1]
    assert check.status is Status.FAIL
    assert check.detail.startswith("cannot reach postgresql://")

    empty = KernelSettings(home=tmp_path, db_url=f"sqlite:///{tmp_path / 'none.db'}")
    (check,) = diagnose(empty, config, {})[:1]
    assert check.status is Status.FAIL
    assert "kanban init" in check.detail
    assert not (tmp_path / "none.db").exists()  # looking created nothing


def test_the_command_exits_1_with_json_when_something_is_wrong(tmp_path: Path) -> None:
    home = tmp_path / "home"
    write_config(home, f"http://127.0.0.1:{closed_port()}")
    env = {"KANBAN_HOME": str(home), "PATH": "/usr/bin:/bin", "TG_TOKEN": TOKEN}
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "init"], env=env, check=True, capture_output=True
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "doctor", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False
    failed = [c["check"] for c in report["checks"] if c["status"] == "fail"]
    assert failed == ["platform telegram"]
    assert TOKEN not in done.stdout + done.stderr


def _enroll_here(settings: KernelSettings, name: str) -> int:
    from kanban_core import Actor, enrollment

    with Kanban.open(
        KernelSettings(home=settings.home.parent / f"{name}-x", db_url=settings.db_url)
    ) as board:
        host = board.enroll_host(
            Actor(name="root"), name=name, labels=(), secret=f"s-{name}", readmit=False
        )
    enrollment.save(settings.home, host)
    return host.host_id


def test_the_hosts_enrollment_is_checked_against_this_board(
    board: Kanban, settings: KernelSettings, server: str, tmp_path: Path
) -> None:
    config = write_config(settings.home, server)
    assert _checks(settings, config)["host"].status is Status.OK  # not enrolled: implicit

    _enroll_here(settings, "alpha")
    check = _checks(settings, config)["host"]
    assert check.status is Status.OK
    assert "enrolled as 'alpha' on this board (b-" in check.detail

    elsewhere = KernelSettings(home=settings.home, db_url=f"sqlite:///{tmp_path / 'other.db'}")
    Kanban.open(KernelSettings(home=tmp_path / "maker", db_url=elsewhere.db_url)).close()
    wrong = _checks(elsewhere, config)["host"]
    assert wrong.status is Status.FAIL
    assert "belongs to board b-" in wrong.detail
    assert "not this one" in wrong.detail


def test_a_lease_held_for_a_revoked_host_is_stale(
    board: Kanban, settings: KernelSettings, server: str
) -> None:
    from kanban_core import Actor

    config = write_config(settings.home, server)
    host_id = _enroll_here(settings, "alpha")
    leases.acquire(board.db, "leader", "alpha:1:ab", ttl_s=60, host_id=host_id)
    leader = _checks(settings, config)["leader"]
    assert leader.status is Status.OK
    assert "held by alpha:1:ab on host 'alpha'" in leader.detail

    board.revoke_host(Actor(name="root"), "alpha")
    checks = _checks(settings, config)
    assert checks["host"].status is Status.FAIL  # this machine's host is cut off
    assert "revoked" in checks["host"].detail
    assert checks["leader"].status is Status.WARN
    assert "which is revoked: a stale lease" in checks["leader"].detail


def _checks(settings: KernelSettings, config: Path) -> dict[str, Any]:
    return {c.name: c for c in diagnose(settings, config, {"TG_TOKEN": TOKEN})}
