"""workspaces.worktrees on real temporary git repositories (and a bare remote for pushes)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import git
import pytest

from kanban_core import Task, TaskId, WorkspaceKind
from kanban_core.workspaces import worktrees as wt
from kanban_core.workspaces.base import SLUG_MAX, WorkspaceError, slugify
from kanban_core.workspaces.places import worktree_root
from kanban_core.workspaces.worktrees import creation as worktree_creation
from kanban_core.workspaces.worktrees.marker import MARKER
from kanban_core.workspaces.worktrees.names import check_branch_name, create_branch, repo_dir_name
from tests.factories import task_record
from tests.gitrepos import (
    bare_origin,
    branches,
    commit,
    git as run,  # `git` is GitPython here
    isolated_git as isolated_git,  # autouse: every test here gets an isolated git
    make_repo,
    worktree_list,
)

BRANCH = "kanban/42-fix-the-login-bug"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path, "proj", "hello\n")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return worktree_root(tmp_path / "home")


def task(**changes: Any) -> Task:
    defaults: dict[str, Any] = {
        "title": "Fix the login bug",
        "workspace_kind": WorkspaceKind.WORKTREE,
        "created_ms": 0,
        "updated_ms": 0,
    }
    return task_record(**(defaults | changes))


def ensure(repo: Path, root: Path, *, allow_dirty_base: bool = False, **changes: object):
    return wt.ensure_worktree(
        repo, task=task(**changes), root=root, allow_dirty_base=allow_dirty_base
    )


def kanban_branches(repo: Path) -> list[str]:
    return [
        b.removeprefix("refs/heads/") for b in branches(repo) if b.startswith("refs/heads/kanban")
    ]


def worktree_count(repo: Path) -> int:
    return worktree_list(repo).count("worktree ")


def snapshot(repo: Path) -> tuple[str, bytes, dict[str, bytes], str]:
    """The main checkout as plain files: HEAD, index bytes, working-tree files, branch tips."""
    files = {
        str(p.relative_to(repo)): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }
    heads = run(repo, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/main")
    return ((repo / ".git/HEAD").read_text(), (repo / ".git/index").read_bytes(), files, heads)


def marker_of(path: Path) -> dict[str, object]:
    git_dir = Path(run(path, "rev-parse", "--absolute-git-dir"))
    data: dict[str, object] = json.loads((git_dir / MARKER).read_text(encoding="utf-8"))
    return data


def assert_nothing_created(repo: Path, root: Path) -> None:
    if repo.is_dir() and (repo / ".git").exists():
        assert kanban_branches(repo) == []
    assert not root.exists()


# --- naming -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Fix the login bug", "fix-the-login-bug"),
        ("Füge Löschen hinzu!", "fuge-loschen-hinzu"),
        ("  --Hello,   World--  ", "hello-world"),
        ("登录功能", "task"),
        ("🚀🔥", "task"),
        ("Добавить логин", "task"),
        ("", "task"),
        ("a" * 60, "a" * 40),
        (
            "implement the login page with oauth and remember me",
            "implement-the-login-page-with-oauth-and",
        ),
        ("../../etc/passwd", "etc-passwd"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug
    assert len(slug) <= SLUG_MAX


@pytest.mark.parametrize(
    "name",
    ["-foo", "--upload-pack=x", "HEAD", "@", "a..b", "x/", ".hidden", "foo.lock", "a b", "a~b",
     "Kanban/x", "a//b", "kanban/.x", "kanban/-x", "x" * 101, "kanban/t@{1}", ""],
)  # fmt: skip
def test_check_branch_name_rejects(repo: Path, name: str) -> None:
    with git.Repo(repo) as r, pytest.raises(WorkspaceError, match="invalid branch name"):
        check_branch_name(r, name)


def test_check_branch_name_accepts(repo: Path) -> None:
    with git.Repo(repo) as r:
        check_branch_name(r, "kanban/42-task-2")


# --- creation ---------------------------------------------------------------------------------


def test_creates_worktree_on_new_branch(repo: Path, root: Path) -> None:
    before = snapshot(repo)
    path, branch, created = ensure(repo, root)
    assert created
    assert branch == BRANCH
    common = (repo / ".git").resolve()
    assert path == root.resolve() / repo_dir_name(common) / "t42"
    assert path.parent.name.startswith("proj-")
    assert (path / ".git").is_file()
    assert (path / "README.md").read_text() == "hello\n"
    assert run(path, "symbolic-ref", "HEAD") == f"refs/heads/{BRANCH}"
    assert run(path, "rev-parse", "HEAD") == run(repo, "rev-parse", "main")
    # The marker lives in the private git dir, so the new tree is clean.
    assert run(path, "status", "--porcelain", "--untracked-files=all") == ""
    marker = marker_of(path)
    assert marker["task"] == "t42"
    assert marker["kind"] == "worktree"
    assert marker["branch"] == BRANCH
    assert marker["repo"] == str(repo.resolve())
    assert marker["branch_created"] is True
    assert marker["base"] == "refs/heads/main"
    assert isinstance(marker["created"], int)
    assert snapshot(repo) == before


def test_retry_returns_the_same_worktree(repo: Path, root: Path) -> None:
    first = ensure(repo, root)
    (first[0] / "work.txt").write_text("in progress\n")  # a retry keeps what the worker did
    second = ensure(repo, root)
    assert second == (first[0], first[1], False)
    assert (first[0] / "work.txt").exists()
    assert kanban_branches(repo) == [BRANCH]
    assert worktree_count(repo) == 2


def test_two_tasks_get_two_worktrees(repo: Path, root: Path) -> None:
    a = ensure(repo, root)
    b = ensure(repo, root, id=TaskId(7), title="Other thing")
    assert a[0].parent == b[0].parent
    assert b[0].name == "t7"
    assert b[1] == "kanban/7-other-thing"


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        ([f"refs/heads/{BRANCH}"], f"{BRANCH}-2"),
        ([f"refs/heads/{BRANCH}", f"refs/heads/{BRANCH}-2"], f"{BRANCH}-3"),
        ([f"refs/remotes/origin/{BRANCH}"], f"{BRANCH}-2"),  # remote-only (F-09)
        ([f"refs/heads/{BRANCH}/old"], f"{BRANCH}-2"),  # directory/file clash (F-11)
        (["refs/heads/Kanban/42-Fix-The-Login-Bug"], f"{BRANCH}-2"),  # case-only (F-12)
    ],
)
def test_branch_conflict_gets_a_suffix(
    repo: Path, root: Path, existing: list[str], expected: str
) -> None:
    tip = run(repo, "rev-parse", "HEAD")
    for ref in existing:
        run(repo, "update-ref", ref, tip)
    _, branch, _ = ensure(repo, root)
    assert branch == expected
    for ref in existing:  # nobody's branch is reused, moved or deleted
        assert run(repo, "rev-parse", ref) == tip


def test_branch_named_like_the_prefix_is_a_clear_error(repo: Path, root: Path) -> None:
    run(repo, "branch", "kanban")
    with pytest.raises(WorkspaceError, match="branch named 'kanban' exists"):
        ensure(repo, root)
    assert run(repo, "branch", "--list", "kanban/*") == ""
    assert not root.exists()


@pytest.mark.parametrize("title", ["登录功能", "🚀🚀", "!!!"])
def test_non_ascii_title_gives_task_slug(repo: Path, root: Path, title: str) -> None:
    _, branch, _ = ensure(repo, root, title=title)
    assert branch == "kanban/42-task"


def test_base_is_origin_head_when_there_is_one(tmp_path: Path, repo: Path, root: Path) -> None:
    bare_origin(repo, tmp_path / "remote.git", upstream=True)
    commit(repo, "local.txt")  # local main is ahead of origin/main
    path, _, _ = ensure(repo, root)
    assert run(path, "rev-parse", "HEAD") == run(repo, "rev-parse", "origin/main")
    assert not (path / "local.txt").exists()
    assert marker_of(path)["base"] == "refs/remotes/origin/main"


def test_base_is_the_current_branch_without_a_remote(repo: Path, root: Path) -> None:
    run(repo, "switch", "-q", "-c", "develop")
    tip = commit(repo, "dev.txt")
    path, _, _ = ensure(repo, root)
    assert run(path, "rev-parse", "HEAD") == tip


def test_detached_head_falls_back_to_main(repo: Path, root: Path) -> None:
    main = run(repo, "rev-parse", "main")
    commit(repo, "later.txt")
    run(repo, "checkout", "-q", "--detach", "HEAD")
    run(repo, "update-ref", "refs/heads/main", main)
    path, _, _ = ensure(repo, root)
    assert run(path, "rev-parse", "HEAD") == main


def test_detached_head_without_main_is_refused(repo: Path, root: Path) -> None:
    run(repo, "checkout", "-q", "--detach", "HEAD")
    run(repo, "branch", "-q", "-m", "main", "trunk")
    with pytest.raises(WorkspaceError, match="cannot tell the default branch"):
        ensure(repo, root)
    assert_nothing_created(repo, root)


def test_repo_given_as_a_linked_worktree(tmp_path: Path, repo: Path, root: Path) -> None:
    linked = tmp_path / "linked"
    run(repo, "worktree", "add", "-q", "-b", "feature", str(linked))
    path, _, _ = ensure(linked, root)
    # One repository, one directory under the root, whichever checkout named it (F-05).
    assert path.parent.name == repo_dir_name((repo / ".git").resolve())
    with pytest.raises(WorkspaceError, match="overlaps the repository checkout"):
        ensure(linked, repo / "worktrees", id=TaskId(7))  # inside the main checkout


# --- refusals leave nothing behind ------------------------------------------------------------


def test_missing_path(tmp_path: Path, root: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        ensure(tmp_path / "nope", root)
    assert not (tmp_path / "nope").exists()
    assert not root.exists()


def test_relative_path(root: Path) -> None:
    with pytest.raises(WorkspaceError, match="must be absolute"):
        ensure(Path("proj"), root)
    assert not root.exists()


def test_not_a_repo(tmp_path: Path, root: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "notes.txt").write_text("mine\n")
    with pytest.raises(WorkspaceError, match="is not a git repository"):
        ensure(plain, root)
    assert sorted(p.name for p in plain.iterdir()) == ["notes.txt"]  # never `git init`
    assert not root.exists()


def test_subdirectory_of_a_repo(repo: Path, root: Path) -> None:
    (repo / "sub").mkdir()
    with pytest.raises(WorkspaceError, match="is not a git repository"):
        ensure(repo / "sub", root)
    assert_nothing_created(repo, root)


def test_empty_repo(tmp_path: Path, root: Path) -> None:
    empty = make_repo(tmp_path, "empty", initial=False)
    with pytest.raises(WorkspaceError, match="create an initial commit first"):
        ensure(empty, root)
    assert run(empty, "for-each-ref") == ""
    assert not root.exists()


def test_bare_repo(tmp_path: Path, repo: Path, root: Path) -> None:
    bare = tmp_path / "bare.git"
    run(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    with pytest.raises(WorkspaceError, match="bare repository"):
        ensure(bare, root)
    assert kanban_branches(bare) == []
    assert not root.exists()


@pytest.mark.parametrize("change", ["modified", "untracked", "staged"])
def test_dirty_base_is_refused(repo: Path, root: Path, change: str) -> None:
    if change == "untracked":
        (repo / "new.txt").write_text("wip\n")
    else:
        (repo / "README.md").write_text("changed\n")
        if change == "staged":
            run(repo, "add", "README.md")
    before = snapshot(repo)
    with pytest.raises(WorkspaceError, match="1 uncommitted change "):
        ensure(repo, root)
    assert_nothing_created(repo, root)
    assert snapshot(repo) == before


def test_dirty_base_allowed_starts_from_the_branch_tip(repo: Path, root: Path) -> None:
    (repo / "README.md").write_text("changed\n")
    (repo / "new.txt").write_text("wip\n")
    before = snapshot(repo)
    path, _, created = ensure(repo, root, allow_dirty_base=True)
    assert created
    assert (path / "README.md").read_text() == "hello\n"
    assert not (path / "new.txt").exists()
    assert snapshot(repo) == before  # the user's changes stay where they were, untouched


def test_ignored_files_do_not_make_the_base_dirty(repo: Path, root: Path) -> None:
    commit(repo, ".gitignore", "*.log\n")
    (repo / "build.log").write_text("noise\n")
    assert ensure(repo, root)[2]


def test_root_inside_the_repo_is_refused(repo: Path) -> None:
    root = repo / ".kanban" / "worktrees"
    with pytest.raises(WorkspaceError, match="overlaps the repository checkout"):
        ensure(repo, root)
    assert_nothing_created(repo, root)
    assert not (repo / ".kanban").exists()


def test_root_above_the_repo_is_refused(repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="overlaps"):
        ensure(repo, repo.parent)
    assert kanban_branches(repo) == []


def test_filesystem_root_is_refused(repo: Path) -> None:
    with pytest.raises(WorkspaceError, match="filesystem root"):
        ensure(repo, Path("/"))
    assert kanban_branches(repo) == []


def test_symlinked_repo_dir_under_root_is_refused(tmp_path: Path, repo: Path, root: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root.mkdir(parents=True)
    (root / repo_dir_name((repo / ".git").resolve())).symlink_to(elsewhere)
    with pytest.raises(WorkspaceError, match="is a symlink"):
        ensure(repo, root)
    assert list(elsewhere.iterdir()) == []
    assert kanban_branches(repo) == []


def test_foreign_directory_at_the_target_is_left_alone(repo: Path, root: Path) -> None:
    target = root / repo_dir_name((repo / ".git").resolve()) / "t42"
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("not yours\n")
    with pytest.raises(WorkspaceError, match="already exists and is not a linked git worktree"):
        ensure(repo, root)
    assert (target / "keep.txt").read_text() == "not yours\n"
    assert kanban_branches(repo) == []


def test_another_tasks_worktree_at_the_target_is_refused(repo: Path, root: Path) -> None:
    path, _, _ = ensure(repo, root)
    git_dir = Path(run(path, "rev-parse", "--absolute-git-dir"))
    marker = json.loads((git_dir / MARKER).read_text())
    (git_dir / MARKER).write_text(json.dumps({**marker, "task": "t7"}))
    with pytest.raises(WorkspaceError, match="belongs to t7, not t42"):
        ensure(repo, root)


def test_git_dir_in_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, repo: Path, root: Path
) -> None:
    monkeypatch.setenv("GIT_DIR", str(repo / ".git"))
    with pytest.raises(WorkspaceError, match="GIT_DIR is set"):
        ensure(repo, root)
    monkeypatch.delenv("GIT_DIR")
    assert_nothing_created(repo, root)


# --- rollback ---------------------------------------------------------------------------------


def test_failure_after_the_worktree_was_added_rolls_everything_back(
    monkeypatch: pytest.MonkeyPatch, repo: Path, root: Path
) -> None:
    def broken(git_dir: Path, marker: dict[str, object]) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(worktree_creation, "write_marker", broken)
    before = snapshot(repo)
    with pytest.raises(WorkspaceError, match="No space left on device; nothing was left behind"):
        ensure(repo, root)
    assert kanban_branches(repo) == []
    assert worktree_count(repo) == 1
    assert not root.exists()
    assert not (repo / ".git" / "worktrees" / "t42").exists()
    assert snapshot(repo) == before


def test_failed_worktree_add_deletes_only_the_branch_it_made(
    monkeypatch: pytest.MonkeyPatch, repo: Path, root: Path
) -> None:
    target = root / repo_dir_name((repo / ".git").resolve()) / "t42"

    def create_then_race(r: git.Repo, stem: str, oid: str, task_ref: str) -> str:
        name = create_branch(r, stem, oid, task_ref)
        target.mkdir()  # someone fills the target between our check and `worktree add`
        (target / "theirs.txt").write_text("theirs\n")
        return name

    monkeypatch.setattr(worktree_creation, "create_branch", create_then_race)
    run(repo, "branch", "unrelated")
    with pytest.raises(WorkspaceError, match="already exists") as caught:
        ensure(repo, root)
    assert "\n" not in str(caught.value)
    assert str(caught.value).endswith(f"could not undo: directory {target.parent} (not empty)")
    assert kanban_branches(repo) == []
    assert run(repo, "branch", "--list", "unrelated") != ""
    assert (target / "theirs.txt").read_text() == "theirs\n"  # not ours: never deleted
    assert worktree_count(repo) == 1


def test_rollback_never_deletes_a_branch_that_moved(
    monkeypatch: pytest.MonkeyPatch, repo: Path, root: Path
) -> None:
    def broken(git_dir: Path, marker: dict[str, object]) -> None:
        worktree = Path((git_dir / "gitdir").read_text().strip()).parent
        commit(worktree, "precious.txt")  # the branch moves before the failure
        run(worktree, "switch", "-q", "--detach")
        raise OSError("boom")

    monkeypatch.setattr(worktree_creation, "write_marker", broken)
    with pytest.raises(WorkspaceError, match=f"could not undo: branch {BRANCH}"):
        ensure(repo, root)
    assert kanban_branches(repo) == [BRANCH]


# --- removal ----------------------------------------------------------------------------------


def test_removes_a_clean_worktree_whose_branch_was_pushed(
    tmp_path: Path, repo: Path, root: Path
) -> None:
    remote = bare_origin(repo, tmp_path / "remote.git", upstream=True)
    before = snapshot(repo)
    path, branch, _ = ensure(repo, root)
    tip = commit(path, "feature.txt")
    run(path, "push", "-q", "origin", branch)
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert removal.removed, removal.reason
    assert f"branch {branch} deleted" in removal.reason
    assert not path.exists()
    assert not path.parent.exists()  # the empty per-repo directory goes too; the root stays
    assert root.is_dir()
    assert kanban_branches(repo) == []
    assert run(remote, "rev-parse", f"refs/heads/{branch}") == tip  # the remote copy stays
    assert worktree_count(repo) == 1
    assert snapshot(repo) == before


def test_removes_an_untouched_worktree(repo: Path, root: Path) -> None:
    before = snapshot(repo)
    path, _, _ = ensure(repo, root)
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert removal.removed, removal.reason
    assert kanban_branches(repo) == []
    assert snapshot(repo) == before


def test_removes_a_worktree_whose_branch_was_merged(repo: Path, root: Path) -> None:
    path, branch, _ = ensure(repo, root)
    commit(path, "feature.txt")
    run(repo, "merge", "-q", "--ff-only", branch)
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert removal.removed, removal.reason
    assert kanban_branches(repo) == []


def test_keeps_a_sibling_worktree_and_the_repo_dir(repo: Path, root: Path) -> None:
    a, _, _ = ensure(repo, root)
    b, _, _ = ensure(repo, root, id=TaskId(7), title="other")
    assert wt.remove_worktree(a, root=root, task_id=TaskId(42)).removed
    assert b.is_dir()
    assert kanban_branches(repo) == ["kanban/7-other"]


def test_refuses_unpushed_commits(tmp_path: Path, repo: Path, root: Path) -> None:
    bare_origin(repo, tmp_path / "remote.git", upstream=True)
    path, branch, _ = ensure(repo, root)
    commit(path, "one.txt")
    commit(path, "two.txt")
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert removal.reason.startswith("2 unpushed commits on")
    assert path.is_dir()
    assert kanban_branches(repo) == [branch]


@pytest.mark.parametrize(
    ("change", "reason"),
    [("modified", "1 uncommitted change"), ("untracked", "2 uncommitted changes")],
)
def test_refuses_a_dirty_worktree(repo: Path, root: Path, change: str, reason: str) -> None:
    path, branch, _ = ensure(repo, root)
    if change == "modified":
        (path / "README.md").write_text("edited\n")
    else:
        (path / "a.txt").write_text("a\n")
        (path / "sub").mkdir()
        (path / "sub" / "b.txt").write_text("b\n")
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert removal.reason == reason
    assert path.is_dir()
    assert kanban_branches(repo) == [branch]


def test_refuses_a_detached_worktree(repo: Path, root: Path) -> None:
    path, _, _ = ensure(repo, root)
    commit(path, "x.txt")
    run(path, "switch", "-q", "--detach")
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert "detached" in removal.reason


def test_refuses_the_marker_of_another_task(repo: Path, root: Path) -> None:
    path, _, _ = ensure(repo, root)
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(7))
    assert not removal.removed
    assert "belongs to t42, not t7" in removal.reason
    assert path.is_dir()


def test_refuses_a_worktree_outside_the_root(tmp_path: Path, repo: Path, root: Path) -> None:
    path, _, _ = ensure(repo, root)
    other_root = tmp_path / "other-root"
    other_root.mkdir()
    removal = wt.remove_worktree(path, root=other_root, task_id=TaskId(42))
    assert not removal.removed
    assert "outside the managed root" in removal.reason
    assert path.is_dir()


def test_refuses_the_root_itself(repo: Path, root: Path) -> None:
    ensure(repo, root)
    removal = wt.remove_worktree(root, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert "outside the managed root" in removal.reason


def test_refuses_a_symlink_to_a_worktree_elsewhere(tmp_path: Path, repo: Path, root: Path) -> None:
    victim = tmp_path / "victim"
    run(repo, "worktree", "add", "-q", "-b", "victim", str(victim))
    link_dir = root / repo_dir_name((repo / ".git").resolve())
    link_dir.mkdir(parents=True)
    (link_dir / "t42").symlink_to(victim)
    removal = wt.remove_worktree(link_dir / "t42", root=root, task_id=TaskId(42))
    assert not removal.removed
    assert "not a real directory" in removal.reason
    assert (victim / "README.md").exists()
    assert run(repo, "branch", "--list", "victim") != ""


def test_refuses_a_plain_directory_without_marker(repo: Path, root: Path) -> None:
    plain = root / repo_dir_name((repo / ".git").resolve()) / "t42"
    plain.mkdir(parents=True)
    (plain / "data.txt").write_text("keep\n")
    removal = wt.remove_worktree(plain, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert ".git is not a file" in removal.reason
    assert (plain / "data.txt").exists()


def test_refuses_a_linked_worktree_without_marker(repo: Path, root: Path) -> None:
    path = root / repo_dir_name((repo / ".git").resolve()) / "t42"
    path.parent.mkdir(parents=True)
    run(repo, "worktree", "add", "-q", "-b", "someone", str(path))
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert "carries no kanban marker" in removal.reason
    assert path.is_dir()
    assert run(repo, "branch", "--list", "someone") != ""


def test_refuses_a_main_checkout(tmp_path: Path, repo: Path, root: Path) -> None:
    clone = root / "proj-00000000" / "t42"
    run(tmp_path, "clone", "-q", str(repo), str(clone))
    removal = wt.remove_worktree(clone, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert ".git is not a file" in removal.reason
    assert (clone / "README.md").exists()
    assert (clone / ".git").is_dir()


def test_refuses_the_users_repo(repo: Path, root: Path) -> None:
    removal = wt.remove_worktree(repo, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert (repo / "README.md").exists()


def test_refuses_a_worktree_moved_out_of_its_place(repo: Path, root: Path) -> None:
    path, _, _ = ensure(repo, root)
    moved = root / "elsewhere" / "t42"
    moved.parent.mkdir()
    run(repo, "worktree", "move", str(path), str(moved))
    removal = wt.remove_worktree(moved, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert "is not where t42's worktree belongs" in removal.reason
    assert moved.is_dir()


def test_nothing_to_remove(root: Path) -> None:
    removal = wt.remove_worktree(root / "x" / "t42", root=root, task_id=TaskId(42))
    assert (removal.removed, removal.reason, removal.path) == (False, "no workspace", None)


def test_git_refusal_is_reported_not_forced(repo: Path, root: Path) -> None:
    path, branch, _ = ensure(repo, root)
    run(repo, "worktree", "lock", "--reason", "someone else's", str(path))
    removal = wt.remove_worktree(path, root=root, task_id=TaskId(42))
    assert not removal.removed
    assert removal.reason.startswith("git refused: ")
    assert "locked" in removal.reason
    assert path.is_dir()
    assert kanban_branches(repo) == [branch]


def test_worktree_deleted_by_hand_is_reported_and_its_branch_kept(repo: Path, root: Path) -> None:
    path, branch, _ = ensure(repo, root)
    commit(path, "work.txt")
    tip = run(repo, "rev-parse", branch)
    shutil.rmtree(path)  # the user's doing, not ours (F-21)
    with pytest.raises(WorkspaceError, match="missing but already registered worktree") as caught:
        ensure(repo, root)
    assert "\n" not in str(caught.value)
    assert kanban_branches(repo) == [branch]  # the -2 branch made for the retry was rolled back
    assert run(repo, "rev-parse", branch) == tip
