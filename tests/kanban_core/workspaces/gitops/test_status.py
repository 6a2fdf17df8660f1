"""repo_status and unified_diff on real worktrees: names, renames, binaries, modes, HEAD states."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanban_core.workspaces.gitops.runner import GitOpError
from kanban_core.workspaces.gitops.status import FileChange, repo_status, unified_diff
from tests.gitrepos import commit, git, head, write
from tests.kanban_core.workspaces.gitops.conftest import BRANCH, Workspace


def status_of(wt: Path, base: str = "main"):
    return repo_status(wt, base_ref=base, expected_branch=BRANCH)


def by_path(wt: Path) -> dict[str, FileChange]:
    return {f.path: f for f in status_of(wt).files}


def index_bytes(wt: Path) -> bytes:
    return Path(git(wt, "rev-parse", "--path-format=absolute", "--git-path", "index")).read_bytes()


def test_a_fresh_worktree_is_clean_and_on_its_branch(wt: Path) -> None:
    st = status_of(wt)
    assert st.clean
    assert (st.branch, st.branch_mismatch, st.ahead, st.behind) == (BRANCH, False, 0, 0)
    assert st.head_oid == head(wt)
    assert (st.files, st.conflicted, st.in_progress) == ((), (), None)


def test_non_ascii_names_come_through_verbatim(wt: Path) -> None:
    commit(wt, "新.txt", "one\n")
    write(wt / "ümlaut file.txt", "a\nb\n")
    st = status_of(wt)
    assert st.untracked == 1
    assert st.ahead == 1
    files = {f.path: f for f in st.files}
    assert files["ümlaut file.txt"] == FileChange("ümlaut file.txt", None, "?", 2, 0)
    assert files["新.txt"] == FileChange("新.txt", None, "A", 1, 0)


def on_base(workspace: Workspace, name: str, text: str) -> None:
    """A file that exists at the fork point: committed on main, then fast-forwarded into."""
    commit(workspace.repo, name, text)
    git(workspace.path, "merge", "-q", "--ff-only", "main")


def test_a_rename_with_odd_names_is_parsed_from_the_z_form(workspace: Workspace) -> None:
    wt = workspace.path
    on_base(workspace, "old name.txt", "".join(f"line {i}\n" for i in range(20)))
    (wt / "dir").mkdir()
    git(wt, "mv", "old name.txt", "dir/新 name.txt")
    with (wt / "dir/新 name.txt").open("a", encoding="utf-8") as fh:
        fh.write("one more\n")
    [change] = status_of(wt).files
    assert change == FileChange("dir/新 name.txt", "old name.txt", "R", 1, 0)


def test_a_rename_done_without_git_mv_is_still_a_rename(workspace: Workspace) -> None:
    wt = workspace.path
    on_base(workspace, "a.txt", "".join(f"line {i}\n" for i in range(20)))
    (wt / "a.txt").rename(wt / "b.txt")  # untracked new file + deleted tracked file
    [change] = status_of(wt).files
    assert (change.path, change.old_path, change.change, change.churn) == ("b.txt", "a.txt", "R", 0)


def test_binary_files_have_no_line_counts(wt: Path) -> None:
    write(wt / "logo.png", b"\x89PNG\r\n\x1a\n\x00\x00\xff" * 10)
    commit(wt, "data.bin", "text first\n")
    write(wt / "data.bin", b"\x00\x01\x02binary now")
    files = by_path(wt)
    assert files["logo.png"] == FileChange("logo.png", None, "?", None, None, binary=True)
    assert files["data.bin"].binary
    assert files["data.bin"].churn == 0


def test_a_mode_only_change_is_reported_as_such(workspace: Workspace) -> None:
    wt = workspace.path
    on_base(workspace, "run.sh", "echo hi\n")
    commit(wt, "tool.sh", "echo a\n")
    (wt / "run.sh").chmod(0o755)
    (wt / "tool.sh").chmod(0o755)
    write(wt / "tool.sh", "echo b\n")
    files = by_path(wt)
    assert files["run.sh"] == FileChange("run.sh", None, "T", 0, 0, mode_change=True)
    assert files["tool.sh"] == FileChange("tool.sh", None, "A", 1, 0, mode_change=False)


def test_mode_and_content_change_on_a_file_from_base(workspace: Workspace) -> None:
    on_base(workspace, "tool.sh", "echo a\n")
    (workspace.path / "tool.sh").chmod(0o755)
    write(workspace.path / "tool.sh", "echo b\n")
    [change] = status_of(workspace.path).files
    assert change == FileChange("tool.sh", None, "M", 1, 1, mode_change=True)


def test_counts_and_order_by_churn_then_path(wt: Path) -> None:
    commit(wt, "small.txt", "a\n")
    commit(wt, "big.txt", "a\n")
    write(wt / "big.txt", "".join(f"{i}\n" for i in range(10)))
    git(wt, "add", "big.txt")
    write(wt / "small.txt", "b\n")
    write(wt / "b-new.txt", "1\n2\n")
    write(wt / "a-new.txt", "1\n2\n")
    st = status_of(wt)
    assert (st.staged, st.unstaged, st.untracked) == (1, 1, 2)
    assert [f.path for f in st.files] == ["big.txt", "a-new.txt", "b-new.txt", "small.txt"]
    assert not st.clean


def test_files_are_measured_from_the_fork_point_not_the_base_tip(workspace: Workspace) -> None:
    commit(workspace.path, "mine.txt", "m\n")
    commit(workspace.repo, "theirs.txt", "t\n")
    st = status_of(workspace.path)
    assert [f.path for f in st.files] == ["mine.txt"]
    assert (st.ahead, st.behind) == (1, 1)


def test_a_detached_head_is_a_branch_mismatch(wt: Path) -> None:
    git(wt, "switch", "-q", "--detach", "HEAD")
    st = status_of(wt)
    assert st.branch is None
    assert st.branch_mismatch


def test_a_branch_switched_inside_the_worktree_is_a_mismatch(wt: Path) -> None:
    git(wt, "switch", "-q", "-c", "something-else")
    st = status_of(wt)
    assert (st.branch, st.branch_mismatch) == ("something-else", True)


def test_a_rebase_left_in_progress_shows_the_operation_and_conflicts(
    workspace: Workspace,
) -> None:
    commit(workspace.path, "c.txt", "ours\n")
    commit(workspace.repo, "c.txt", "theirs\n")
    git(workspace.path, "rebase", "main", check=False)
    st = status_of(workspace.path)
    assert st.in_progress == "rebase"
    assert st.conflicted == ("c.txt",)
    assert st.branch_mismatch  # a rebase detaches HEAD
    assert not st.clean


def test_a_merge_left_in_progress(workspace: Workspace) -> None:
    commit(workspace.path, "c.txt", "ours\n")
    commit(workspace.repo, "c.txt", "theirs\n")
    git(workspace.path, "merge", "main", check=False)
    st = status_of(workspace.path)
    assert (st.in_progress, st.conflicted, st.branch) == ("merge", ("c.txt",), BRANCH)


def test_an_unknown_base_is_an_error(wt: Path) -> None:
    with pytest.raises(GitOpError, match="base ref 'nope' not found"):
        status_of(wt, base="nope")


def test_status_does_not_touch_the_real_index(wt: Path) -> None:
    write(wt / "new.txt", "n\n")
    write(wt / "README.md", "changed\n")
    before = index_bytes(wt)
    status_of(wt)
    unified_diff(wt, base_ref="main")
    assert index_bytes(wt) == before
    assert "?? new.txt" in git(wt, "status", "--porcelain")


def test_unified_diff_includes_untracked_and_binary_files_without_content(wt: Path) -> None:
    commit(wt, "committed.txt", "c\n")
    write(wt / "README.md", "hello\nworld\n")
    write(wt / "新.txt", "brand new\n")
    write(wt / "blob.bin", b"\x00\xffsecret-bytes")
    patch = unified_diff(wt, base_ref="main")
    text = patch.decode()
    assert "+++ b/committed.txt" in text
    assert "+world" in text
    assert "+++ b/新.txt\n@@ -0,0 +1 @@\n+brand new" in text
    assert "Binary files /dev/null and b/blob.bin differ" in text
    assert b"secret-bytes" not in patch


def test_unified_diff_limits_to_paths(wt: Path) -> None:
    write(wt / "a.txt", "a\n")
    write(wt / "-b.txt", "b\n")  # a path that looks like an option stays a path after --
    text = unified_diff(wt, base_ref="main", paths=["-b.txt"]).decode()
    assert "+++ b/-b.txt" in text
    assert "a.txt" not in text.replace("-b.txt", "")


def test_unified_diff_of_a_clean_worktree_is_empty(wt: Path) -> None:
    assert unified_diff(wt, base_ref="main") == b""
