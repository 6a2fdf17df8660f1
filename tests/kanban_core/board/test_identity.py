"""The board's identity: host.json names its board, and a file from another board is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kanban_core import Actor, Kanban, KernelSettings, enrollment as enrollment_file
from kanban_core.board import identity
from kanban_core.errors import ValidationError
from tests.conftest import PG_URL


def _enroll(settings: KernelSettings, name: str) -> Path:
    with Kanban.open(settings) as board:
        host = board.enroll_host(
            Actor(name="root"), name=name, labels=(), secret=f"s-{name}", readmit=False
        )
        return enrollment_file.save(settings.home, host)


def test_enrollment_records_the_board_and_the_board_keeps_one_id(tmp_path: Path) -> None:
    settings = KernelSettings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'a.db'}")
    with Kanban.open(settings) as board, board.db.transaction(write=False) as tx:
        assert identity.board_id(tx) is None  # nothing needed one yet; reads never write
    saved = json.loads(_enroll(settings, "alpha").read_text())
    other = KernelSettings(home=tmp_path / "other", db_url=settings.db_url)
    again = json.loads(_enroll(other, "beta").read_text())
    assert saved["board_id"] == again["board_id"]
    assert saved["board_id"].startswith("b-")
    with Kanban.open(settings) as board:
        assert board.host is not None
        assert board.host.board_id == saved["board_id"]


def test_a_host_json_from_another_board_is_refused_in_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = KernelSettings(home=home, db_url=f"sqlite:///{tmp_path / 'first.db'}")
    _enroll(first, "alpha")
    second = KernelSettings(home=home, db_url=f"sqlite:///{tmp_path / 'second.db'}")
    with Kanban.open(KernelSettings(home=tmp_path / "x", db_url=second.db_url)) as board:
        board.enroll_host(Actor(name="root"), name="x", labels=(), secret="s-x", readmit=False)  # noqa: S106

    with pytest.raises(ValidationError) as refused:
        Kanban.open(second)
    message = str(refused.value)
    assert "\n" not in message
    assert "belongs to board b-" in message
    assert "not this one" in message
    # A board no host ever enrolled on has no id: refused all the same.
    with pytest.raises(ValidationError, match="a board with no enrolled host"):
        Kanban.open(KernelSettings(home=home, db_url=f"sqlite:///{tmp_path / 'third.db'}"))


def test_a_legacy_host_json_without_a_board_is_still_accepted(tmp_path: Path) -> None:
    settings = KernelSettings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'a.db'}")
    path = _enroll(settings, "alpha")
    body = json.loads(path.read_text())
    del body["board_id"]
    path.write_text(json.dumps(body))
    with Kanban.open(settings) as board:
        assert board.host is not None
        assert board.host.board_id is None


def test_the_same_board_by_another_url_is_still_this_board(tmp_path: Path) -> None:
    if not PG_URL:
        pytest.skip("needs PostgreSQL (set KANBAN_TEST_PG_URL)")
    from tests.conftest import create_pg_database, drop_pg_database

    url = create_pg_database()
    try:
        home = tmp_path / "home"
        _enroll(KernelSettings(home=home, db_url=url), "alpha")
        moved = url.replace("127.0.0.1", "localhost")
        assert moved != url
        with Kanban.open(KernelSettings(home=home, db_url=moved)) as board:
            assert board.host is not None
            assert board.host.name == "alpha"
    finally:
        drop_pg_database(url)
