"""The managed root (D-02, D-03): ids, root refusal, containers, slugs, markers, safe rmdir."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.interactive.layout import (
    ID_RE,
    MARKER_NAME,
    ROOT_LEAF,
    check_repo_outside,
    container_path,
    managed_root,
    new_id,
    read_marker,
    repo_slug,
    safe_rmdir_container,
    short_of,
    write_marker,
)
from tests.kanban_core.workspaces.interactive.conftest import WS, WS2


def test_new_id_has_the_seed_format_and_is_unique() -> None:
    ids = {new_id(prefix) for prefix in ("ws", "sess", "proc", "ap") for _ in range(20)}
    assert len(ids) == 80
    assert all(ID_RE.fullmatch(i) for i in ids)
    with pytest.raises(WorkspaceError):
        new_id("../x")


def test_short_of_takes_four_hex_of_the_random_part() -> None:
    assert short_of(WS) == "4f2a"
    with pytest.raises(WorkspaceError):
        short_of("ws-12-4f2a9c")


@pytest.mark.parametrize(
    "bad", ["../../etc", "ws-1700000000-4f2a9c/..", "sess-1700000000-4f2a9c", ".quarantine", ""]
)
def test_container_path_only_joins_workspace_ids(bad: str, root: Path) -> None:
    with pytest.raises(WorkspaceError):
        container_path(root, bad)
    assert container_path(root, WS) == root / WS


def test_repo_slug_is_safe_and_unique() -> None:
    assert repo_slug("api", []) == "api"
    assert repo_slug("API", ["api"]) == "api-2"
    assert repo_slug("api", ["api", "api-2"]) == "api-3"
    assert repo_slug("..", []) == "repo"
    assert repo_slug("My Repo!", []) == "my-repo"
    long = repo_slug("x" * 100, ["x" * 64])
    assert len(long) <= 64
    assert long.endswith("-2")
    assert re.fullmatch(r"[a-z0-9._-]{1,64}", long)


def test_managed_root_default_and_configured(tmp_path: Path, home: Path) -> None:
    assert managed_root(None, home) == home.resolve() / ROOT_LEAF
    data = tmp_path / "data"  # need not exist yet
    assert managed_root(data, home) == tmp_path.resolve() / "data" / ROOT_LEAF
    link = tmp_path / "link"
    link.symlink_to(home)
    assert managed_root(link, home / "elsewhere") == home.resolve() / ROOT_LEAF


def test_a11_managed_root_refuses_dangerous_places(tmp_path: Path, home: Path, api: Path) -> None:
    cases = {
        Path("/"): "filesystem root",
        home: "home directory",
        api: "inside the git repository",
        api / "sub" / "dir": "inside the git repository",
        api / ".git": "inside the git repository",
        Path("relative/dir"): "absolute",
    }
    for configured, why in cases.items():
        with pytest.raises(WorkspaceError, match=why) as info:
            managed_root(configured, home)
        assert "\n" not in str(info.value)
    assert not (api / "sub").exists()  # refusing created nothing


def test_managed_root_refuses_a_symlinked_leaf_or_a_file(tmp_path: Path, home: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / ROOT_LEAF).symlink_to(home)
    with pytest.raises(WorkspaceError, match="symlink"):
        managed_root(data, home)
    plain = tmp_path / "plain-file"
    plain.write_text("x", encoding="utf-8")
    with pytest.raises(WorkspaceError, match=r"not writable|not a directory"):
        managed_root(plain, home)


def test_check_repo_outside(tmp_path: Path) -> None:
    root = tmp_path / "work" / ROOT_LEAF
    check_repo_outside(root, tmp_path / "work-backup")  # a string prefix is not containment
    check_repo_outside(root, tmp_path / "repo")
    with pytest.raises(WorkspaceError, match="overlaps"):
        check_repo_outside(root, tmp_path / "work")
    with pytest.raises(WorkspaceError, match="overlaps"):
        check_repo_outside(root, root / WS / "api")


def test_marker_round_trip_and_unreadable_markers(root: Path) -> None:
    container = root / WS
    container.mkdir(parents=True)
    assert read_marker(container) is None
    write_marker(container, WS, ["api", "web"])
    marker = read_marker(container)
    assert marker is not None
    assert (marker["ws_id"], marker["repos"]) == (WS, ["api", "web"])
    assert sorted(p.name for p in container.iterdir()) == [MARKER_NAME]  # no temp file left
    (container / MARKER_NAME).write_text("[1, 2]", encoding="utf-8")
    assert read_marker(container) is None
    (container / MARKER_NAME).write_text("{not json", encoding="utf-8")
    assert read_marker(container) is None
    (container / MARKER_NAME).unlink()
    decoy = root / "decoy.json"
    decoy.write_text(json.dumps({"ws_id": WS}), encoding="utf-8")
    (container / MARKER_NAME).symlink_to(decoy)
    assert read_marker(container) is None


def test_safe_rmdir_container_removes_only_an_emptied_marked_container(root: Path) -> None:
    container = root / WS
    container.mkdir(parents=True)
    write_marker(container, WS, ["api"])
    safe_rmdir_container(container, root, WS)
    assert not container.exists()
    assert root.is_dir()


def test_safe_rmdir_container_never_recurses(root: Path) -> None:
    container = root / WS
    (container / "notes").mkdir(parents=True)
    (container / "notes" / "todo.md").write_text("keep me", encoding="utf-8")
    write_marker(container, WS, ["api"])
    with pytest.raises(WorkspaceError, match="still holds notes"):
        safe_rmdir_container(container, root, WS)
    assert (container / "notes" / "todo.md").read_text(encoding="utf-8") == "keep me"
    assert read_marker(container) is not None  # the proof of ownership stays


def test_safe_rmdir_container_refuses_without_proof(tmp_path: Path, root: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    write_marker(victim, WS, [])
    root.mkdir(parents=True)
    (root / WS).symlink_to(victim)
    with pytest.raises(WorkspaceError, match="not a real directory"):
        safe_rmdir_container(root / WS, root, WS)
    assert victim.is_dir()
    assert read_marker(victim) is not None
    (root / WS).unlink()

    unmarked = root / WS
    unmarked.mkdir()
    with pytest.raises(WorkspaceError, match="no marker"):
        safe_rmdir_container(unmarked, root, WS)
    write_marker(unmarked, WS2, [])  # someone else's marker
    with pytest.raises(WorkspaceError, match="no marker"):
        safe_rmdir_container(unmarked, root, WS)
    assert unmarked.is_dir()

    nested = root / WS / WS2
    nested.mkdir()
    write_marker(nested, WS2, [])
    with pytest.raises(WorkspaceError, match="is not"):
        safe_rmdir_container(nested, root, WS2)
    outside = tmp_path / WS2
    outside.mkdir()
    write_marker(outside, WS2, [])
    with pytest.raises(WorkspaceError, match="is not"):
        safe_rmdir_container(outside, root, WS2)
    assert nested.is_dir()
    assert outside.is_dir()
    assert [p.name for p in outside.iterdir()] == [MARKER_NAME]


def test_a_symlink_planted_in_a_container_is_unlinked_and_its_target_kept(tmp_path):
    root = tmp_path / "root"
    ws_id = new_id("ws")
    container = root / ws_id
    container.mkdir(parents=True)
    write_marker(container, ws_id, ["api"])
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    (container / "evil").symlink_to(victim)

    safe_rmdir_container(container, root, ws_id)

    assert not container.exists()
    assert (victim / "keep.txt").read_text() == "keep"
