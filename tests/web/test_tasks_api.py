"""The task routes against a real board: shapes, writes through the command tree, audit."""

from __future__ import annotations

import secrets

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


def _ask(board: Kanban) -> str:
    alice = Actor(name="alice")
    task = board.create(alice, title="migrate", assignee="coder").task
    claim = board.claim(alice, task.id, ttl_s=120)
    assert claim is not None
    asked = board.request_permission(
        Actor(name="agent", run=claim.proof),
        task.id,
        tool_kind="execute",
        tool_name="bash",
        summary="<b>drop</b> the staging tables",
        ttl_s=600,
    )
    return asked.ref


def test_permission_requests_are_listed_and_answered(signed_in, board: Kanban) -> None:
    ref = _ask(board)
    client = signed_in("telegram:1")
    (listed,) = client.get("/api/permissions").json()
    assert listed["ref"] == ref
    assert listed["summary"] == "<b>drop</b> the staging tables"
    card = client.get("/api/board").json()["columns"]
    running = next(c for c in card if c["status"] == "running")["tasks"][0]
    assert running["running"] is True
    assert running["waiting_permission"] is True
    answered = client.post(f"/api/permissions/{ref}/deny", json={"reason": "not today"})
    assert answered.status_code == 200, answered.text
    assert client.get("/api/permissions").json() == []
    again = client.post(f"/api/permissions/{ref}/allow", json={"for_run": True})
    assert again.status_code == 409


def test_bulk_reports_each_id(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:3")
    a = client.post("/api/tasks", json={"title": "a"}).json()["task"]["id"]
    b = client.post("/api/tasks", json={"title": "b", "triage": True}).json()["task"]["id"]
    answer = client.post(
        "/api/tasks/bulk", json={"ids": [a, "t999", b, "junk"], "action": "status", "value": "done"}
    )
    results = answer.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, False]
    assert all("\n" not in r.get("error", "") for r in results)
    archived = client.post("/api/tasks/bulk", json={"ids": [a, b], "action": "archive"})
    assert [r["ok"] for r in archived.json()["results"]] == [True, True]
    shown = client.get("/api/board?archived=1").json()["columns"]
    assert next(c for c in shown if c["status"] == "archived")["count"] == 2


def test_links_refuse_cycles_with_the_kernel_message(signed_in) -> None:
    client = signed_in("telegram:1")
    a = client.post("/api/tasks", json={"title": "a"}).json()["task"]["id"]
    b = client.post("/api/tasks", json={"title": "b", "parents": [a]}).json()["task"]["id"]
    cycle = client.post("/api/links", json={"parent": b, "child": a})
    assert cycle.status_code == 409
    assert "cycle" in cycle.json()["error"]
    assert client.request("DELETE", "/api/links", json={"parent": a, "child": b}).status_code == 200
    assert client.get(f"/api/tasks/{b}").json()["parents"] == []


def test_status_moves_without_a_verb_are_409(signed_in) -> None:
    client = signed_in("telegram:1")
    a = client.post("/api/tasks", json={"title": "a", "triage": True}).json()["task"]["id"]
    assert client.patch(f"/api/tasks/{a}", json={"status": "running"}).status_code == 409
    assert client.patch(f"/api/tasks/{a}", json={"status": "done"}).status_code == 409
    assert client.patch(f"/api/tasks/{a}", json={"status": "nonsense"}).status_code == 400
    blocked = client.patch(f"/api/tasks/{a}", json={"status": "blocked", "reason": "wait"})
    assert blocked.json()["status"] == "blocked"
    unblocked = client.patch(f"/api/tasks/{a}", json={"status": "ready"})
    assert unblocked.json()["status"] == "ready"


