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
    alpha, beta = _host(cli, tmp_path, "a"), _host(cli, tmp_path, "b")
    alpha.ok("host", "enroll", "--name", "alpha")
    beta.ok("host", "enroll", "--name", "beta")
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
