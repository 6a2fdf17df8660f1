"""The managed root on disk (D-02, D-03): ids, containers, repo slugs, markers, safe rmdir."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
import time
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Any

from kanban_core.workspaces.base import WorkspaceError, slugify
from kanban_core.workspaces.gitops.runner import run_git

ID_RE = re.compile(r"^(ws|sess|proc|ap)-[0-9]{10}-[0-9a-f]{6}$")
SLUG_RE = re.compile(r"^[a-z0-9._-]{1,64}$")
MARKER_NAME = ".kanban-workspace.json"
ROOT_LEAF = ".kanban-workspaces"
QUARANTINE = ".quarantine"
_SLUG_MAX = 64


def new_id(prefix: str) -> str:
    """A fresh id in the seed format ``<prefix>-<unix seconds>-<6 hex>``."""
    ws_id = f"{prefix}-{int(time.time()):010d}-{secrets.token_hex(3)}"
    if not ID_RE.fullmatch(ws_id):
        raise WorkspaceError(f"unknown id prefix {prefix!r}")
    return ws_id


def short_of(ws_id: str) -> str:
    """The 4 hex characters of an id's random part, used in branch names (``4f2a``)."""
    check_id(ws_id)
    return ws_id.rsplit("-", 1)[1][:4]


def check_id(ws_id: str, prefix: str | None = None) -> None:
    """Refuse anything but an id we generate; ids become path components."""
    if not ID_RE.fullmatch(ws_id):
        raise WorkspaceError(f"invalid id {str(ws_id)[:80]!r}")
    if prefix is not None and not ws_id.startswith(f"{prefix}-"):
        raise WorkspaceError(f"{ws_id} is not a {prefix} id")


def managed_root(configured: Path | None, home: Path) -> Path:
    """``(configured or home)/.kanban-workspaces``, resolved; refuse roots that endanger data."""
    base = configured if configured is not None else home
    if not base.is_absolute():
        raise WorkspaceError(f"the workspace root must be an absolute path, got {str(base)!r}")
    real = Path(os.path.realpath(base))
    if configured is not None:
        if real == Path(real.anchor):
            raise WorkspaceError(f"the workspace root {configured} is a filesystem root")
        if real == Path(os.path.realpath(home)):
            raise WorkspaceError(f"the workspace root {configured} is the home directory itself")
    existing = _nearest_existing(real)
    inside = _git_tree_of(existing)
    if inside:
        raise WorkspaceError(
            f"the workspace root {base} is inside the git repository {inside}; choose a "
            "directory outside every repository"
        )
    leaf = real / ROOT_LEAF
    if leaf.is_symlink():
        raise WorkspaceError(f"{leaf} is a symlink; refusing to use it as the workspace root")
    if leaf.exists() and not leaf.is_dir():
        raise WorkspaceError(f"{leaf} exists and is not a directory")
    if not leaf.exists() and not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise WorkspaceError(f"cannot create the workspace root {leaf}: {existing} is not writable")
    return leaf


def check_repo_outside(root: Path, repo_top: Path) -> None:
    """Refuse a repository whose working tree contains the root, or that the root contains."""
    real_root = Path(os.path.realpath(root))
    top = Path(os.path.realpath(repo_top))
    if real_root.is_relative_to(top) or top.is_relative_to(real_root):
        raise WorkspaceError(
            f"the repository {top} overlaps the workspace root {real_root}; cleaning one could "
            "reach into the other"
        )


def container_path(root: Path, ws_id: str) -> Path:
    """``<root>/<ws-id>``, after checking that ws_id is one of our ids."""
    check_id(ws_id, "ws")
    return root / ws_id


def repo_slug(name: str, taken: Collection[str]) -> str:
    """A directory name for a repo inside a container: ``[a-z0-9._-]{1,64}``, unique (``api-2``)."""
    base = slugify(name, limit=_SLUG_MAX, fallback="repo")
    used = {t.lower() for t in taken}
    slug = base
    n = 1
    while slug in used:
        n += 1
        tail = f"-{n}"
        slug = base[: _SLUG_MAX - len(tail)].rstrip("-") + tail
    return slug


def write_marker(container: Path, ws_id: str, repos: Sequence[str]) -> None:
    """Write the ownership marker atomically (a reader never sees half of it)."""
    check_id(ws_id, "ws")
    body = {
        "ws_id": ws_id,
        "app": "kanban",
        "created_at": int(time.time()),
        "pid": os.getpid(),
        "repos": list(repos),
    }
    tmp = container / f"{MARKER_NAME}.tmp"
    # O_NOFOLLOW: a symlink planted at the temp name must not redirect our write.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(body, handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(container / MARKER_NAME)


