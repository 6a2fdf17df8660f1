"""Workspaces and permission requests from the web: chat's request → confirm flow, real git."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from starlette.testclient import TestClient

from gateway.access import AccessPolicy
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from tests.gitrepos import git, isolated_git as isolated_git
from tests.kanban_core.workspaces.interactive.conftest import Kit, make_kit
from tests.kanban_core.workspaces.interactive.test_ws_disk_views import Impostor
from tests.kanban_core.workspaces.interactive.test_ws_remote import two as two
from tests.web.conftest import BASE, sign_in
from web.app import create_app
from web.config import WebSettings
from web.server import build_backend


@pytest.fixture
def kit(board: Kanban, tmp_path: Path, isolated_git: None) -> Kit:
    return make_kit(board, tmp_path)


@pytest.fixture
def ws_client(
    board: Kanban, executor: KernelExecutor, access: AccessPolicy, kit: Kit, tmp_path: Path
) -> Iterator[TestClient]:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "assignees": {"coder": {"command": ["true"]}},
                "workspaces": {
                    "managed_root": str(kit.data),
                    "agent": "coder",
                    "repos": {"api": {"path": str(kit.api)}, "web": {"path": str(kit.web)}},
                },
            }
        )
    )
    environ = {"KANBAN_CONFIG": str(config), "PATH": os.environ["PATH"]}
    backend = build_backend(board, executor, access, WebSettings(), environ=environ)
    with TestClient(create_app(backend), base_url=BASE, follow_redirects=False) as client:
        yield client


def test_a_workspace_from_creation_to_a_confirmed_commit(ws_client, board, kit: Kit) -> None:
    sign_in(ws_client, board, "telegram:1")
    made = ws_client.post("/api/workspaces", json={"title": "Add login", "repos": ["api"]})
    assert made.status_code == 201, made.text
    (ws,) = ws_client.get("/api/workspaces").json()
    shown = ws_client.get(f"/api/workspaces/{ws['id']}").json()
    assert shown["id"] == ws["id"]
    assert "/" not in str(shown.get("container", ""))  # server paths stay on the server
    worktree = kit.get(ws["id"]).repos[0].worktree
    (worktree / "login.py").write_text("def login(): ...\n")
    diff = ws_client.get(f"/api/workspaces/{ws['id']}/diff?repo=api").json()
    assert "login.py" in diff["text"]
    asked = ws_client.post(
        f"/api/workspaces/{ws['id']}/git",
        json={"op": "commit", "repo": "api", "message": "Add the login stub"},
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["request"]["id"]
    assert request_id.startswith("ap-")
    assert "login.py" not in git(worktree, "log", "--stat", "-1")  # nothing until confirmed
    confirmed = ws_client.post(f"/api/git-requests/{request_id}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    assert "login.py" in git(worktree, "log", "--stat", "-1")
    again = ws_client.post(f"/api/git-requests/{request_id}/confirm")
    assert again.status_code in (404, 409)


def test_only_the_requester_confirms_and_viewers_only_look(ws_client, board, kit: Kit) -> None:
    sign_in(ws_client, board, "telegram:1")
    ws_client.post("/api/workspaces", json={"title": "Add login", "repos": ["api"]})
    (ws,) = ws_client.get("/api/workspaces").json()
    (kit.get(ws["id"]).repos[0].worktree / "x.txt").write_text("x")
    asked = ws_client.post(f"/api/workspaces/{ws['id']}/git", json={"op": "commit"})
    request_id = asked.json()["request"]["id"]
    sign_in(ws_client, board, "telegram:3")  # an admin, but not the requester
    refused = ws_client.post(f"/api/git-requests/{request_id}/confirm")
    assert refused.status_code == 409, refused.text
    sign_in(ws_client, board, "telegram:2")
    assert ws_client.get(f"/api/workspaces/{ws['id']}/status").status_code == 200
    assert ws_client.post(f"/api/workspaces/{ws['id']}/pin").status_code == 403
    assert ws_client.get("/api/workspaces/ws-nope").status_code == 404
    assert ws_client.post("/api/git-requests/ap-nope/confirm").status_code == 403


def test_unknown_workspaces_and_requests_are_404(ws_client, board) -> None:
    sign_in(ws_client, board, "telegram:1")
    assert ws_client.get("/api/workspaces/ws-0-000000").status_code == 404
    assert ws_client.get("/api/workspaces/ws-0-000000/diff").status_code == 404
    assert ws_client.post("/api/workspaces/ws-0-000000/pin").status_code == 404
    assert ws_client.post("/api/git-requests/ap-0-000000/confirm").status_code == 404
    assert ws_client.get("/api/permissions").json() == []


def test_sessions_queue_repo_rename_and_delete_requests(ws_client, board, kit: Kit) -> None:
    sign_in(ws_client, board, "telegram:1")
    ws_client.post("/api/workspaces", json={"title": "Two", "repos": ["api", "web"]})
    (ws,) = ws_client.get("/api/workspaces").json()
    base = f"/api/workspaces/{ws['id']}"
    assert ws_client.post(f"{base}/rename", json={"name": "Renamed"}).status_code == 200
    assert ws_client.get(base).json()["name"] == "Renamed"
    assert ws_client.post(f"{base}/rename", json={}).status_code == 400
    assert ws_client.post(f"{base}/repo", json={"slug": "web"}).status_code == 200
    assert ws_client.get(base).json()["active_repo"] == "web"
    made = ws_client.post(f"{base}/new-session", json={"name": "second"})
    assert made.status_code == 200, made.text
    sessions = ws_client.get(f"{base}/sessions").json()["text"]
    assert "second" in sessions
    used = ws_client.post(f"{base}/use-session", json={"session": "1"})
    assert used.status_code == 200, used.text
    listed = {s["position"]: s for s in ws_client.get(base).json()["sessions"]}
    assert listed[1]["active"]
    assert not listed[2]["active"]
    assert listed[2]["paused"] is False
    history = ws_client.get(f"{base}/sessions/2").json()
    assert (history["session"]["position"], history["session"]["paused"]) == (2, False)
    assert history["session"]["name"] == "second"
    assert [m["role"] for m in ws_client.get(f"{base}/sessions/1").json()["messages"]][:1] == [
        "user"
    ]  # the first session opened with the workspace's title
    assert ws_client.get(f"{base}/sessions/9").status_code in (404, 409)
    assert ws_client.get(f"{base}/sessions/a%20b").status_code == 400
    assert ws_client.post(f"{base}/queue", json={"action": "nope"}).status_code == 400
    assert ws_client.post(f"{base}/frobnicate").status_code == 404
    busy = ws_client.post(f"{base}/delete", json={})
    assert busy.status_code == 409  # the kernel's refusal while a turn runs, in one line
    assert "stop it first" in busy.json()["error"]
    assert ws_client.post(f"{base}/stop").status_code == 200
    asked = ws_client.post(f"{base}/delete", json={})
    assert asked.status_code == 201, asked.text
    assert asked.json()["request"]["id"].startswith("ap-")
    assert kit.get(ws["id"]).repos  # nothing deleted until confirmed


def test_a_workspace_on_another_host_is_shown_without_reading_this_disk(
    ws_client, board, kit: Kit, two
) -> None:
    board.host = two[1]
    sign_in(ws_client, board, "telegram:1")
    made = ws_client.post("/api/workspaces", json={"title": "Notes", "repos": ["api"]})
    assert made.status_code == 201, made.text
    (ws,) = ws_client.get("/api/workspaces").json()
    staged = Impostor(kit.get(ws["id"]).repos[0].worktree, kit.api)
    board.host = two[0]
    try:
        shown = ws_client.get(f"/api/workspaces/{ws['id']}").json()
        assert (shown["host"], shown["local"], shown["health"]) == ("build-2", False, {"api": None})
        summary = ws_client.get(f"/api/workspaces/{ws['id']}/summary")
        assert summary.status_code == 200, summary.text
        said = summary.json()["text"]
        assert "changed files: on host build-2's disk" in said
        assert f"workspace {ws['id']} is on host 'build-2'; ask in chat" in said
        assert "IMPOSTOR" not in said
    finally:
        staged.restore()
