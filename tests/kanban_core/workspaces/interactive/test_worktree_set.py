"""Creating a workspace's worktrees all-or-nothing, and the Phase 0 refusals (D-06, A-01..A-18)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from kanban_core.workspaces.base import WorkspaceError
from kanban_core.workspaces.gitops.branches import BranchConflict
from kanban_core.workspaces.interactive.layout import MARKER_NAME, read_marker
from kanban_core.workspaces.interactive.worktree_set import (
    CreatePlan,
    PlanError,
    RemovalError,
    RepoCheckout,
    RepoSpec,
    create,
    ensure_present,
    loss_report,
    plan_create,
    remove,
    repo_health,
    rollback,
)
from tests.gitrepos import branches, commit, git, make_repo, worktree_list
from tests.kanban_core.workspaces.interactive.conftest import WS, WS2, Entries, Journal

BRANCH = "kanban/4f2a-add-login"


def plan(root: Path, *specs: RepoSpec, ws: str = WS, **kw: object) -> CreatePlan:
    return plan_create(ws, specs, root=root, title="Add login", **kw)  # type: ignore[arg-type]


def test_create_two_repos_happy_path(
    root: Path, locks: Path, api: Path, origin: Path, web: Path, journal: Journal
) -> None:
    p = plan(root, RepoSpec("api", api), RepoSpec("web", web))
    assert p.branch == BRANCH
    assert p.warnings == ()
    assert p.container == root / WS
    assert not p.container.exists()  # planning mutates nothing
    by_slug = {r.slug: r for r in p.repos}
    assert by_slug["api"].base_ref == "refs/remotes/origin/main"  # origin/HEAD's branch
    assert by_slug["web"].base_ref == "refs/heads/main"
    assert by_slug["api"].common_dir == (api / ".git").resolve()

    made = create(p, root=root, locks_dir=locks, journal=journal)

    assert made == p.repos
    for repo in made:
        assert (repo.worktree / ".git").is_file()
        assert git(repo.worktree, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
        assert git(repo.worktree, "rev-parse", "HEAD") == repo.base_oid
        assert f"locked kanban:{WS} managed" in worktree_list(repo.source)
    marker = read_marker(p.container)
    assert marker is not None
    assert (marker["ws_id"], marker["repos"]) == (WS, ["api", "web"])
    assert journal.kinds == [
        "container_started",
        "container_created",
        "repo_started",
        "repo_created",
        "repo_started",
        "repo_created",
    ]
    json.dumps(journal.entries)  # the store can persist it as JSON
    assert git(api, "status", "--porcelain") == ""  # the user's checkout is untouched


def test_a01_second_repo_fails_everything_is_rolled_back(
    root: Path, locks: Path, api: Path, web: Path
) -> None:
    p = plan(root, RepoSpec("api", api), RepoSpec("web", web))
    before = {repo: (worktree_list(repo), branches(repo)) for repo in (api, web)}

    def plant(kind: str, payload: Mapping[str, object]) -> None:
        if kind == "repo_created" and payload["slug"] == "api":
            # The target of web now exists and is not empty (a leftover of some crash).
            (p.container / "web" / "junk").mkdir(parents=True)
            (p.container / "web" / "junk" / "file").write_text("x", encoding="utf-8")

    with pytest.raises(WorkspaceError) as info:
        create(p, root=root, locks_dir=locks, journal=Journal(plant))
    message = str(info.value)
    assert message.startswith("web: ")
    assert "already exists" in message  # git's stderr
    assert "\n" not in message
    # web's target belongs to no one we know: its content stays, so the container must too.
    assert message.endswith(
        f"could not undo: could not remove {p.container}: "
        f"{p.container} still holds web; not removing it"
    )
    # git created web's branch despite the failed add (EXP 8); the rollback deleted it too.
    for repo in (api, web):
        assert (worktree_list(repo), branches(repo)) == before[repo]
    assert (p.container / "web" / "junk" / "file").exists()
    assert not (p.container / "api").exists()


def test_a01_container_removed_when_nothing_foreign_is_left(
    root: Path, locks: Path, api: Path, web: Path
) -> None:
    p = plan(root, RepoSpec("api", api), RepoSpec("web", web), custom_branch="feat/x")
    git(web, "branch", "feat/x")  # created after planning: web's step must fail
    with pytest.raises(BranchConflict, match=r"^web: branch feat/x appeared after planning"):
        create(p, root=root, locks_dir=locks, journal=Journal())
    assert not p.container.exists()
    assert root.is_dir()
    assert "refs/heads/feat/x" not in branches(api)  # ours: deleted
    assert "refs/heads/feat/x" in branches(web)  # someone else's: never deleted
    assert worktree_list(api).count("worktree ") == 1


def test_a02_auto_branch_gets_a_suffix_in_both_repos(
    root: Path, locks: Path, api: Path, web: Path
) -> None:
    git(web, "branch", BRANCH)
    p = plan(root, RepoSpec("api", api), RepoSpec("web", web))
    assert p.branch == f"{BRANCH}-2"
    create(p, root=root, locks_dir=locks, journal=Journal())
    assert f"refs/heads/{BRANCH}-2" in branches(api)
    assert f"refs/heads/{BRANCH}-2" in branches(web)
    assert f"refs/heads/{BRANCH}" not in branches(api)


def test_a02_custom_branch_conflict_is_a_plan_error_with_suggestions(
    root: Path, api: Path, web: Path
) -> None:
    git(web, "branch", BRANCH)
    with pytest.raises(PlanError) as info:
        plan(root, RepoSpec("api", api), RepoSpec("web", web), custom_branch=BRANCH)
    conflict = info.value.conflict
    assert conflict is not None
    assert [c.repo for c in conflict.conflicts] == ["web"]
    assert len(conflict.suggestions) == 2
    assert "web (local" in str(info.value)


def test_a05_concurrent_creation_of_one_custom_branch(
    root: Path, locks: Path, api: Path, web: Path
) -> None:
    plans = [
        plan(root, RepoSpec("api", api), RepoSpec("web", web), ws=ws, custom_branch="race")
        for ws in (WS, WS2)
    ]  # both planned while the name was free: the race is decided under the repo locks
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def run(p: CreatePlan) -> None:
        barrier.wait()
        try:
            results[p.ws_id] = create(p, root=root, locks_dir=locks, journal=Journal())
        except WorkspaceError as exc:
            results[p.ws_id] = exc

    threads = [threading.Thread(target=run, args=(p,)) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in results.values() if isinstance(r, WorkspaceError)]
    assert len(errors) == 1
    assert "race" in str(errors[0])
    winner = next(ws for ws, r in results.items() if not isinstance(r, WorkspaceError))
    loser = WS2 if winner == WS else WS
    assert (root / winner / "api").is_dir()
    assert not (root / loser).exists()
    for repo in (api, web):
        assert branches(repo) == ["refs/heads/main", "refs/heads/race"]
        assert worktree_list(repo).count("worktree ") == 2  # the checkout and the winner's
        assert str(root / winner / repo.name) in worktree_list(repo)


@pytest.mark.parametrize(
    "name", ["-foo", "--upload-pack=x", "@", "HEAD", "a..b", "foo.lock", "a b"]
)
def test_a04_hostile_custom_branch_never_reaches_git(
    root: Path, tmp_path: Path, api: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "git.log"
    real = shutil.which("git")
    (shim / "git").write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n', "utf-8")
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    with pytest.raises(PlanError, match="invalid branch name"):
        plan(root, RepoSpec("api", api), custom_branch=name)
    calls = log.read_text(encoding="utf-8").splitlines()
    assert calls  # the shim is in use: Phase 0 did read the repository
    for call in calls:
        assert " rev-parse " in call or " status " in call or " symbolic-ref " in call, call
        assert name not in call.split(" ")
    assert branches(api) == ["refs/heads/main"]


def test_a07_empty_repo_is_refused_and_left_unborn(root: Path, repos: Path) -> None:
    empty = make_repo(repos, "empty", initial=False)
    with pytest.raises(
        PlanError, match=r"empty: .* has no commits; create an initial commit first"
    ):
        plan(root, RepoSpec("empty", empty))
    assert git(empty, "rev-list", "--all") == ""
    assert git(empty, "status", "--porcelain") == ""


def test_a08_not_a_repo_is_refused_and_never_initialised(root: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(PlanError, match=r"^plain: .*plain is not a git repository$"):
        plan(root, RepoSpec("plain", plain))
    assert list(plain.iterdir()) == []


def test_all_problems_are_collected_in_one_message(
    root: Path, tmp_path: Path, api: Path, repos: Path
) -> None:
    empty = make_repo(repos, "empty", initial=False)
    (api / ".git" / "index.lock").write_text("", encoding="utf-8")
    with pytest.raises(PlanError) as info:
        plan(
            root,
            RepoSpec("api", api, base="no-such-branch"),
            RepoSpec("gone", tmp_path / "missing"),
            RepoSpec("empty", empty),
            RepoSpec("rel", Path("relative/repo")),
        )
    problems = info.value.problems
    assert [p.split(":")[0] for p in problems] == ["api", "api", "gone", "empty", "rel"]
    assert "another git process is running in" in problems[0]
    assert "'no-such-branch' does not resolve to a commit; try main" in problems[1]
    assert str(info.value) == "; ".join(problems)


def test_a10_dirty_source_is_a_warning_and_stays_byte_identical(
    root: Path, locks: Path, api: Path
) -> None:
    commit(api, "app.py", "v1\n")
    (api / "app.py").write_text("v2 (uncommitted)\n", encoding="utf-8")
    (api / "new.txt").write_text("untracked\n", encoding="utf-8")
    (api / "README.md").write_text("staged\n", encoding="utf-8")
    git(api, "add", "README.md")
    git(api, "stash", "list")
    snapshot = (
        git(api, "status", "--porcelain=v2"),
        git(api, "stash", "list"),
        (api / ".git" / "index").read_bytes(),
        (api / "app.py").read_bytes(),
    )
    p = plan(root, RepoSpec("api", api))
    assert p.warnings == (
        "your checkout of api has 3 uncommitted changes; they are NOT in the workspace",
    )
    (made,) = create(p, root=root, locks_dir=locks, journal=Journal())
    assert (made.worktree / "app.py").read_text(encoding="utf-8") == "v1\n"
    assert not (made.worktree / "new.txt").exists()
    after = (
        git(api, "status", "--porcelain=v2"),
        git(api, "stash", "list"),
        (api / ".git" / "index").read_bytes(),
        (api / "app.py").read_bytes(),
    )
    assert after == snapshot


def test_a18_index_lock_is_refused_and_left_alone(root: Path, api: Path) -> None:
    lock = api / ".git" / "index.lock"
    lock.write_bytes(b"held by an editor")
    with pytest.raises(PlanError, match=r"another git process is running in .*api \(index\.lock\)"):
        plan(root, RepoSpec("api", api))
    assert lock.read_bytes() == b"held by an editor"
    assert not (root / WS).exists()


def test_base_resolution_never_falls_back_to_head(root: Path, repos: Path, api: Path) -> None:
    trunk = make_repo(repos, "trunk", branch="trunk")
    with pytest.raises(PlanError, match=r"no origin/HEAD, main or master .*; try trunk"):
        plan(root, RepoSpec("trunk", trunk))
    p = plan(root, RepoSpec("trunk", trunk, base="trunk"))
    assert p.repos[0].base_ref == "refs/heads/trunk"
    other = commit(api, "b.txt")
    git(api, "switch", "-q", "-c", "topic")
    commit(api, "c.txt")  # HEAD is now ahead of main: the default base is still main
    p = plan(root, RepoSpec("api", api))
    assert p.repos[0].base_oid == git(api, "rev-parse", "main") == other
    with pytest.raises(PlanError, match="invalid base"):
        plan(root, RepoSpec("api", api, base="--upload-pack=x"))


def test_linked_worktree_source_resolves_to_its_repository(
    root: Path, locks: Path, api: Path, tmp_path: Path
) -> None:
    linked = tmp_path / "src" / "api-linked"
    git(api, "worktree", "add", "-q", "-b", "mine", str(linked))
    with pytest.raises(PlanError, match="api2: the same repository as api"):
        plan(root, RepoSpec("api", api), RepoSpec("api2", linked))
    (made,) = create(
        plan(root, RepoSpec("api", linked)), root=root, locks_dir=locks, journal=Journal()
    )
    assert made.common_dir == (api / ".git").resolve()
    assert git(api, "rev-parse", "--verify", f"refs/heads/{BRANCH}")


def test_phase0_refusals_for_odd_sources(root: Path, tmp_path: Path, api: Path) -> None:
    bare = tmp_path / "bare.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    cases = {
        RepoSpec("bare", bare): "bare repository",
        RepoSpec("sub", api / "sub"): "does not exist",
        RepoSpec("gitdir", api / ".git"): "inside a git directory",
        RepoSpec("Bad Slug", api): "invalid repo slug",
    }
    (api / "docs").mkdir()
    cases[RepoSpec("docs", api / "docs")] = "not the top of its checkout"
    for spec, why in cases.items():
        with pytest.raises(PlanError, match=why):
            plan(root, spec)
    with pytest.raises(PlanError, match="at least one repository"):
        plan(root, RepoSpec("api", api, enabled=False))


def test_repo_overlapping_the_root_is_refused(tmp_path: Path, home: Path, api: Path) -> None:
    inside = tmp_path / "data" / ".kanban-workspaces" / "nested"
    inside.parent.mkdir(parents=True)
    nested = make_repo(inside.parent, "nested")
    with pytest.raises(PlanError, match="overlaps the workspace root"):
        plan(tmp_path / "data" / ".kanban-workspaces", RepoSpec("nested", nested))
    with pytest.raises(PlanError, match="overlaps the workspace root"):
        plan(api / "wt-root", RepoSpec("api", api))


def test_existing_container_is_a_problem(root: Path, api: Path) -> None:
    (root / WS).mkdir(parents=True)
    with pytest.raises(PlanError, match="already exists"):
        plan(root, RepoSpec("api", api))


def test_create_refuses_a_plan_for_another_root(
    root: Path, tmp_path: Path, locks: Path, api: Path
) -> None:
    p = plan(root, RepoSpec("api", api))
    with pytest.raises(WorkspaceError, match="is not the container"):
        create(p, root=tmp_path / "other", locks_dir=locks, journal=Journal())
    assert not p.container.exists()


CRASH = """
import json, os, sys
from pathlib import Path
from kanban_core.workspaces.interactive.worktree_set import RepoSpec, create, plan_create

