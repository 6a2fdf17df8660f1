"""status_lines and diff_budgeted: the D-11 text, bounded, cleaned and redacted."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from kanban_core.workspaces.gitops.status import FileChange, RepoStatus, repo_status, unified_diff
from kanban_core.workspaces.gitops.summary import MINUS, diff_budgeted, status_lines
from tests.gitrepos import commit, git, write
from tests.kanban_core.workspaces.gitops.conftest import BRANCH, Workspace

CLEAN = RepoStatus(
    head_oid="0" * 40,
    branch=BRANCH,
    expected_branch=BRANCH,
    base_ref="main",
    ahead=0,
    behind=0,
    staged=0,
    unstaged=0,
    untracked=0,
    conflicted=(),
    in_progress=None,
    files=(),
)


def test_a_clean_repo_is_one_line() -> None:
    assert status_lines("api", CLEAN) == [f"repo api  {BRANCH} → main  ↑0 ↓0  clean"]


def test_header_and_file_lines_in_the_d11_format() -> None:
    st = dataclasses.replace(
        CLEAN,
        base_ref="refs/heads/main",
        ahead=3,
        behind=1,
        unstaged=2,
        untracked=1,
        files=(
            FileChange("src/x.py", None, "M", 84, 12),
            FileChange("new.py", None, "?", 40, 0),
            FileChange("logo.png", None, "M", None, None, binary=True),
            FileChange("run.sh", None, "T", 0, 0, mode_change=True),
            FileChange("b.py", "a.py", "R", 0, 3),
        ),
    )
    assert status_lines("api", st) == [
        f"repo api  {BRANCH} → main  ↑3 ↓1  2 modified, 1 untracked, 0 staged",
        "  ⚠ behind base by 1 — /rebase api",
        f"  M  src/x.py     +84 {MINUS}12",
        "  ?  new.py       +40",
        "  M  logo.png     (binary)",
        "  T  run.sh       (mode change)",
        f"  R  a.py → b.py  {MINUS}3",
    ]


def test_warnings_for_a_detached_rebase_with_conflicts() -> None:
    st = dataclasses.replace(
        CLEAN,
        branch=None,
        in_progress="rebase",
        conflicted=tuple(f"c{i}.txt" for i in range(7)),
    )
    assert status_lines("web", st) == [
        "repo web  (detached) → main  ↑0 ↓0  0 modified, 0 untracked, 0 staged",
        f"  ⚠ HEAD is detached (expected {BRANCH})",
        "  ⚠ rebase in progress — /abort or resolve",
        "  ⚠ 7 conflicted: c0.txt, c1.txt, c2.txt, c3.txt, c4.txt and 2 more",
    ]


def test_a_switched_branch_is_warned_about() -> None:
    lines = status_lines("api", dataclasses.replace(CLEAN, branch="main"))
    assert lines[1] == f"  ⚠ on branch main, expected {BRANCH}"


def test_displayed_names_are_cleaned() -> None:
    st = dataclasses.replace(
        CLEAN, untracked=1, files=(FileChange("evil\u202eexe.txt\x1b[2J", None, "?", 1, 0),)
    )
    assert status_lines("a\u202eb", st)[1] == "  ?  evilexe.txt[2J  +1"
    assert status_lines("a\u202eb", st)[0].startswith("repo ab  ")


def test_real_non_ascii_names_render_verbatim(wt: Path) -> None:
    write(wt / "ümlaut file.txt", "x\n")
    write(wt / "新.txt", "y\ny\n")
    st = repo_status(wt, base_ref="main", expected_branch=BRANCH)
    assert status_lines("api", st)[1:] == [
        "  ?  新.txt            +2",
        "  ?  ümlaut file.txt  +1",
    ]


def test_two_hundred_changed_files_stay_bounded(workspace: Workspace) -> None:
    wt = workspace.path
    for i in range(199):
        write(wt / "src" / f"module_{i:03}.py", "".join(f"line {n}\n" for n in range(i % 7 + 1)))
    write(wt / "assets" / "logo.png", b"\x89PNG\x00\x00" * 50)
    commit(workspace.repo, "big.py", "x\n" * 500)  # on base: behind by one, not in our files
    st = repo_status(wt, base_ref="main", expected_branch=BRANCH)
    assert len(st.files) == 200
    lines = status_lines("api", st)
    assert len(lines) == 1 + 1 + 15 + 1
    assert lines[-1] == f"  … 185 more files (+{sum(f.churn for f in st.files[15:])} {MINUS}0)"
    assert all("+7" in line for line in lines[2:17])  # the biggest churn first
    assert sum(len(line) + 1 for line in lines) < 3800
    assert "(binary)" not in "\n".join(lines)  # a binary has no churn: folded away
    assert any("(binary)" in line for line in status_lines("api", st, top=200))


def test_a_very_long_path_is_shortened() -> None:
    long = "deep/" * 60 + "file.py"
    st = dataclasses.replace(CLEAN, untracked=1, files=(FileChange(long, None, "?", 1, 0),))
    line = status_lines("api", st)[1]
    assert len(line) < 100
    assert line.endswith("file.py  +1")


def test_diff_budgeted_returns_text_within_budget_and_none_over_it() -> None:
    patch = b"diff --git a/x b/x\n+hello\n"
    assert diff_budgeted(patch, budget_chars=100) == (patch.decode(), False)
    assert diff_budgeted(patch, budget_chars=10) == (None, False)


def test_diff_budgeted_redacts_before_measuring(wt: Path) -> None:
    key = "".join(f"+{'A' * 64}\n" for _ in range(40))
    write(wt / "id_rsa", f"-----BEGIN RSA PRIVATE KEY-----\n{key}-----END RSA PRIVATE KEY-----\n")
    patch = unified_diff(wt, base_ref="main")
    assert len(patch) > 2000
    text, redacted = diff_budgeted(patch, budget_chars=600)
    assert redacted
    assert text is not None
    assert "A" * 64 not in text


def test_diff_budgeted_reports_redaction_even_when_over_budget(wt: Path) -> None:
    write(wt / ".env", "TOKEN=abc\n" + "PAD=x\n" * 500)
    text, redacted = diff_budgeted(unified_diff(wt, base_ref="main"), budget_chars=100)
    assert (text, redacted) == (None, True)


def test_diff_budgeted_shows_bidi_controls_instead_of_obeying_them() -> None:
    text, _ = diff_budgeted("+if user\u202e != admin\u2066:\r\n".encode(), budget_chars=100)
    assert text == "+if user<U+202E> != admin<U+2066>:\n"


def test_diff_budgeted_survives_invalid_utf8() -> None:
    text, _ = diff_budgeted(b"+caf\xe9\n", budget_chars=100)
    assert text == "+caf\ufffd\n"


def test_status_lines_of_a_repo_behind_base(workspace: Workspace) -> None:
    commit(workspace.repo, "other.txt", "o\n")
    git(workspace.path, "status")
    st = repo_status(workspace.path, base_ref="main", expected_branch=BRANCH)
    assert status_lines("api", st) == [
        f"repo api  {BRANCH} → main  ↑0 ↓1  clean",
        "  ⚠ behind base by 1 — /rebase api",
    ]
