"""Several hosts on one board: each a separate process with its own KANBAN_HOME and enrollment."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.integration.conftest import Cli, worker_env

pytestmark = pytest.mark.integration


def _host(cli: Cli, tmp_path: Path, name: str) -> Cli:
    """Another machine on the same board: its own home, the same database."""
    db_url = cli.db_url or f"sqlite:///{cli.home / 'kanban.db'}"
    home = tmp_path / f"{name}-home"
    home.mkdir()
    return Cli(home, backend=cli.backend, db_url=db_url)


def _enrolled(cli: Cli, tmp_path: Path, *names: str) -> list[Cli]:
    """Machines on the same board, each enrolled under its name."""
    machines = [_host(cli, tmp_path, name) for name in names]
    for machine, name in zip(machines, names, strict=True):
        machine.ok("host", "enroll", "--name", name)
    return machines


def test_targeted_work_goes_only_to_its_host_and_a_label_routes(cli: Cli, tmp_path: Path) -> None:
    alpha, beta, plain = _host(cli, tmp_path, "a"), _host(cli, tmp_path, "b"), cli
    alpha.ok("host", "enroll", "--name", "alpha", "--label", "gpu")
    beta.ok("host", "enroll", "--name", "beta")
    enrolled = alpha.home / "host.json"
    assert stat.S_IMODE(enrolled.stat().st_mode) == 0o600
    assert "secret" in enrolled.read_text()

    for_beta = plain.create("for beta", "--host", "beta")
    for_gpu = plain.create("needs a gpu", "--label", "gpu")

    plain.refused("claim", "--next", match="nothing is ready")
    plain.refused("claim", for_beta, match="it is ready")
    assert alpha.claim()["task_id"] == for_gpu
    alpha.refused("claim", "--next", match="nothing is ready")
    assert beta.claim()["task_id"] == for_beta

    listed = {h["name"]: h for h in plain.json("hosts")["hosts"]}
    assert listed["alpha"]["labels"] == ["gpu"]
    assert (listed["alpha"]["state"], listed["alpha"]["running"]) == ("live", 1)
    assert (listed["beta"]["state"], listed["beta"]["running"]) == ("live", 1)


def test_a_revoked_host_claims_nothing_and_its_run_cannot_complete(
    cli: Cli, tmp_path: Path
) -> None:
    alpha, beta = _enrolled(cli, tmp_path, "alpha", "beta")
    running = cli.create("running on beta")
    claim = beta.claim(running)
    waiting = cli.create("next")

    assert cli.ok("hosts", "revoke", "beta").out.startswith("Revoked host 'beta'")
    before = cli.snapshot(running, waiting)
    beta.refused("complete", "--summary", "late", env=worker_env(claim), match="revoked")
    beta.refused("heartbeat", env=worker_env(claim), match="revoked")
    beta.refused("claim", "--next", match="nothing is ready")
    assert cli.snapshot(running, waiting) == before
    assert alpha.claim()["task_id"] == waiting

    states = {h["name"]: h["state"] for h in cli.json("hosts")["hosts"]}
    assert states == {"alpha": "live", "beta": "revoked"}
    # Re-enrolling the revoked name is an admin's explicit act.
    again = _host(cli, tmp_path, "b2")
    again.refused("host", "enroll", "--name", "beta", match="needs an admin")
    again.ok("host", "enroll", "--name", "beta", "--readmit")


def test_bad_host_input_is_one_line_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    alpha = _host(cli, tmp_path, "a")
    alpha.ok("host", "enroll", "--name", "alpha", "--label", "gpu")
    before = cli.snapshot()
    other = _host(cli, tmp_path, "c")
    problems = cli.refusal_problems(
        [
            (["create", "x", "--host", "ghost"], 1, "no host named 'ghost'"),
            (["create", "x", "--label", "tpu"], 1, "no enrolled host carries the label 'tpu'"),
            (["hosts", "revoke", "ghost"], 1, "no host named 'ghost'"),
            (["hosts", "revoke"], 1, "needs the host's name"),
        ]
    )
    assert problems == []
    other.refused("host", "enroll", "--name", "alpha", match="already enrolled")
    alpha.refused("host", "enroll", "--name", "again", match="already enrolled as 'alpha'")
    assert cli.snapshot() == before
    assert [h["name"] for h in cli.json("hosts")["hosts"]] == ["alpha"]
    assert not (other.home / "host.json").exists()


def test_a_profile_places_its_tasks_unless_create_says_otherwise(cli: Cli, tmp_path: Path) -> None:
    gpu, other = _host(cli, tmp_path, "g"), _host(cli, tmp_path, "o")
    gpu.ok("host", "enroll", "--name", "gpu-box", "--label", "gpu")
    other.ok("host", "enroll", "--name", "other")
    (cli.home / "config.yaml").write_text(
        'assignees:\n  trainer:\n    command: ["train", "{task_id}"]\n    label: gpu\n',
        encoding="utf-8",
    )
    by_profile = cli.create("train it", "--assignee", "trainer")
    overridden = cli.create("train elsewhere", "--assignee", "trainer", "--host", "other")

    other.refused("claim", by_profile, match="it is ready")
    assert other.claim()["task_id"] == overridden
    assert gpu.claim()["task_id"] == by_profile


def test_hosts_and_status_show_who_holds_each_lease(cli: Cli, tmp_path: Path) -> None:
    from kanban_core.board import leases
    from kanban_core.storage import Database

    alpha, beta = _host(cli, tmp_path, "a"), _host(cli, tmp_path, "b")
    alpha.ok("host", "enroll", "--name", "alpha", "--label", "gpu")
    beta.ok("host", "enroll", "--name", "beta")
    ids = {h["name"]: h["id"] for h in cli.json("hosts")["hosts"]}
    db = Database(cli.db_url or f"sqlite:///{cli.home / 'kanban.db'}")
    try:  # what two gateways' keepers record (tests/e2e prove the keepers themselves)
        leases.acquire(db, "leader", "alpha:11:aa", ttl_s=60, host_id=ids["alpha"])
        leases.acquire(db, "platform:telegram", "alpha:11:aa", ttl_s=60, host_id=ids["alpha"])
        leases.acquire(db, "platform:slack", "beta:22:bb", ttl_s=60, host_id=ids["beta"])
    finally:
        db.close()

    listed = {h["name"]: h for h in cli.json("hosts")["hosts"]}
    assert (listed["alpha"]["platforms"], listed["alpha"]["leader"]) == (["telegram"], True)
    assert (listed["beta"]["platforms"], listed["beta"]["leader"]) == (["slack"], False)
    shown = cli.ok("hosts").out
    assert "alpha  live  leader  labels=gpu" in shown
    assert "platforms=telegram" in shown
    assert "platforms=slack" in shown

    status = cli.json("status")
    assert status["leader"] == "alpha:11:aa"
    held = {h["name"]: h for h in status["leases"]}
    assert (held["platform:slack"]["owner"], held["platform:slack"]["host"]) == (
        "beta:22:bb",
        "beta",
    )
    assert held["platform:telegram"]["live"]
    assert held["platform:telegram"]["expires_in_s"] > 50
    text = cli.ok("status").out
    assert "Leases" in text
    assert "platform:telegram" in text
    assert "alpha:11:aa" in text


def test_a_host_json_from_another_board_acts_on_nothing(cli: Cli, tmp_path: Path) -> None:
    alpha = _host(cli, tmp_path, "a")
    alpha.ok("host", "enroll", "--name", "alpha")
    other_board = f"sqlite:///{tmp_path / 'other.db'}"
    (tmp_path / "maker").mkdir()
    Cli(tmp_path / "maker", backend="sqlite", db_url=other_board).ok("init")
    elsewhere = Cli(alpha.home, backend="sqlite", db_url=other_board)
    refusal = elsewhere.refused("create", "on the wrong board", match="not this one")
    assert len(refusal.strip().splitlines()) == 1
    assert "belongs to board b-" in refusal
    for argv in (("claim", "--next"), ("dispatch",), ("hosts",)):
        elsewhere.refused(*argv, match="belongs to board")


def test_a_revoked_hosts_bound_task_is_blocked_and_an_admin_re_places_it(
    cli: Cli, tmp_path: Path
) -> None:
    alpha, beta = _enrolled(cli, tmp_path, "alpha", "beta")
    bound = cli.create("only alpha", "--host", "alpha")

    out = cli.ok("hosts", "revoke", "alpha").out
    assert f"Blocked 1 task(s) bound to it: {bound} — re-place each (`edit ID --host H`" in out
    task = cli.task(bound)
    assert (task["status"], task["block_kind"]) == ("blocked", "placement")

    before = cli.snapshot(bound)
    problems = cli.refusal_problems(
        [
            (["edit", bound, "--host", "alpha"], 1, "host 'alpha' is revoked"),
            (["edit", bound, "--host", "ghost"], 1, "no host named 'ghost'"),
            (["edit", bound, "--host", "beta", "--title", "x"], 2, "re-place a task on its own"),
            (["edit", bound, "--host", "beta", "--any-host"], 2, "not allowed with"),
            (["unblock", bound], 1, f"re-place it (`edit {bound} --host H`"),
            (["create", "x", "--host", "alpha"], 1, "host 'alpha' is revoked"),
        ]
    )
    assert problems == []
    assert cli.snapshot(bound) == before

    said = cli.ok("edit", bound, "--host", "beta").out
    assert f"Re-placed {bound}: host 'alpha' → host 'beta'" in said
    assert f"still blocked: `unblock {bound}`" in said
    cli.ok("unblock", bound)
    alpha.refused("claim", "--next", match="nothing is ready")
    assert beta.claim()["task_id"] == bound
