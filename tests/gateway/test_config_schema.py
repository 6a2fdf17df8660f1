"""The one schema of config.yaml: config.example.yaml documents every key of it, and nothing else;
the example with every platform enabled is valid; a misspelled key fails at any depth."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.discord import DiscordAdapter, create as create_discord
from adapters.slack import SlackAdapter, create as create_slack
from adapters.telegram import TelegramAdapter, create as create_telegram
from gateway.access import Role
from gateway.config import load_gateway_config
from gateway.messages import ChatUser
from kanban_core import ValidationError
from kanban_core.config import load_config, schema as config_schema
from kanban_core.config.model import child_type, model_in, root_model, validate_document
from kanban_core.profiles import Preset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.yaml"
#: A commented-out setting is ``# key: value`` at the indentation the key would have.
#: A list of sections (a profile's permission rules) is commented out item by item: ``#   - key:``.
COMMENTED_SETTING = re.compile(r"^(\s*)# (\s*(?:- )?[a-z_][a-z0-9_]*:(?:\s.*)?)$")


def uncommented_example() -> dict[str, Any]:
    """config.example.yaml with its commented-out settings switched on."""
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = [COMMENTED_SETTING.sub(r"\1\2", line) for line in text.splitlines()]
    document = yaml.safe_load("\n".join(lines))
    assert isinstance(document, dict)
    return document


def example_with_every_key() -> dict[str, Any]:
    """The uncommented example, made valid."""
    document = uncommented_example()
    assert "db_url" in document["board"]
    del document["board"]["db_url"]  # documented as the alternative to db_url_env
    return document


def schema_paths(node: Any = None, prefix: str = "") -> set[str]:
    """Every key path the schema declares; ``*`` stands for a name the user chooses."""
    node = root_model() if node is None else node
    paths: set[str] = set()
    model = model_in(node)
    if model is not None:
        for name in model.model_fields:
            path = f"{prefix}{name}"
            paths.add(path)
            paths |= schema_paths(child_type(model, name), f"{path}.")
    elif model_in(child_type(node, "*")) is not None:  # a mapping of names to sections
        paths |= schema_paths(child_type(node, "*"), f"{prefix}*.")
    return paths


def documented_paths(value: Any, node: Any = None, prefix: str = "") -> set[str]:
    """Every key path the example writes, with user-chosen names as ``*``."""
    node = root_model() if node is None else node
    paths: set[str] = set()
    if isinstance(value, list) and model_in(child_type(node, "*")) is not None:
        for item in value:  # a list of sections: each item's keys, the index as ``*``
            paths |= documented_paths(item, child_type(node, "*"), f"{prefix}*.")
        return paths
    if not isinstance(value, dict):
        return paths
    model = model_in(node)
    for key, child in value.items():
        if model is not None:
            path, below = f"{prefix}{key}", child_type(model, str(key))
        elif model_in(child_type(node, "*")) is not None:
            path, below = f"{prefix}*", None
            paths |= documented_paths(child, child_type(node, "*"), f"{path}.")
            continue
        else:
            continue  # values of a plain mapping (env, users, scripts) are data, not keys
        paths.add(path)
        if below is not None:
            paths |= documented_paths(child, below, f"{path}.")
        elif isinstance(child, dict):
            paths |= {f"{path}.{k}" for k in child}  # not in the schema: reported below
    return paths


def test_the_example_documents_every_key_of_the_schema_and_nothing_else():
    declared = schema_paths()
    documented = documented_paths(uncommented_example())
    assert sorted(declared - documented) == [], "keys missing from config.example.yaml"
    assert sorted(documented - declared) == [], "config.example.yaml documents unknown keys"
    # The reference covers every section and every platform the product ships.
    for path in (
        "board.db_url_env",
        "assignees.*.resume_args",
        "assignees.*.permissions.*.paths",
        "permissions.answer_role",
        "workspaces.repos.*.scripts",
    ):
        assert path in declared
    for platform in ("console", "telegram", "discord", "slack"):
        assert f"platforms.{platform}.enabled" in declared
    assert "platforms.discord.gateway_url" in declared


def test_the_example_with_every_key_switched_on_is_valid():
    model: Any
    model, problems = validate_document(example_with_every_key())
    assert problems == []
    assert model.workspaces.archive.remove_clean_worktree_after_seconds == 604800


def test_the_answering_roles_are_the_gateways():
    names = typing.get_args(config_schema.PermissionsSection.model_fields["answer_role"].annotation)
    assert list(names) == [role.name.lower() for role in sorted(Role)]


def test_the_schemas_presets_are_the_kernels():
    assert set(typing.get_args(config_schema.Preset)) == {preset.value for preset in Preset}


def enable_every_platform(tmp_path: Path) -> Path:
    """The example as a user would copy it, with every platform enabled and pointed at loopback."""
    document = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    for name, section in document["platforms"].items():
        section["enabled"] = True
        section["api_base_url"] = f"http://127.0.0.1:9/{name}"
    document["platforms"]["console"] = {"enabled": True}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_example_with_every_platform_enabled_loads_and_builds_every_adapter(tmp_path):
    path = enable_every_platform(tmp_path)
    kernel = load_config(path, {})
    assert kernel.assignees["coder"].max_runtime_s == 7200
    assert kernel.workspaces.repos["api"].scripts["lint"] == ("ruff", "check", ".")
    config = load_gateway_config(path)
    assert config.enabled_platforms == ["console", "discord", "slack", "telegram"]
    assert config.access.role_of(ChatUser("slack", "U0123ABCD")) is Role.OPERATOR
    # Each adapter takes its whole section, `enabled` included, as the gateway hands it over.
    sections = config.platforms
    assert isinstance(create_telegram(sections["telegram"], {}), TelegramAdapter)
    assert isinstance(create_discord(sections["discord"], {}), DiscordAdapter)
    assert isinstance(create_slack(sections["slack"], {}), SlackAdapter)


def misspellings() -> list[tuple[str, str]]:
    """For every mapping the schema declares, one of its keys and that key misspelled."""
    cases = []
    for path in sorted(schema_paths()):
        *parents, key = path.split(".")
        if len(key) > 3 and key != "*":
            cases.append((".".join(parents), key))
    seen: set[str] = set()
    unique = []
    for parent, key in cases:
        if parent not in seen:  # one typo per mapping keeps the run short
            seen.add(parent)
            unique.append((parent, key))
    return unique


def insert(document: dict[str, Any], parent: str, key: str, value: object) -> None:
    node: Any = document
    for part in [p for p in parent.split(".") if p]:
        if part == "*" and isinstance(node, list):
            node = node[0]  # the example's first item
            continue
        if part == "*":
            part = next(iter(node))  # the example's first named entry
        node = node.setdefault(part, {})
    node[key] = value


@pytest.mark.parametrize(("parent", "key"), misspellings(), ids=lambda v: v or "top")
def test_a_misspelled_key_fails_at_any_depth_with_its_path_and_a_suggestion(parent, key):
    document = copy.deepcopy(example_with_every_key())
    typo = key[:-2] + key[-1]  # one letter dropped
    insert(document, parent, typo, 1)
    _, problems = validate_document(document)
    where = parent.replace("*", "{name}")
    named = "" if not parent else where + "."
    assert len(problems) == 1, problems
    head, _, message = problems[0].partition(": ")
    assert re.fullmatch(re.escape(named).replace(r"\{name\}", r"[^.]+") + re.escape(typo), head)
    assert message.startswith("unknown key"), problems
    assert f"did you mean {key}?" in message or "secrets never go in the file" in message


@pytest.mark.parametrize(
    ("yaml_text", "line"),
    [
        ("board:\n  claim_ttl_seconds: '900'\n", "board.claim_ttl_seconds: expected a whole"),
        ("dispatcher:\n  max_in_progress: 2.5\n", "dispatcher.max_in_progress: expected a whole"),
        ("platforms:\n  slack:\n    listen_port: '80'\n", "platforms.slack.listen_port: expected"),
        ("platforms:\n  discord:\n    message_content: 'yes'\n", "expected true or false"),
        ("platforms:\n  telegram: on\n", "platforms.telegram: expected a mapping, got true/false"),
        ("workspaces:\n  protected_branches: main\n", "protected_branches: expected a list"),
        ("assignees:\n  coder:\n    command: run.sh\n", "assignees.coder.command: expected a list"),
        ("platforms:\n  slack:\n    mode: rtm\n", "platforms.slack.mode: expected one of http or"),
    ],
)
def test_a_wrong_type_says_the_expected_type(tmp_path, yaml_text, line):
    path = tmp_path / "config.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        load_config(path, {})
    [problem] = str(caught.value).splitlines()
    assert problem.startswith(f"{path}: ")
    assert line in problem


@pytest.mark.integration
def test_the_cli_reports_each_problem_on_one_line_and_opens_no_board(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text(
        "platforms:\n  telegram:\n    api_base_ur: http://127.0.0.1:8081\n"
        "dispatcher:\n  max_in_progress: '4'\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "list"],
        capture_output=True,
        text=True,
        env={"KANBAN_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    config = home / "config.yaml"
    assert done.stderr.splitlines() == [
        f"kanban: {config}: dispatcher.max_in_progress: expected a whole number, got a string",
        f"kanban: {config}: platforms.telegram.api_base_ur: unknown key "
        "(did you mean api_base_url?)",
    ]
    assert sorted(p.name for p in home.iterdir()) == ["config.yaml"]  # no board was created
