"""The container recipe and the systemd unit name things that exist: the entry point, its verb,
the extra to install, the directories copied, the home the code reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from gateway.cli import main

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_dockerfile_installs_every_extra_and_runs_the_gateway_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.\d+-slim$", text, re.M)
    assert 'pip install ".[all]"' in text
    assert "all" in PYPROJECT["project"]["optional-dependencies"]
    for source in re.findall(r"^COPY (\S+) \./\S*$", text, re.M):
        assert (ROOT / source).is_dir(), source
    for package in ("kanban_core", "gateway", "adapters", "web"):
        assert f"COPY {package} " in text
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users == ["kanban"]
    assert 'ENTRYPOINT ["kanban"]' in text
    assert PYPROJECT["project"]["scripts"]["kanban"] == "gateway.cli:main"
    assert 'CMD ["gateway"]' in text
    home = re.search(r"KANBAN_HOME=(\S+)", text)
    assert home is not None
    assert f'VOLUME ["{home.group(1)}"]' in text


def test_the_systemd_unit_runs_the_gateway_restarts_on_failure_and_is_hardened() -> None:
    text = (ROOT / "deploy" / "kanban-gateway.service").read_text(encoding="utf-8")
    keys = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    assert keys["ExecStart"].split()[1:] == ["gateway"]
    assert keys["ExecStart"].split()[0].endswith("/kanban")
    assert keys["Restart"] == "on-failure"
    assert keys["User"] == "kanban"
    assert keys["Environment"] == f"KANBAN_HOME={keys['ReadWritePaths']}"
    for option in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert option in keys, option


def test_the_verbs_the_recipes_run_exist(capsys: pytest.CaptureFixture[str]) -> None:
    for verb in ("gateway", "doctor"):
        assert main([verb, "--help"]) == 0
        assert verb in capsys.readouterr().out
