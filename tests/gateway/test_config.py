"""The gateway's sections of config.yaml: defaults, and every problem listed by key path at once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.access import Role
from gateway.config import GatewayConfig, NotifierSettings, load_gateway_config
from gateway.errors import ConfigError
from gateway.messages import ChatUser


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_gateway_config(path)
    for problem in caught.value.problems:
        assert problem.startswith(f"{path}: "), problem
        assert problem in str(caught.value)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def test_no_file_means_the_console_with_defaults(tmp_path):
    for path in (None, tmp_path / "missing.yaml"):
        config = load_gateway_config(path)
        assert config == GatewayConfig()
        assert config.enabled_platforms == ["console"]
        assert config.notifier == NotifierSettings()
        assert config.max_reply_parts == 5
        assert config.access.role_of(ChatUser("console", "local")) is Role.ADMIN
        assert config.access.role_of(ChatUser("telegram", "1")) is None


def test_an_empty_file_and_kernel_sections_are_fine(tmp_path):
    assert load_gateway_config(write(tmp_path, {})).enabled_platforms == ["console"]
    document = {
        "board": {"claim_ttl_seconds": 60},
        "dispatcher": {"max_in_progress": 2},
        "assignees": {"coder": {"command": ["true"]}},
    }
    assert load_gateway_config(write(tmp_path, document)) == GatewayConfig()


def test_a_full_valid_config(tmp_path):
    document = {
        "gateway": {
            "notify_poll_ms": 50,
            "notify_max_attempts": 4,
            "notify_backoff_base_seconds": 2,
            "notify_backoff_cap_seconds": 60,
            "notify_claim_lease_seconds": 30,
            "max_reply_parts": 3,
        },
        "platforms": {
            "telegram": {"token_env": "TELEGRAM_TOKEN", "api_base_url": "http://127.0.0.1:9"},
            "slack": {"enabled": False, "bot_token_env": "SLACK_BOT_TOKEN"},
            "console": {},
        },
        "access": {
            "users": {"telegram:1001": "admin", "Telegram:1002": "operator", "slack:U9": "viewer"},
            "console": "viewer",
        },
    }
    config = load_gateway_config(write(tmp_path, document))
    assert config.notifier == NotifierSettings(
        poll_ms=50, max_attempts=4, backoff_base_s=2, backoff_cap_s=60, claim_lease_s=30
    )
    assert config.max_reply_parts == 3
    assert config.enabled_platforms == ["console", "telegram"]  # started in name order
    assert config.platforms["telegram"]["api_base_url"] == "http://127.0.0.1:9"
    access = config.access
    assert access.role_of(ChatUser("telegram", "1001")) is Role.ADMIN
    assert access.role_of(ChatUser("telegram", "1002")) is Role.OPERATOR  # platform case-folded
    assert access.role_of(ChatUser("slack", "U9")) is Role.VIEWER
    assert access.role_of(ChatUser("slack", "u9")) is None  # user ids are exact
    assert access.role_of(ChatUser("console", "local")) is Role.VIEWER


def test_disabled_platforms_do_not_start(tmp_path):
    only_disabled = {"platforms": {"telegram": {"enabled": False, "token_env": "T"}}}
    assert load_gateway_config(write(tmp_path, only_disabled)).enabled_platforms == ["console"]
    mixed = {"platforms": {"telegram": {"enabled": False}, "discord": {"enabled": True}}}
    assert load_gateway_config(write(tmp_path, mixed)).enabled_platforms == ["discord"]


def test_every_problem_is_listed_by_key_path_at_once(tmp_path):
    document = {
        "gatway": {},
        "gateway": {"notify_poll_ms": 0, "notify_max_attempts": "many", "colour": "blue"},
        "platforms": {
            "telegram": {"token": "123:abc", "enabled": "yes"},
            "slack": {"signing_secret": "s3cr3t", "app_token_env": "SLACK_APP_TOKEN"},
            "discord": "on",
        },
        "access": {
            "users": {"telegram:1": "root", "bob": "admin", "telegram:": "viewer"},
            "console": "god",
            "groups": {},
        },
    }
    problems = problems_of(write(tmp_path, document))
    expected = [
        "gatway: unknown key (did you mean gateway?)",
        "gateway.colour: unknown key",
        "gateway.notify_poll_ms: must be greater than 0",
        "gateway.notify_max_attempts: expected a whole number, got a string",
        "platforms.telegram.token: secrets never go in the file",
        "platforms.telegram.enabled: expected true or false, got a string",
        "platforms.slack.signing_secret: secrets never go in the file",
        "platforms.discord: expected a mapping, got a string",
        "access.users.telegram:1: expected one of viewer, operator, approver or admin",
        "access.users.bob: name users as platform:user_id",
        "access.users.telegram:: name users as platform:user_id",
        "access.console: expected one of viewer, operator, approver or admin",
        "access.groups: unknown key (known: console, users)",
    ]
    for start in expected:
        assert sum(p.startswith(start) for p in problems) == 1, (start, problems)
    assert len(problems) == len(expected), problems
    # The secret's value is never echoed back.
    assert not any("123:abc" in p or "s3cr3t" in p for p in problems)
    assert any("token_env" in p for p in problems)  # says what to write instead


@pytest.mark.parametrize("key", ["password", "api_key", "client_secret", "webhook_token"])
def test_secret_looking_keys_must_name_an_environment_variable(tmp_path, key):
    problems = problems_of(write(tmp_path, {"platforms": {"telegram": {key: "hunter2"}}}))
    assert problems == [
        f"platforms.telegram.{key}: secrets never go in the file; "
        "name the environment variable with token_env"
    ]
    problems = problems_of(write(tmp_path, {"gateway": {key: "hunter2"}}))
    assert problems == [
        f"gateway.{key}: secrets never go in the file; keep them in environment variables"
    ]


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"platforms": ["telegram"]}, "platforms"),
        ({"gateway": "fast"}, "gateway"),
        ({"access": {"users": ["telegram:1"]}}, "access.users"),
        ({"access": {"users": {"telegram:1": "admin", 12345: "admin"}}}, "access.users.12345"),
    ],
)
def test_wrong_shapes_are_named(tmp_path, document, path):
    if 12345 in document.get("access", {}).get("users", {}):
        # JSON has only string keys: write real YAML for an integer key.
        file = tmp_path / "config.yaml"
        file.write_text("access:\n  users:\n    telegram:1: admin\n    12345: admin\n")
    else:
        file = write(tmp_path, document)
    problems = problems_of(file)
    assert [p.split(": ")[0] for p in problems] == [path], problems


def test_unreadable_yaml_is_one_problem_naming_the_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("platforms: [unclosed\n", encoding="utf-8")
    problems = problems_of(path)
    assert len(problems) == 1
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert problems_of(path) == ["the top level must be a mapping"]
