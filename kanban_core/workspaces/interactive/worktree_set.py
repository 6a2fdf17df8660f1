"""A workspace's set of worktrees (D-06): validate all, create all under locks, or roll back."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.gitops.branches import (
    DEFAULT_TEMPLATE,
    BranchConflict,
    Conflict,
    choose_branch,
    render_branch,
)
from kanban_core.workspaces.gitops.runner import GitOpError, repo_locks, run_git
from kanban_core.workspaces.interactive.checkouts import (
    RepoCheckout,
    branch_tip,
    creating_reason,
    delete_branch_cas,
    find_entry,
    managed_reason,
    relock,
    unlock_if_ours,
    verify_worktree,
)
from kanban_core.workspaces.interactive.layout import (
    container_path,
    read_marker,
    safe_rmdir_container,
    short_of,
    write_marker,
)
from kanban_core.workspaces.interactive.probe import SourceProbe, probe_source
from kanban_core.workspaces.interactive.removal import (
    RemovalError,
    RepoLoss,
    ensure_present,
    loss_report,
    remove,
    repo_health,
)

__all__ = [
    "CreatePlan",
    "PlanError",
    "RemovalError",
    "RepoCheckout",
    "RepoLoss",
    "RepoSpec",
    "create",
    "ensure_present",
    "loss_report",
    "plan_create",
    "remove",
    "repo_health",
    "rollback",
]

Journal = Callable[[str, Mapping[str, object]], None]


@dataclass(frozen=True, slots=True)
class RepoSpec:
    """A repository the user selected for a workspace."""

    slug: str
    source: Path
    base: str | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class CreatePlan:
    """Everything Phase 0 checked: where each worktree goes, on which branch, from what commit."""

    ws_id: str
    container: Path
    branch: str
    repos: tuple[RepoCheckout, ...]
    warnings: tuple[str, ...]


class PlanError(WorkspaceError):
    """Phase 0 found problems; nothing was changed. The message lists them all."""

    def __init__(self, problems: Sequence[str], conflict: BranchConflict | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)
        self.conflict = conflict


def plan_create(
    ws_id: str,
    specs: Sequence[RepoSpec],
    *,
    root: Path,
    title: str,
    template: str = DEFAULT_TEMPLATE,
    custom_branch: str | None = None,
    task_id: str = "",
    spec_id: str = "",
    task_number: str = "",
) -> CreatePlan:
    """Phase 0: check every repository and pick one branch name; mutates nothing."""
    real_root = Path(os.path.realpath(root))
    container = container_path(real_root, ws_id)
    enabled = [s for s in specs if s.enabled]
    if not enabled:
        raise PlanError(["a workspace needs at least one repository"])
    problems: list[str] = []
    warnings: list[str] = []
    if os.path.lexists(container):
        problems.append(f"{container} already exists")
    probes: list[SourceProbe] = []
    owners: dict[Path, str] = {}
    for spec in enabled:
        probe, found, warned = probe_source(spec.slug, spec.source, spec.base, real_root)
        warnings += warned
        problems += [f"{spec.slug}: {p}" for p in found]
        if probe is None:
            continue
        if spec.slug in {p.slug for p in probes}:
            problems.append(f"{spec.slug}: the repo slug is used twice")
        elif probe.common in owners:
            problems.append(f"{spec.slug}: the same repository as {owners[probe.common]}")
        else:
            owners[probe.common] = spec.slug
            probes.append(probe)
    conflict: BranchConflict | None = None
    branch = ""
    try:
        repos = [(p.slug, p.common) for p in probes]
        if custom_branch is not None:
            branch = choose_branch(custom_branch, repos, custom=True)
        else:
            name = render_branch(
                template,
                title=title,
                ws_short=short_of(ws_id),
                task_id=task_id,
                spec_id=spec_id,
                task_number=task_number,
            )
            branch = choose_branch(name, repos, custom=False)
    except BranchConflict as exc:
        conflict = exc
        problems.append(str(exc))
    except GitOpError as exc:  # BranchError, or git failing on a repo we just probed
        problems.append(str(exc))
    if problems:
        raise PlanError(problems, conflict)
    checkouts = tuple(
        RepoCheckout(
            slug=p.slug,
            source=p.top,
            common_dir=p.common,
            worktree=container / p.slug,
            branch=branch,
            base_ref=p.base_ref,
            base_oid=p.base_oid,
            branch_created=True,
        )
        for p in probes
    )
    return CreatePlan(ws_id, container, branch, checkouts, tuple(warnings))


@dataclass(slots=True)
class _Made:
    """What one creation (or one journal) says may exist, so undo touches nothing else."""

    ws_id: str
    container: Path
    container_ours: bool = False
    current: str = ""  # the slug of the repo being created, to name it in an error
    repos: list[tuple[RepoCheckout, bool]] = field(default_factory=list)  # (repo, tree added)


def create(
    plan: CreatePlan, *, root: Path, locks_dir: Path, journal: Journal
) -> tuple[RepoCheckout, ...]:
    """Phase 2: container, marker, then each worktree under the repos' locks; all or nothing."""
    real_root = Path(os.path.realpath(root))
    if plan.container != container_path(real_root, plan.ws_id):
        raise WorkspaceError(f"{plan.container} is not the container of {plan.ws_id}")
    made = _Made(plan.ws_id, plan.container)
    with repo_locks([r.common_dir for r in plan.repos], locks_dir):
        try:
            journal("container_started", _container_payload(plan.ws_id, plan.container))
            real_root.mkdir(parents=True, exist_ok=True, mode=0o700)
            plan.container.mkdir(mode=0o700)  # FileExistsError: not ours, never undone
            made.container_ours = True
            write_marker(plan.container, plan.ws_id, [r.slug for r in plan.repos])
            journal("container_created", _container_payload(plan.ws_id, plan.container))
            for repo in plan.repos:
                _create_one(plan.ws_id, repo, made, journal)
        except BaseException as exc:
            left = [line for line in _undo(made, force=True) if line.startswith("could not")]
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and friends: undone, then propagated
            undo = f"; could not undo: {', '.join(left)}" if left else "; rolled back"
            message = f"{made.current}: " if made.current else ""
            message += f"{_one_line(exc)}{undo}"
            if isinstance(exc, BranchConflict):
                raise BranchConflict(message, exc.conflicts, exc.suggestions) from exc
            raise WorkspaceError(message) from exc
    return plan.repos


