"""Orphan containers: quarantined by rename, never deleted; safe mode touches nothing (D-10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_core.workspaces.interactive.layout import MARKER_NAME, QUARANTINE, write_marker
from kanban_core.workspaces.interactive.orphans import reconcile_disk

KNOWN = "ws-1700000000-aaaaaa"
ORPHANS = ("ws-1700000001-bbbbbb", "ws-1700000002-cccccc", "ws-1700000003-dddddd")


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def disk(root: Path, tmp_path: Path) -> Path:
    """A managed root with our containers, and things that are not ours."""
    for ws_id in (KNOWN, *ORPHANS):
        (root / ws_id / "api").mkdir(parents=True)
        (root / ws_id / "api" / "work.txt").write_text(ws_id, encoding="utf-8")
        write_marker(root / ws_id, ws_id, ["api"])
    (root / "ws-0000000000-abcdef").mkdir()  # no marker: a decoy, never touched
    (root / "ws-0000000000-abcdef" / "file").write_text("decoy", encoding="utf-8")
    mismatched = root / "ws-1700000009-eeeeee"
    mismatched.mkdir()
    write_marker(mismatched, ORPHANS[0], [])  # copied marker: names another workspace
    victim = tmp_path / "victim"
    victim.mkdir()
    write_marker(victim, "ws-1700000008-ffffff", [])
    (root / "ws-1700000008-ffffff").symlink_to(victim)
    (root / "notes.txt").write_text("user file", encoding="utf-8")
    return root


def test_a14_unknown_marked_containers_are_quarantined_not_deleted(disk: Path) -> None:
    report = reconcile_disk(disk, [KNOWN])
    assert report.safe_mode is None
    assert report.quarantined == ORPHANS
    assert set(report.untouched) == {
        "ws-0000000000-abcdef",
        "ws-1700000009-eeeeee",
        "ws-1700000008-ffffff",
        "notes.txt",
    }
    moved = sorted((disk / QUARANTINE).iterdir())
    assert [p.name.split("-", 1)[1] for p in moved] == list(ORPHANS)
    for path, ws_id in zip(moved, ORPHANS, strict=True):
        assert (path / "api" / "work.txt").read_text(encoding="utf-8") == ws_id
        assert (path / MARKER_NAME).exists()
        assert not (disk / ws_id).exists()
    assert (disk / KNOWN / "api" / "work.txt").exists()
    assert (disk / "ws-0000000000-abcdef" / "file").read_text(encoding="utf-8") == "decoy"
    assert (disk / "ws-1700000008-ffffff").is_symlink()
    assert (disk / "ws-1700000009-eeeeee").is_dir()
    assert any("no kanban marker" in n for n in report.notes)
    assert any("a symlink" in n for n in report.notes)
    again = reconcile_disk(disk, [KNOWN])  # the quarantine itself is never a candidate
    assert again.quarantined == ()


def test_a13_empty_store_with_marked_containers_is_safe_mode(disk: Path) -> None:
    before = listing(disk)
    report = reconcile_disk(disk, [])
    assert report.safe_mode is not None
    assert "no workspaces are recorded but 4 directories carry markers" in report.safe_mode
    assert report.quarantined == ()
    assert set(ORPHANS) <= set(report.untouched)
    assert listing(disk) == before


def test_store_failure_is_safe_mode(disk: Path) -> None:
    before = listing(disk)
    report = reconcile_disk(disk, [KNOWN], store_ok=False)
    assert report.safe_mode == "the workspace store could not be read; no directory was moved"
    assert listing(disk) == before


def test_dry_run_and_the_kill_switch_move_nothing(
    disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = listing(disk)
    report = reconcile_disk(disk, [KNOWN], dry_run=True)
    assert (report.dry_run, report.quarantined) == (True, ORPHANS)
    assert listing(disk) == before
    monkeypatch.setenv("KANBAN_DISABLE_WORKTREE_CLEANUP", "1")
    report = reconcile_disk(disk, [KNOWN])
    assert (report.dry_run, report.quarantined) == (True, ORPHANS)
    assert listing(disk) == before


def test_a_symlinked_quarantine_is_refused(disk: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (disk / QUARANTINE).symlink_to(elsewhere)
    report = reconcile_disk(disk, [KNOWN])
    assert report.quarantined == ()
    assert set(ORPHANS) <= set(report.untouched)
    assert list(elsewhere.iterdir()) == []
    assert all((disk / ws_id).is_dir() for ws_id in ORPHANS)


def test_missing_root_is_an_empty_report(tmp_path: Path) -> None:
    report = reconcile_disk(tmp_path / "nowhere", [])
    assert (report.quarantined, report.untouched, report.safe_mode) == ((), (), None)
