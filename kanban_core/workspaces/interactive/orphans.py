"""Orphan containers under the managed root (D-10 steps 0 and 5): quarantined, never deleted."""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kanban_core.workspaces.interactive.layout import ID_RE, QUARANTINE, read_marker

KILL_SWITCH = "KANBAN_DISABLE_WORKTREE_CLEANUP"


@dataclass(frozen=True, slots=True)
class OrphanReport:
    """What a reconciliation moved aside, what it left alone, and whether it refused to act.

    ``quarantined`` holds the workspace ids moved (or, when ``dry_run``, that would be moved);
    ``untouched`` the entry names left alone; ``notes`` one human line per entry, with why.
    """

    quarantined: tuple[str, ...]
    untouched: tuple[str, ...]
    safe_mode: str | None
    dry_run: bool = False
    notes: tuple[str, ...] = ()


def reconcile_disk(
    root: Path, known_ws_ids: Collection[str], *, store_ok: bool = True, dry_run: bool = False
) -> OrphanReport:
    """Move marker-bearing containers the store does not know into ``<root>/.quarantine``."""
    if os.environ.get(KILL_SWITCH, "") not in ("", "0"):
        dry_run = True
    real_root = Path(os.path.realpath(root))
    if not real_root.is_dir():
        return OrphanReport((), (), None, dry_run)
    known = set(known_ws_ids)
    orphans: list[str] = []
    untouched: list[str] = []
    notes: list[str] = []
    marked = 0
    for entry in sorted(os.scandir(real_root), key=lambda e: e.name):
        if entry.name == QUARANTINE:
            continue
        why = _why_untouched(entry)
        if why:
            untouched.append(entry.name)
            notes.append(f"{entry.name}: left alone ({why})")
            continue
        marked += 1
        if entry.name not in known:
            orphans.append(entry.name)
    safe_mode = _safe_mode(store_ok, known, marked)
    if safe_mode:
        # Nothing moves when the store cannot be trusted to say what is ours (D-10 step 0, F-30).
        untouched += orphans
        notes += [f"{ws}: left alone (safe mode)" for ws in orphans]
        return OrphanReport((), tuple(untouched), safe_mode, dry_run, tuple(notes))
    moved: list[str] = []
    for ws_id in orphans:
        if dry_run:
            moved.append(ws_id)
            notes.append(f"{ws_id}: would be moved to {QUARANTINE}/ (dry run)")
            continue
        try:
            target = _quarantine(real_root, ws_id)
        except OSError as exc:
            untouched.append(ws_id)
            notes.append(f"{ws_id}: could not be quarantined: {exc.strerror or exc}")
            continue
        moved.append(ws_id)
        notes.append(f"{ws_id}: no record; moved to {target} (nothing deleted)")
    return OrphanReport(tuple(moved), tuple(untouched), None, dry_run, tuple(notes))


def _why_untouched(entry: os.DirEntry[str]) -> str:
    """Why an entry is not one of our containers, or '' when it carries a matching marker."""
    if entry.is_symlink():
        return "a symlink"
    if not entry.is_dir(follow_symlinks=False):
        return "not a directory"
    if not ID_RE.fullmatch(entry.name) or not entry.name.startswith("ws-"):
        return "not named like a workspace"
    marker = read_marker(Path(entry.path))
    if marker is None:
        # Never touch a directory without our marker (VK PR #2169, hermes #30151).
        return "no kanban marker"
    if marker.get("ws_id") != entry.name:
        return f"its marker names {str(marker.get('ws_id'))[:40]!r}"
    return ""


def _safe_mode(store_ok: bool, known: set[str], marked: int) -> str | None:
    if not store_ok:
        return "the workspace store could not be read; no directory was moved"
    if not known and marked:
        return (
            f"no workspaces are recorded but {marked} directories carry markers; no directory "
            "was moved (restore the store, or quarantine by hand)"
        )
    return None


def _quarantine(root: Path, ws_id: str) -> Path:
    """Rename ``<root>/<ws-id>`` into ``<root>/.quarantine/<utc-ts>-<ws-id>`` (same filesystem)."""
    qdir = root / QUARANTINE
    try:
        mode = qdir.lstat().st_mode
    except FileNotFoundError:
        qdir.mkdir(mode=0o700)
        mode = qdir.lstat().st_mode
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise OSError(f"{qdir} is not a real directory")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = qdir / f"{stamp}-{ws_id}"
    if os.path.lexists(target):
        # rename() would silently replace an empty directory there.
        raise FileExistsError(f"{target} already exists")
    (root / ws_id).rename(target)
    return target