def test_moving_out_of_triage_is_an_audited_accept(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:1")
    idea = client.post("/api/tasks", json={"title": "idea", "triage": True}).json()["task"]["id"]
    parent = client.post("/api/tasks", json={"title": "first"}).json()["task"]["id"]
    later = client.post(
        "/api/tasks", json={"title": "later", "triage": True, "parents": [parent]}
    ).json()["task"]["id"]
    accepted = client.patch(f"/api/tasks/{idea}", json={"status": "todo", "reason": "worth it"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "ready"  # accept picks ready: nothing holds it back
    moved = client.post(
        "/api/tasks/bulk", json={"ids": [later], "action": "status", "value": "ready"}
    )
    assert moved.json()["results"] == [{"id": later, "ok": True}]
    assert client.get(f"/api/tasks/{later}").json()["task"]["status"] == "todo"  # its parent waits
    detail = client.get(f"/api/tasks/{idea}").json()
    assert detail["comments"][-1]["body"] == "ACCEPTED: worth it"
    assert [e["kind"] for e in detail["events"]][-2:] == ["accepted", "commented"]
    audited = [e for e in board.audit_log(limit=20) if e.text.startswith("accept ")]
    assert {(e.user_id, e.outcome) for e in audited} == {("telegram:1", "allowed")}
    again = client.patch(f"/api/tasks/{idea}", json={"status": "todo"})
    assert again.status_code == 409  # ready → todo has no verb
    viewer = signed_in("telegram:2")
    refused = viewer.post("/api/tasks", json={"title": "x"})
    assert refused.status_code == 403


def test_config_and_detail_shapes(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:2")
    config = client.get("/api/config").json()
    assert config["statuses"][0] == "triage"
    assert "demo" in config["assignees"]
    task = board.create(Actor(name="alice"), title="x").task
    detail = client.get(f"/api/tasks/t{task.id}").json()
    assert set(detail) >= {"task", "parents", "children", "comments", "events", "runs", "log_tail"}
    assert detail["task"]["id"] == f"t{task.id}"
    assert (detail["task"]["host"], detail["task"]["label"]) == (None, None)


def test_the_detail_names_where_a_task_may_run(signed_in, board: Kanban) -> None:
    alice = Actor(name="alice")
    board.enroll_host(
        alice, name="build-2", labels=["gpu"], secret=secrets.token_hex(8), readmit=False
    )
    on_host = board.create(alice, title="on build-2", host="build-2").task
    on_label = board.create(alice, title="on a gpu", label="gpu").task
    client = signed_in("telegram:2")
    shown = [client.get(f"/api/tasks/{t.ref}").json()["task"] for t in (on_host, on_label)]
    assert [(t["host"], t["label"]) for t in shown] == [("build-2", None), (None, "gpu")]


def test_finished_columns_send_the_newest_cards_and_the_true_count(signed_in, board) -> None:
    alice = Actor(name="alice")
    made = [
        board.create(alice, title=f"d{n}", tenant="acme" if n % 2 else None).task for n in range(7)
    ]
    for task in made:
        board.complete(alice, task.id)
    client = signed_in("telegram:2")
    done = next(
        c for c in client.get("/api/board?finished=3").json()["columns"] if c["status"] == "done"
    )
    assert done["count"] == 7
    assert done["truncated"] is True
    assert [c["id"] for c in done["tasks"]] == [f"t{t.id}" for t in reversed(made)][:3]
    acme = client.get("/api/board?finished=3&tenant=acme").json()["columns"]
    assert next(c for c in acme if c["status"] == "done")["count"] == 3
    found = client.get("/api/board?finished=1&q=d0").json()["columns"]
    assert [c["id"] for c in next(c for c in found if c["status"] == "done")["tasks"]] == [
        f"t{made[0].id}"
    ]
    assert client.get("/api/board?finished=-1").status_code == 400


def test_cards_answers_the_named_cards_their_parents_and_the_counts(
    signed_in, board: Kanban
) -> None:
    alice = Actor(name="alice")
    parent = board.create(alice, title="parent", tenant="acme").task
    child = board.create(alice, title="child", parents=[parent.id]).task
    other = board.create(alice, title="elsewhere", tenant="other").task
    client = signed_in("telegram:2")
    data = client.get(f"/api/cards?ids=t{child.id}&tenant=acme").json()
    by_id = {c["id"]: c for c in data["cards"]}
    assert set(by_id) == {f"t{child.id}", f"t{parent.id}"}  # the parent's N/M counts the child
    assert by_id[f"t{parent.id}"]["children_total"] == 1
    assert by_id[f"t{child.id}"]["link_count"] == 1
    assert by_id[f"t{child.id}"]["shown"] is False  # no tenant: the acme filter hides it
    assert by_id[f"t{parent.id}"]["shown"] is True
    assert data["counts"] == {"ready": 1}  # counted as the filtered board counts
    assert data["gone"] == []
    whole = client.get("/api/board").json()
    shapes = {c["id"]: c for col in whole["columns"] for c in col["tasks"]}
    same = {k: v for k, v in by_id[f"t{parent.id}"].items() if k not in ("shown", "age_seconds")}
    assert same == {k: v for k, v in shapes[f"t{parent.id}"].items() if k != "age_seconds"}
    gone = client.get(f"/api/cards?ids=t{other.id},t99999").json()
    assert [c["id"] for c in gone["cards"]] == [f"t{other.id}"]
    assert gone["gone"] == ["t99999"]


def test_cards_refuses_a_missing_or_oversized_id_list(signed_in) -> None:
    client = signed_in("telegram:2")
    assert client.get("/api/cards").status_code == 400
    many = ",".join(f"t{n}" for n in range(1, 102))
    assert client.get(f"/api/cards?ids={many}").status_code == 400
    assert client.get("/api/cards?ids=nonsense").status_code == 404