def _create_one(ws_id: str, repo: RepoCheckout, made: _Made, journal: Journal) -> None:
    made.current = repo.slug
    journal("repo_started", _repo_payload(ws_id, repo))
    path, common = repo.worktree, repo.common_dir
    # Under the lock only a non-kanban process could race us, so a branch that exists now is
    # someone else's; one that exists after our `worktree add -b` failed is git's doing (EXP 8).
    if branch_tip(common, repo.branch):
        conflict = Conflict(repo.slug, "local", f"refs/heads/{repo.branch} exists")
        raise BranchConflict(
            f"branch {repo.branch} appeared after planning (another workspace?); choose another",
            [conflict],
            [],
        )
    made.repos.append((repo, False))
    reason = creating_reason(ws_id)
    run_git(
        common, "worktree", "add", "--lock", "--reason", reason, "-b", repo.branch, str(path),
        repo.base_oid,
    )  # fmt: skip
    made.repos[-1] = (repo, True)
    verify_worktree(path, common, repo.branch, repo.base_oid)
    relock(common, path, managed_reason(ws_id))
    journal("repo_created", _repo_payload(ws_id, repo))


def rollback(
    journal_entries: Sequence[tuple[str, Mapping[str, object]]], *, root: Path, locks_dir: Path
) -> list[str]:
    """Undo a creation a crash interrupted (A-17), from its journal; best effort, reported."""
    if not journal_entries:
        return []
    ws_ids = {str(payload.get("ws_id")) for _, payload in journal_entries}
    if len(ws_ids) != 1:
        raise WorkspaceError(f"a creation journal names one workspace, this one {sorted(ws_ids)}")
    ws_id = ws_ids.pop()
    container = container_path(Path(os.path.realpath(root)), ws_id)
    made = _Made(ws_id, container, container_ours=True)
    seen: dict[str, RepoCheckout] = {}
    for kind, payload in journal_entries:
        if kind in ("repo_started", "repo_created"):
            repo = _repo_from_payload(payload, container)
            seen[repo.slug] = repo
    made.repos = [(repo, True) for repo in seen.values()]
    commons = [r.common_dir for r in seen.values() if r.common_dir.is_dir()]
    with repo_locks(commons, locks_dir):
        return _undo(made, force=False)


