"""The task routes against a real board: shapes, writes through the command tree, audit."""

from __future__ import annotations

from kanban_core import Actor, Kanban


def test_board_groups_cards_by_status_with_counts(signed_in, board: Kanban) -> None:
    alice = Actor(name="alice")
    parent = board.create(alice, title="parent", assignee="demo", tenant="acme").task
    child = board.create(alice, title="child", parents=[parent.id]).task
    board.comment(alice, parent.id, "hello")
    client = signed_in("telegram:2")
    data = client.get("/api/board").json()
    by_status = {c["status"]: c for c in data["columns"]}
    assert "archived" not in by_status
    ready = by_status["ready"]["tasks"]
    assert [c["id"] for c in ready] == [f"t{parent.id}"]
    card = ready[0]
    assert card["comment_count"] == 1
    assert card["link_count"] == 1
    assert (card["children_done"], card["children_total"]) == (0, 1)
    assert card["tenant"] == "acme"
    assert card["running"] is False
    assert by_status["todo"]["tasks"][0]["id"] == f"t{child.id}"
    assert data["tenants"] == ["acme"]
    assert data["assignees"] == ["demo"]
    assert data["latest_event_id"] > 0


def test_create_patch_comment_and_audit(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:1")
    made = client.post("/api/tasks", json={"title": "--help", "body": "b", "priority": 3})
    assert made.status_code == 201, made.text
    task = made.json()["task"]
    assert task["title"] == "--help"
    assert task["priority"] == 3
    ref = task["id"]
    patched = client.patch(f"/api/tasks/{ref}", json={"title": "renamed", "status": "blocked"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "blocked"
    assert patched.json()["title"] == "renamed"
    assert client.post(f"/api/tasks/{ref}/comments", json={"body": "-x\nline"}).status_code == 201
    detail = client.get(f"/api/tasks/{ref}").json()
    assert detail["comments"][-1]["body"] == "-x\nline"
    assert detail["comments"][-1]["author"] == "1 (telegram:1)"
    entries = board.audit_log(limit=10)
    assert {e.platform for e in entries} == {"web"}
    assert all(e.user_id == "telegram:1" and e.role == "operator" for e in entries)