root, locks, out, crash_at, *sources = sys.argv[1:]
specs = [RepoSpec(Path(s).name, Path(s)) for s in sources]
plan = plan_create({ws!r}, specs, root=Path(root), title="Add login")
entries = []

def journal(kind, payload):
    entries.append((kind, dict(payload)))
    Path(out).write_text(json.dumps(entries))
    if kind == crash_at and len([k for k, _ in entries if k == kind]) == 1:
        os._exit(9)  # a crash: no rollback, no finally

create(plan, root=Path(root), locks_dir=Path(locks), journal=journal)
"""


def crash_create(root: Path, locks: Path, out: Path, at: str, *sources: Path) -> Entries:
    args = [sys.executable, "-c", CRASH.format(ws=WS), str(root), str(locks), str(out), at]
    proc = subprocess.run([*args, *map(str, sources)], capture_output=True, text=True, check=False)
    assert proc.returncode == 9, proc.stderr
    return [(k, p) for k, p in json.loads(out.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("at", ["repo_created", "repo_started", "container_created"])
def test_a17_journal_replay_after_a_crash_mid_creation(
    root: Path, locks: Path, tmp_path: Path, api: Path, web: Path, at: str
) -> None:
    before = {repo: (worktree_list(repo), branches(repo)) for repo in (api, web)}
    entries = crash_create(root, locks, tmp_path / "journal.json", at, api, web)
    if at == "repo_created":
        assert f"locked kanban:{WS} managed" in worktree_list(api)  # repo 1 was fully made
    assert (root / WS / MARKER_NAME).exists()

    done = rollback(entries, root=root, locks_dir=locks)

    for repo in (api, web):
        assert (worktree_list(repo), branches(repo)) == before[repo]
    assert not (root / WS).exists()
    assert f"removed {root / WS}" in done
    if at == "repo_created":
        assert f"removed worktree {root / WS / 'api'}" in done
        assert any(line.startswith(f"deleted branch {BRANCH}") for line in done)
    again = rollback(entries, root=root, locks_dir=locks)  # a second replay is harmless
    assert all(line.endswith("was already gone") for line in again)
    for repo in (api, web):
        assert (worktree_list(repo), branches(repo)) == before[repo]


def test_rollback_keeps_a_branch_that_moved(
    root: Path, locks: Path, tmp_path: Path, api: Path
) -> None:
    entries = crash_create(root, locks, tmp_path / "journal.json", "repo_created", api)
    commit(root / WS / "api", "work.txt")  # someone committed on the branch meanwhile
    done = rollback(entries, root=root, locks_dir=locks)
    assert any(f"kept branch {BRANCH}: it moved" in line for line in done)
    assert f"refs/heads/{BRANCH}" in branches(api)


def test_rollback_refuses_a_journal_pointing_elsewhere(root: Path, locks: Path, api: Path) -> None:
    payload: dict[str, object] = {
        "ws_id": WS,
        "slug": "api",
        "source": str(api),
        "common_dir": str(api / ".git"),
        "worktree": str(api),
        "branch": "main",
        "base_ref": "refs/heads/main",
        "base_oid": git(api, "rev-parse", "HEAD"),
    }
    with pytest.raises(WorkspaceError, match="outside"):
        rollback([("repo_created", payload)], root=root, locks_dir=locks)
    assert "refs/heads/main" in branches(api)
    assert rollback([], root=root, locks_dir=locks) == []


# --- health, recreation, loss reports and removal (D-09, D-10, F-21) -------------------------


@pytest.fixture
def made(root: Path, locks: Path, api: Path) -> RepoCheckout:
    (checkout,) = create(
        plan(root, RepoSpec("api", api)), root=root, locks_dir=locks, journal=Journal()
    )
    return checkout


@pytest.fixture
def user_worktree(tmp_path: Path, api: Path) -> Path:
    """An unrelated worktree the user made themselves, outside the managed root."""
    path = tmp_path / "mine"
    git(api, "worktree", "add", "-q", "-b", "user-branch", str(path))
    return path


def test_a15_worktree_deleted_by_hand_is_recreated_from_its_branch(
    root: Path, locks: Path, api: Path, made: RepoCheckout, user_worktree: Path
) -> None:
    tip = commit(made.worktree, "work.txt")
    others = [e for e in worktree_list(api).split("\n\n") if str(made.worktree) not in e]
    shutil.rmtree(made.worktree)
    assert repo_health(made) == "missing_dir"

    assert ensure_present(made, root=root, locks_dir=locks) is True

    assert repo_health(made) == "ok"
    assert git(made.worktree, "rev-parse", "HEAD") == tip  # from the branch, not the base
    assert f"locked kanban:{WS} managed" in worktree_list(api)
    assert [e for e in worktree_list(api).split("\n\n") if str(made.worktree) not in e] == others
    assert ensure_present(made, root=root, locks_dir=locks) is False


def test_ensure_present_refuses_when_the_branch_is_gone_or_the_dir_is_foreign(
    root: Path, locks: Path, api: Path, made: RepoCheckout
) -> None:
    shutil.rmtree(made.worktree)
    made.worktree.mkdir()  # a directory git does not know
    assert repo_health(made) == "unregistered_dir"
    with pytest.raises(WorkspaceError, match="unregistered_dir"):
        ensure_present(made, root=root, locks_dir=locks)
    made.worktree.rmdir()
    git(api, "worktree", "remove", "-f", "-f", str(made.worktree))
    git(api, "update-ref", "-d", f"refs/heads/{BRANCH}")
    assert repo_health(made) == "branch_missing"
    with pytest.raises(WorkspaceError, match=f"branch {BRANCH} is gone"):
        ensure_present(made, root=root, locks_dir=locks)
    assert not made.worktree.exists()


def test_a16_switched_branch_and_other_health_states(api: Path, made: RepoCheckout) -> None:
    assert repo_health(made) == "ok"
    git(made.worktree, "switch", "-q", "-c", "other")
    assert repo_health(made) == "branch_mismatch"
    git(made.worktree, "switch", "-q", "--detach")
    assert repo_health(made) == "branch_mismatch"
    gone = dataclasses.replace(made, common_dir=api.parent / "moved" / ".git")
    assert repo_health(gone) == "repo_missing"


def test_a36_loss_report_counts_unpushed_commits(
    root: Path, locks: Path, api: Path, origin: Path
) -> None:
    (checkout,) = create(
        plan(root, RepoSpec("api", api)), root=root, locks_dir=locks, journal=Journal()
    )
    clean = loss_report(checkout)
    assert (clean.uncommitted, clean.untracked, clean.unpushed, clean.ahead_of_base) == (0, 0, 0, 0)
    assert not clean.at_risk
    commit(checkout.worktree, "a.txt")
    commit(checkout.worktree, "b.txt")
    (checkout.worktree / "a.txt").write_text("changed\n", encoding="utf-8")
    (checkout.worktree / "new").mkdir()
    (checkout.worktree / "new" / "n.txt").write_text("n\n", encoding="utf-8")
    loss = loss_report(checkout)
    assert (loss.uncommitted, loss.untracked, loss.unpushed, loss.ahead_of_base) == (1, 1, 2, 2)
    assert loss.at_risk
    assert loss.branch_created
    git(checkout.worktree, "checkout", "-q", "--", "a.txt")
    (checkout.worktree / "new" / "n.txt").unlink()
    git(checkout.worktree, "push", "-q", "origin", BRANCH)
    pushed = loss_report(checkout)
    assert (pushed.unpushed, pushed.ahead_of_base, pushed.at_risk) == (0, 2, False)

    commit(checkout.worktree, "c.txt")  # approved loss: the delete is a CAS on this tip
    done = remove(
        WS, root / WS, [checkout], root=root, locks_dir=locks, discard=False, delete_branch=True
    )
    assert f"refs/heads/{BRANCH}" not in branches(api)
    assert any(line.startswith(f"api: deleted branch {BRANCH}") for line in done)


def test_a37_no_remotes_cannot_verify_and_the_branch_is_kept(
    root: Path, locks: Path, api: Path, made: RepoCheckout
) -> None:
    commit(made.worktree, "a.txt")
    loss = loss_report(made)
    assert (loss.unpushed, loss.ahead_of_base, loss.at_risk) == (None, 1, True)
    done = remove(
        WS, root / WS, [made], root=root, locks_dir=locks, discard=False, delete_branch=False
    )
    assert done == [
        f"removed worktree {made.worktree}",
        f"kept branch {BRANCH} in api",
        f"removed {root / WS}",
    ]
    assert f"refs/heads/{BRANCH}" in branches(api)
    gone = loss_report(made)
    assert (gone.dir_missing, gone.ahead_of_base) == (True, 1)


def test_delete_branch_refused_for_a_branch_we_did_not_create(
    root: Path, locks: Path, api: Path, made: RepoCheckout
) -> None:
    reused = dataclasses.replace(made, branch_created=False)
    with pytest.raises(WorkspaceError, match="did not create: api"):
        remove(
            WS, root / WS, [reused], root=root, locks_dir=locks, discard=False, delete_branch=True
        )
    assert made.worktree.is_dir()
    assert f"refs/heads/{BRANCH}" in branches(api)


def test_a12_p7_delete_cleans_only_managed_paths(
    tmp_path: Path, root: Path, locks: Path, api: Path, user_worktree: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep\n", encoding="utf-8")
    decoy = root / "ws-0000000000-abcdef"
    decoy.mkdir(parents=True)
    (decoy / "file").write_text("decoy\n", encoding="utf-8")
    (root / "evil").symlink_to(victim)
    before = worktree_list(api)
    (checkout,) = create(
        plan(root, RepoSpec("api", api)), root=root, locks_dir=locks, journal=Journal()
    )
    (checkout.worktree / "link").symlink_to(victim)  # planted inside the worktree

    with pytest.raises(RemovalError, match="git refused to remove") as info:
        remove(
            WS,
            root / WS,
            [checkout],
            root=root,
            locks_dir=locks,
            discard=False,
            delete_branch=False,
        )
    assert info.value.done == ()
    assert (checkout.worktree / "link").is_symlink()  # git refused: nothing else deletes it
    assert f"locked kanban:{WS} managed" in worktree_list(api)  # protection put back

    done = remove(
        WS, root / WS, [checkout], root=root, locks_dir=locks, discard=True, delete_branch=False
    )

    assert not (root / WS).exists()
    assert (victim / "precious.txt").read_text(encoding="utf-8") == "keep\n"
    assert (decoy / "file").read_text(encoding="utf-8") == "decoy\n"
    assert (root / "evil").is_symlink()
    assert (user_worktree / "README.md").exists()
    assert worktree_list(api) == before
    assert f"refs/heads/{BRANCH}" in branches(api)
    assert all(str(root / WS) in line for line in done if line.startswith("removed"))


def test_remove_refuses_a_symlinked_container_and_foreign_leftovers(
    tmp_path: Path, root: Path, locks: Path, api: Path, made: RepoCheckout
) -> None:
    (root / WS / "notes.md").write_text("the agent's notes\n", encoding="utf-8")
    with pytest.raises(RemovalError, match=r"still holds notes\.md") as info:
        remove(
            WS, root / WS, [made], root=root, locks_dir=locks, discard=False, delete_branch=False
        )
    assert info.value.done[0] == f"removed worktree {made.worktree}"
    assert (root / WS / "notes.md").exists()
    assert (root / WS / MARKER_NAME).exists()

    moved = tmp_path / "moved"
    (root / WS).rename(moved)
    (root / WS).symlink_to(moved)
    with pytest.raises(WorkspaceError, match="left alone"):
        remove(WS, root / WS, [made], root=root, locks_dir=locks, discard=True, delete_branch=False)
    assert (moved / "notes.md").exists()


def test_remove_clears_the_registration_of_a_missing_worktree(
    root: Path, locks: Path, api: Path, made: RepoCheckout, user_worktree: Path
) -> None:
    shutil.rmtree(made.worktree)
    done = remove(
        WS, root / WS, [made], root=root, locks_dir=locks, discard=False, delete_branch=True
    )
    assert done[0] == f"cleared the registration of the missing worktree {made.worktree}"
    assert str(made.worktree) not in worktree_list(api)
    assert str(user_worktree) in worktree_list(api)  # no repo-wide prune
    assert f"refs/heads/{BRANCH}" not in branches(api)


def test_remove_never_unlocks_someone_elses_lock(
    root: Path, locks: Path, api: Path, made: RepoCheckout
) -> None:
    git(api, "worktree", "unlock", str(made.worktree))
    git(api, "worktree", "lock", "--reason", "backup tool", str(made.worktree))
    with pytest.raises(RemovalError, match="locked by someone else"):
        remove(WS, root / WS, [made], root=root, locks_dir=locks, discard=True, delete_branch=True)
    assert made.worktree.is_dir()
    assert "locked backup tool" in worktree_list(api)