def _undo(made: _Made, *, force: bool) -> list[str]:
    """Reverse order, each step best effort; lines say what was done or could not be."""
    lines: list[str] = []
    for repo, added in reversed(made.repos):
        lines += _undo_repo(made.ws_id, repo, added, force=force)
    if made.container_ours and os.path.lexists(made.container):
        try:
            lines.append(_remove_container(made.container, made.ws_id))
        except WorkspaceError as exc:
            lines.append(f"could not remove {made.container}: {exc}")
    return lines


def _undo_repo(ws_id: str, repo: RepoCheckout, added: bool, *, force: bool) -> list[str]:
    common, path = repo.common_dir, repo.worktree
    if not common.is_dir():
        return [f"could not undo {repo.slug}: its repository {common} is gone"]
    lines: list[str] = []
    entry = find_entry(common, path) if added else None
    if entry is not None:
        mine = entry.locked in (creating_reason(ws_id), managed_reason(ws_id))
        try:
            if not mine:
                raise WorkspaceError(f"{path} is not locked by {ws_id}; left alone")
            unlock_if_ours(common, entry)
            # --force only for a tree still being created (D-06); a finished one must be clean.
            forced = ("--force",) if force or entry.locked == creating_reason(ws_id) else ()
            run_git(common, "worktree", "remove", *forced, str(path))
            lines.append(f"removed worktree {path}")
        except WorkspaceError as exc:
            return [*lines, f"could not remove worktree {path}: {_one_line(exc)}"]
    lines.append(delete_branch_cas(common, repo.branch, repo.base_oid, besides=path))
    return lines


def _remove_container(container: Path, ws_id: str) -> str:
    root = container.parent
    if read_marker(container) is not None:
        safe_rmdir_container(container, root, ws_id)
        return f"removed {container}"
    # A crash between mkdir and the marker write leaves it marker-less; only rmdir, never recurse.
    if container.is_symlink() or Path(os.path.realpath(container)) != container:
        raise WorkspaceError(f"{container} is not a real directory; left alone")
    try:
        container.rmdir()
    except OSError as exc:
        raise WorkspaceError(
            f"{container} has no marker and is not empty ({exc.strerror})"
        ) from None
    return f"removed {container}"


def _container_payload(ws_id: str, container: Path) -> dict[str, object]:
    return {"ws_id": ws_id, "container": str(container)}


def _repo_payload(ws_id: str, repo: RepoCheckout) -> dict[str, object]:
    return {
        "ws_id": ws_id,
        "slug": repo.slug,
        "source": str(repo.source),
        "common_dir": str(repo.common_dir),
        "worktree": str(repo.worktree),
        "branch": repo.branch,
        "base_ref": repo.base_ref,
        "base_oid": repo.base_oid,
    }


def _repo_from_payload(payload: Mapping[str, object], container: Path) -> RepoCheckout:
    def text(key: str) -> str:
        value = payload.get(key)
        if not isinstance(value, str) or not value:
            raise WorkspaceError(f"the creation journal lacks {key}")
        return value

    repo = RepoCheckout(
        slug=text("slug"),
        source=Path(text("source")),
        common_dir=Path(text("common_dir")),
        worktree=Path(text("worktree")),
        branch=text("branch"),
        base_ref=text("base_ref"),
        base_oid=text("base_oid"),
        branch_created=True,
    )
    # A journal is data: its paths must still be where this workspace's trees belong.
    if repo.worktree != container / repo.slug or not repo.common_dir.is_absolute():
        raise WorkspaceError(f"the creation journal names {repo.worktree}, outside {container}")
    return repo


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
