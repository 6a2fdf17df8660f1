import pytest

from kanban_core import KernelSettings, ValidationError
from kanban_core.config import load_board_config

EXAMPLE = __import__("pathlib").Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_example_config_loads(tmp_path):
    copy = tmp_path / "config.yaml"  # loading leaves a validation record beside the file
    copy.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    config = load_board_config(copy, {})
    assert config.sqlite_synchronous == "NORMAL"
    assert config.claim_ttl_seconds == 900


def test_missing_file_is_empty_config(tmp_path):
    assert load_board_config(tmp_path / "none.yaml", {}).db_url is None


def test_explicit_missing_file_is_an_error(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        load_board_config(tmp_path / "none.yaml", {"KANBAN_CONFIG": str(tmp_path / "none.yaml")})


def test_every_problem_is_listed_with_its_key(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "board:\n  colour: blue\n  sqlite_synchronous: OFF\n  claim_ttl_seconds: -3\n"
        "  db_url: postgresql://u:secret@h/db\n"
    )
    with pytest.raises(ValidationError) as info:
        load_board_config(path, {})
    message = str(info.value)
    for key in (
        "board.colour",
        "board.sqlite_synchronous",
        "board.claim_ttl_seconds",
        "board.db_url",
    ):
        assert key in message
    assert "secret" not in message


def test_db_url_from_named_environment_variable(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("board:\n  db_url_env: MY_DB\n")
    assert load_board_config(path, {"MY_DB": "sqlite:///x.db"}).db_url == "sqlite:///x.db"
    with pytest.raises(ValidationError, match="MY_DB is not set"):
        load_board_config(path, {})


def test_settings_precedence_flag_env_file(tmp_path):
    (tmp_path / "config.yaml").write_text(
        f"board:\n  db_url: sqlite:///{tmp_path}/file.db\n  claim_ttl_seconds: 60\n"
    )
    env = {"KANBAN_HOME": str(tmp_path)}
    assert KernelSettings.from_environ(env).db_url.endswith("file.db")
    assert KernelSettings.from_environ(env).claim_ttl_s == 60
    env_url = f"sqlite:///{tmp_path}/env.db"
    assert KernelSettings.from_environ(env | {"KANBAN_DB_URL": env_url}).db_url == env_url
    flag_url = f"sqlite:///{tmp_path}/flag.db"
    assert (
        KernelSettings.from_environ(env | {"KANBAN_DB_URL": env_url}, db_url=flag_url).db_url
        == flag_url
    )


def test_chat_directories_are_named_absolute_paths(tmp_path):
    from kanban_core.config import load_config

    good = tmp_path / "good.yaml"
    good.write_text("workspaces:\n  dirs:\n    docs: /srv/docs\n")
    assert dict(load_config(good, {}).workspaces.dirs) == {
        "docs": __import__("pathlib").Path("/srv/docs")
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("workspaces:\n  dirs:\n    Bad Name: /x\n    rel: here\n    up: /srv/../etc\n")
    with pytest.raises(ValidationError) as info:
        load_config(bad, {})
    for key in ("workspaces.dirs.Bad Name", "workspaces.dirs.rel", "workspaces.dirs.up"):
        assert key in str(info.value)


def test_quota_backoff_and_profile_budgets(tmp_path):
    from kanban_core.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "dispatcher:\n  quota_backoff_seconds: 120\n"
        "assignees:\n  coder:\n    preset: claude-code\n    max_cost_usd: 2.5\n"
        "    max_tokens: 1000\n"
    )
    config = load_config(path, {})
    assert config.dispatcher.quota_backoff_seconds == 120
    coder = config.assignees["coder"]
    assert (coder.max_cost_micro_usd, coder.max_tokens) == (2_500_000, 1000)
    assert load_config(tmp_path / "none.yaml", {}).dispatcher.quota_backoff_seconds == 900
    path.write_text(
        "dispatcher:\n  quota_backoff_seconds: 0\n"
        "assignees:\n  coder:\n    preset: claude-code\n    max_cost_usd: -1\n"
    )
    with pytest.raises(ValidationError) as info:
        load_config(path, {})
    assert "dispatcher.quota_backoff_seconds" in str(info.value)
    assert "max_cost_usd" in str(info.value)


def test_a_profile_turns_live_progress_off_or_sets_its_interval(tmp_path):
    from kanban_core.config import load_config

    path = tmp_path / "config.yaml"
    path.write_text(
        "assignees:\n"
        "  quiet:\n    command: [a]\n    progress: {enabled: false}\n"
        "  slow:\n    command: [a]\n    progress: {interval_seconds: 10}\n"
        "  plain:\n    command: [a]\n"
    )
    profiles = load_config(path, {}).assignees
    assert profiles["quiet"].progress_interval_s is None
    assert profiles["slow"].progress_interval_s == 10
    assert profiles["plain"].progress_interval_s == 3
    path.write_text("assignees:\n  fast:\n    command: [a]\n    progress: {interval_seconds: 0}\n")
    with pytest.raises(ValidationError, match=r"assignees\.fast\.progress\.interval_seconds"):
        load_config(path, {})


def test_a_request_expiry_longer_than_a_day_is_refused(tmp_path):
    # gc forgets spent nonces a day after the longest expiry: a longer one would outlive it.
    path = tmp_path / "config.yaml"
    path.write_text("workspaces:\n  request_expiry_seconds: 86401\n")
    with pytest.raises(ValidationError, match=r"workspaces\.request_expiry_seconds") as info:
        load_board_config(path, {})
    assert "86400" in str(info.value)
    path.write_text("workspaces:\n  request_expiry_seconds: 86400\n")
    assert load_board_config(path, {}).db_url is None
