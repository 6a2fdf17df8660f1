"""Chat names configured repositories and directories, never a filesystem path; the CLI may."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kanban_core.board.domain import WorkspaceKind

CHAT = ("telegram", "100", "")


@pytest.fixture
def configured(tmp_path: Path) -> dict[str, str]:
    """config.yaml naming one repository and one directory; the environment that points at it."""
    repo = tmp_path / "src" / "api"
    docs = tmp_path / "docs"
    for path in (repo, docs):
        path.mkdir(parents=True)
    document = {
        "workspaces": {
            "repos": {"api": {"path": str(repo)}},
            "dirs": {"docs": str(docs)},
        }
    }
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return {"KANBAN_CONFIG": str(config), "repo": str(repo), "docs": str(docs)}


def _env(configured: dict[str, str]) -> dict[str, str]:
    return {"KANBAN_CONFIG": configured["KANBAN_CONFIG"]}


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--workspace", "dir:/root"], "chat never names a filesystem path"),
        (["--workspace", "dir:/tmp"], "use --workspace dir:<name>"),
        (["--workspace", "dir:nope"], "no directory 'nope' in workspaces.dirs (configured: docs)"),
        (["--workspace", "worktree", "--repo", "/any/repo"], "not '/any/repo' (api)"),
        (["--workspace", "worktree", "--repo", "nope"], "configured in workspaces.repos"),
    ],
)
def test_chat_may_not_name_a_path(run, board, configured, argv, needle):
    result = run(["create", "t", *argv], place=CHAT, environ=_env(configured))

    assert result.exit_code == 1
    assert len(result.errors) == 1
    assert needle in result.errors[0], result.errors
    assert board.list() == []


def test_chat_names_configured_repositories_and_directories(run, board, configured):
    env = _env(configured)
    in_dir = run(["create", "d", "--workspace", "dir:docs"], place=CHAT, environ=env)
    in_repo = run(
        ["create", "r", "--workspace", "worktree", "--repo", "api"], place=CHAT, environ=env
    )

    assert (in_dir.exit_code, in_repo.exit_code) == (0, 0), (in_dir.errors, in_repo.errors)
    by_title = {t.title: t for t in board.list()}
    assert (by_title["d"].workspace_kind, by_title["d"].workspace_path) == (
        WorkspaceKind.DIR,
        configured["docs"],
    )
    assert board.get(by_title["r"].id).repo == configured["repo"]


def test_the_local_cli_keeps_paths_and_may_use_names(run, board, configured, tmp_path):
    env = _env(configured)
    by_path = run(["create", "p", "--workspace", f"dir:{tmp_path}"], environ=env)
    by_name = run(["create", "n", "--workspace", "worktree", "--repo", "api"], environ=env)
    any_repo = run(["create", "a", "--workspace", "worktree", "--repo", "/any/repo"], environ=env)

    assert [r.exit_code for r in (by_path, by_name, any_repo)] == [0, 0, 0]
    by_title = {t.title: t for t in board.list()}
    assert by_title["p"].workspace_path == str(tmp_path)
    assert board.get(by_title["n"].id).repo == configured["repo"]
    assert board.get(by_title["a"].id).repo == "/any/repo"
