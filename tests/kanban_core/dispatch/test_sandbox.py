"""The sandbox policy of a profile, and how containment is decided on this machine."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from kanban_core.config import load_config
from kanban_core.dispatch.sandbox import containment, probe, wrap
from kanban_core.errors import KanbanError
from kanban_core.profiles import SandboxMode, SandboxPolicy


@pytest.fixture(autouse=True)
def fresh_probe() -> Iterator[None]:
    probe.cache_clear()
    yield
    probe.cache_clear()


def test_a_profile_sandbox_is_a_mode_or_a_mapping(tmp_path: Path):
    config = {
        "assignees": {
            "plain": {"command": ["true"]},
            "open": {"command": ["true"], "sandbox": "off"},
            "strict": {
                "command": ["true"],
                "sandbox": {
                    "mode": "required",
                    "network": False,
                    "read": ["/opt/tools"],
                    "write": ["/var/cache/pip"],
                },
            },
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")

    profiles = load_config(path, {}).assignees

    assert profiles["plain"].sandbox == SandboxPolicy()
    assert profiles["plain"].sandbox.mode is SandboxMode.AUTO
    assert profiles["open"].sandbox.mode is SandboxMode.OFF
    assert profiles["strict"].sandbox == SandboxPolicy(
        SandboxMode.REQUIRED, False, ("/opt/tools",), ("/var/cache/pip",)
    )
    assert (
        SandboxPolicy.from_json(profiles["strict"].sandbox.to_json()) == profiles["strict"].sandbox
    )


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (5, "sandbox: expected a mapping"),
        ("sometimes", "sandbox.mode: expected one of auto, required or off"),
        ({"mode": "maybe"}, "sandbox.mode: expected one of auto, required or off"),
        ({"network": "no"}, "sandbox.network: expected true or false"),
        ({"read": "/opt"}, "sandbox.read: expected a list"),
        ({"write": ["relative/dir"]}, "must be an absolute path below / without '..'"),
        ({"write": ["/home/me/../../etc"]}, "without '..'"),
        ({"write": ["/"]}, "must be an absolute path below /"),
        ({"allow": ["/"]}, "sandbox.allow: unknown key"),
    ],
)
def test_a_bad_sandbox_section_is_named_by_its_key(tmp_path: Path, raw: object, needle: str):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"assignees": {"x": {"command": ["true"], "sandbox": raw}}}))
    with pytest.raises(KanbanError, match=r"assignees\.x\.sandbox") as info:
        load_config(path, {})
    assert needle in str(info.value)


def test_without_bubblewrap_auto_runs_uncontained_and_required_refuses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap here

    auto = containment(SandboxPolicy())
    required = containment(SandboxPolicy(mode=SandboxMode.REQUIRED))
    off = containment(SandboxPolicy(mode=SandboxMode.OFF))

    assert not auto.contained
    assert auto.summary == "NOT CONTAINED: bubblewrap is not installed (apt-get install bubblewrap)"
    assert not required.contained
    assert required.summary.startswith("REFUSED TO RUN: sandbox required but bubblewrap is not")
    assert off == containment(SandboxPolicy(mode=SandboxMode.OFF))
    assert off.summary == "NOT CONTAINED: sandbox off for this profile"


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_with_bubblewrap_the_jail_hides_the_board_home_even_inside_a_listed_path(tmp_path: Path):
    assert probe() is None, probe()
    home = tmp_path / "kanban-home"
    workspace = home / "workspaces" / "t1"
    workspace.mkdir(parents=True)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    policy = SandboxPolicy(read=(str(tmp_path),), network=False)

    argv = wrap(
        ["true"],
        policy=policy,
        workspace=workspace,
        run_dir=run_dir,
        kanban_home=home,
        environ={"HOME": "/home/nobody"},
    )

    assert containment(policy).summary == "bubblewrap (network off, +1 read, +0 write)"
    assert "--share-net" not in argv
    assert argv[argv.index("--cap-drop") : argv.index("--cap-drop") + 2] == ["--cap-drop", "ALL"]
    joined = " ".join(argv)
    # Listed read-only, then the board's home masked, then the workspace bound again on top.
    assert joined.index(f"--ro-bind {tmp_path} {tmp_path}") < joined.index(f"--tmpfs {home}")
    assert joined.rindex(f"--bind {workspace} {workspace}") > joined.index(f"--tmpfs {home}")
    assert argv[-2:] == ["--", "true"]