def read_marker(container: Path) -> dict[str, Any] | None:
    """The container's marker, or None when it is missing, a symlink or unparseable."""
    path = container / MARKER_NAME
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def owned_container(container: Path, root: Path, ws_id: str) -> Path:
    """The container's real path, once D-03 rule 2 proves it is this workspace's; else raise."""
    check_id(ws_id, "ws")
    try:
        mode = container.lstat().st_mode
    except FileNotFoundError:
        raise WorkspaceError(f"{container} does not exist") from None
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise WorkspaceError(f"{container} is not a real directory; left alone")
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(container))
    if real.parent != real_root or real.name != ws_id:
        raise WorkspaceError(f"{container} is not {real_root}/{ws_id}; left alone")
    marker = read_marker(real)
    if marker is None or marker.get("ws_id") != ws_id:
        raise WorkspaceError(f"{container} carries no marker for {ws_id}; left alone")
    return real


class StrayRemovalError(WorkspaceError):
    """A stray entry could not be removed; ``gone`` lists those removed before it."""

    def __init__(self, message: str, gone: Sequence[str]) -> None:
        super().__init__(message)
        self.gone = tuple(gone)


def container_strays(container: Path, root: Path, ws_id: str, slugs: Iterable[str]) -> list[str]:
    """What lies in the container besides its marker and the repositories' worktrees.

    An agent working in a multi-repo workspace runs in the container, so a file it left there
    (a plan.md) is work that deleting the workspace would lose. Symlinks are not listed: they
    are removed as links, never followed.
    """
    if not os.path.lexists(container):
        return []
    real = owned_container(container, root, ws_id)
    skip = {MARKER_NAME, *slugs}
    return sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in real.iterdir()
        if entry.name not in skip and not entry.is_symlink()
    )


def remove_strays(container: Path, root: Path, ws_id: str, names: Iterable[str]) -> list[str]:
    """Remove the stray entries a person approved losing (by name); returns what went.

    Only names listed when the person was asked, only directly inside this workspace's own
    marked container; a directory is removed without following any symlink inside it.
    """
    real = owned_container(container, root, ws_id)
    gone: list[str] = []
    for name in names:
        bare = name.rstrip("/")
        if not bare or bare in (MARKER_NAME, ".", "..") or "/" in bare:
            continue
        path = real / bare
        if not os.path.lexists(path):
            continue
        is_dir = path.is_dir() and not path.is_symlink()
        if is_dir != name.endswith("/"):
            continue  # not what the person was shown (a file became a directory): keep it
        try:
            if is_dir:
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            raise StrayRemovalError(f"could not remove {name}: {exc.strerror}", gone) from None
        gone.append(name)
    return gone


def safe_rmdir_container(container: Path, root: Path, ws_id: str) -> None:
    """Remove an emptied container: marker first, then rmdir; never recurse into anything."""
    real = owned_container(container, root, ws_id)
    marker_path = real / MARKER_NAME
    # A symlink someone planted in the container is removed as a link (unlink never follows
    # it, so its target is untouched); anything real left inside stops the removal.
    for entry in list(real.iterdir()):
        if entry.is_symlink():
            entry.unlink()
    left = sorted(p.name for p in real.iterdir() if p.name != MARKER_NAME)
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        raise WorkspaceError(f"{real} still holds {shown}; not removing it")
    saved = marker_path.read_bytes()
    marker_path.unlink()
    try:
        real.rmdir()
    except OSError as exc:
        # Something appeared meanwhile: put the proof of ownership back and report.
        marker_path.write_bytes(saved)
        raise WorkspaceError(f"could not remove {real}: {exc.strerror}") from None


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(path.anchor)


def _git_tree_of(path: Path) -> str:
    """The working tree or git dir that contains path, or '' when none does."""
    where = path if path.is_dir() else path.parent
    probe = run_git(where, "rev-parse", "--is-inside-git-dir", "--is-inside-work-tree", check=False)
    if probe.returncode != 0:
        return ""  # outside every repository
    in_git_dir, in_tree = [*probe.text.splitlines(), "", ""][:2]
    if in_git_dir == "true" or in_tree != "true":
        return str(where)
    return run_git(where, "rev-parse", "--show-toplevel").text.strip()
