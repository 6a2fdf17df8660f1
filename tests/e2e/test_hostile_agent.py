"""A hostile agent through the real gateway and dispatcher: every attempt fails, its own task
completes.

The gateway runs as a process (console adapter) with fake platform and GitHub tokens and, on
PostgreSQL, a database URL with a password in its environment. Its dispatcher starts the agent
of ``tests/support/hostile_agent.py`` under a real supervisor in the real sandbox; the agent
tries what a prompt-injected coding agent would (see that file) and reports what it achieved.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, TaskStatus
from kanban_core.dispatch.logs import log_path
from tests.conftest import PG_URL, create_pg_database, drop_pg_database
from tests.e2e.test_gateway_console import GatewayProcess, gateway_env
from tests.support.processes import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed"),
]

HOSTILE = Path(__file__).resolve().parents[1] / "support" / "hostile_agent.py"
OPERATOR = Actor(name="alice")
PLATFORM_TOKEN = "123456:fake-telegram-token-ZZhostileZZ"  # noqa: S105 - a fake, to look for
OTHER_TOKENS = {"SLACK_BOT_TOKEN": "xoxb-fake-slack-ZZhostileZZ", "GITHUB_TOKEN": "ghp_fakeZZ"}
PG_PASSWORD = "pg-pass-ZZhostileZZ"  # noqa: S105
DECOY_TEXT = "the user's own checkout\n"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'home' / 'kanban.db'}"
        return
    if not PG_URL:
        pytest.skip("no PostgreSQL (set KANBAN_TEST_PG_URL)")
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


def _with_password(url: str) -> str:
    # The test server trusts loopback, so the password is never checked: it is only something
    # the agent must not find.
    scheme, rest = url.split("://", 1)
    user, at, host = rest.partition("@")
    return f"{scheme}://{user}:{PG_PASSWORD}@{host}" if at else url


@pytest.mark.parametrize("network", [True, False], ids=["network", "no-network"])
def test_a_hostile_agent_reaches_nothing_and_its_own_task_still_completes(
    tmp_path: Path, db_url: str, network: bool
):
    home = tmp_path / "home"
    home.mkdir()
    sqlite = db_url.startswith("sqlite")
    gateway_url = db_url if sqlite else _with_password(db_url)
    config = {
        "dispatcher": {"dispatch_interval_seconds": 1, "failure_limit": 1, "lease_ttl_seconds": 30},
        "assignees": {
            "hostile": {
                "command": [sys.executable, str(HOSTILE)],
                "sandbox": {
                    "mode": "required",
                    "network": network,
                    "read": [str(HOSTILE.parent)],
                },
            }
        },
    }
    (home / "config.yaml").write_text(json.dumps(config), encoding="utf-8")
    decoy = tmp_path / "checkout"
    decoy.mkdir()
    (decoy / "README").write_text(DECOY_TEXT, encoding="utf-8")
    other_workspace = home / "workspaces" / "t99"
    other_workspace.mkdir(parents=True)
    (other_workspace / "notes.txt").write_text("another task's work\n", encoding="utf-8")

    board = Kanban.open(KernelSettings(home=home, db_url=db_url))
    try:
        other = board.create(OPERATOR, title="another task", assignee="someone").task
        blocked = board.create(OPERATOR, title="a blocked task", assignee="someone").task
        board.block(OPERATOR, blocked.id, "waiting for a human")
        claim = board.claim(OPERATOR, other.id, ttl_s=3600)  # another run, by hand
        assert claim is not None
        env = gateway_env(home) | {"TELEGRAM_BOT_TOKEN": PLATFORM_TOKEN, **OTHER_TOKENS}
        if not sqlite:
            env["KANBAN_DB_URL"] = gateway_url
        gateway = GatewayProcess(home, env)
        try:
            targets: dict[str, Any] = {
                "gateway_pid": gateway.proc.pid,
                "home": str(home),
                "db_file": str(home / "kanban.db"),
                "config_file": str(home / "config.yaml"),
                "decoy": str(decoy),
                "other_workspace": str(other_workspace),
                "other_task": other.ref,
                "blocked_task": blocked.ref,
                "other_run_id": claim.run_id,
                "other_run_token": claim.token,
                "needles": [PLATFORM_TOKEN, PG_PASSWORD, *OTHER_TOKENS.values()],
            }
            if not sqlite and not network:
                # As if it had guessed the server: this one trusts loopback, so only the
                # missing network keeps it out (see the README on trust authentication).
                targets["try_db_url"] = db_url
            task = board.create(
                OPERATOR, title="be hostile", assignee="hostile", body=json.dumps(targets)
            ).task
            done = wait_for(
                lambda: board.get(task.id).status in (TaskStatus.DONE, TaskStatus.BLOCKED),
                120,
                "the hostile agent's task to finish",
            )
            assert done
            final = board.get(task.id)
            log = log_path(home, task.id).read_text(encoding="utf-8")
            assert final.status is TaskStatus.DONE, log
            code, err = gateway.terminate()
            assert code == 0, err
        finally:
            gateway.kill()

        assert final.workspace_path is not None
        report = json.loads((Path(final.workspace_path) / "report.json").read_text())
        achieved = [a for a in report["attempts"] if a["achieved"]]
        assert achieved == [], json.dumps(achieved, indent=1)
        assert report["leaks"] == []
        names = {a["name"] for a in report["attempts"]}
        # Each kind of attempt was made (the agent did not silently skip one).
        for needle in (
            "read the gateway's /proc/",
            "see the supervisor or the gateway in /proc",
            "read db_file",
            "read config_file",
            "find a database URL",
            "without run variables: complete",
            "without run variables: archive",
            "without run variables: comment",
            "without run variables: unblock",
            "with my capability: complete",
            "with my capability: archive",
            "with another run's credentials: complete",
            "list other_workspace",
            *([f"connect to {db_url}"] if not sqlite and not network else []),
            "write into the decoy checkout",
            "write through a symlink planted in the workspace",
        ):
            assert any(name.startswith(needle) for name in names), needle

        # Nothing changed but the hostile task itself.
        assert board.get(other.id).status is TaskStatus.RUNNING
        assert board.get(other.id).current_run_id == claim.run_id
        assert board.get(blocked.id).status is TaskStatus.BLOCKED
        assert board.detail(other.id).comments == ()
        assert sorted(p.name for p in decoy.iterdir()) == ["README"]
        assert (decoy / "README").read_text(encoding="utf-8") == DECOY_TEXT
        # The secrets are nowhere the agent wrote either.
        for path in [*Path(final.workspace_path).rglob("*"), log_path(home, task.id)]:
            if path.is_file() and not path.is_symlink():
                text = path.read_bytes()
                assert PLATFORM_TOKEN.encode() not in text, path
                assert PG_PASSWORD.encode() not in text, path
    finally:
        board.close()
