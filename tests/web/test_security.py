"""Deny by default: every route refuses without a session; CSRF, origin, roles, links, limits."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from kanban_core import Kanban
from tests.web.conftest import BASE, make_link, sign_in
from web import store
from web.app import routes
from web.gate import COOKIE, is_public

WRITES = ("POST", "PATCH", "DELETE", "PUT")


def _concrete(path: str) -> str:
    """A route's path with its parameters filled in."""
    return re.sub(r"\{[^}]+\}", "1", path)


def every_route() -> list[tuple[str, str]]:
    pairs = []
    for route in routes():
        if isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    pairs.append((method, _concrete(route.path)))
        elif isinstance(route, Mount):
            pairs.append(("GET", route.path + "/app.css"))
    return pairs


def write_routes() -> list[tuple[str, str]]:
    return [(m, p) for m, p in every_route() if m in WRITES and p.startswith("/api/")]


def test_the_route_list_is_what_the_app_serves(backend) -> None:
    """The enumeration below walks the app's own table, so a new route cannot be missed."""
    from web.app import create_app

    gate = create_app(backend)
    served = {getattr(r, "path", None) for r in gate.app.routes}  # type: ignore[attr-defined]
    assert served == {getattr(r, "path", None) for r in routes()}
    assert len(every_route()) > 20


@pytest.mark.parametrize(("method", "path"), every_route())
def test_every_route_refuses_without_a_session(app_client: TestClient, method, path) -> None:
    answer = app_client.request(method, path, json={})
    if is_public(path) or path == "/auth/link":
        # The sign-in page, assets and the link's own pages: nothing of the board.
        assert answer.status_code in (200, 401), answer.text
        assert "csrf" not in answer.text.lower()
        return
    if path.startswith("/api/"):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/json"
        assert set(answer.json()) == {"error"}
    else:
        assert answer.status_code == 303
        assert answer.headers["location"] == "/signin"


def test_a_forged_or_revoked_cookie_is_no_session(app_client, board: Kanban) -> None:
    app_client.cookies.set(COOKIE, "x" * 43, domain="127.0.0.1")
    assert app_client.get("/api/board").status_code == 401
    sign_in(app_client, board, "telegram:1")
    assert app_client.get("/api/board").status_code == 200
    with board.db.transaction(write=True) as tx:
        (session,) = store.sessions(tx)
        assert store.revoke(tx, session.id)
    assert app_client.get("/api/board").status_code == 401


def test_a_user_removed_from_access_loses_the_session(app_client, board, backend) -> None:
    sign_in(app_client, board, "telegram:1")
    object.__setattr__(backend.access, "users", {})
    assert app_client.get("/api/me").status_code == 401


@pytest.mark.parametrize(("method", "path"), write_routes())
def test_csrf_missing_or_wrong_is_403_and_changes_nothing(signed_in, board, method, path) -> None:
    client = signed_in("telegram:3")
    good = client.headers.pop("X-CSRF-Token")
    before = board.max_event_id()
    assert client.request(method, path, json={"title": "x"}).status_code == 403
    answer = client.request(method, path, json={"title": "x"}, headers={"X-CSRF-Token": "0" * 64})
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["error"]
    assert board.max_event_id() == before
    client.headers["X-CSRF-Token"] = good


def test_cross_origin_writes_are_refused(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:3")
    for origin in ("https://evil.example", "http://127.0.0.1:9999", "null"):
        answer = client.post("/api/tasks", json={"title": "x"}, headers={"Origin": origin})
        assert answer.status_code == 403
    cross_site = client.post(
        "/api/tasks", json={"title": "x"}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    assert board.list() == []
    same = client.post("/api/tasks", json={"title": "x"}, headers={"Origin": BASE})
    assert same.status_code == 201


def test_same_site_writes_are_refused_too(signed_in, board: Kanban) -> None:
    """A sibling subdomain shares the site but not the origin: deny by default (README)."""
    client = signed_in("telegram:3")
    served = {"Host": "board.example.org"}
    sibling = client.post(
        "/api/tasks",
        json={"title": "x"},
        headers={**served, "Origin": "http://wiki.example.org", "Sec-Fetch-Site": "same-site"},
    )
    assert sibling.status_code == 403
    assert sibling.json() == {"error": "cross-origin request refused"}
    # Even with the served origin in Origin, a browser saying "same-site" is refused.
    same_site = client.post(
        "/api/tasks",
        json={"title": "x"},
        headers={**served, "Origin": "http://board.example.org", "Sec-Fetch-Site": "same-site"},
    )
    assert same_site.status_code == 403
    assert same_site.json() == {
        "error": "same-site request refused (only the board's own pages may write)"
    }
    assert board.list() == []
    own = client.post(
        "/api/tasks",
        json={"title": "x"},
        headers={**served, "Origin": "http://board.example.org", "Sec-Fetch-Site": "same-origin"},
    )
    assert own.status_code == 201


@pytest.mark.parametrize(("method", "path"), write_routes())
def test_a_viewer_gets_403_on_every_write(signed_in, board, method, path) -> None:
    client = signed_in("telegram:2")
    answer = client.request(method, path, json={"title": "x", "body": "y"})
    if path == "/api/logout":
        assert answer.status_code == 200  # leaving is always allowed
        return
    assert answer.status_code == 403, (path, answer.text)
    assert board.list() == []


def test_an_operator_is_refused_admin_verbs_and_it_is_audited(signed_in, board) -> None:
    client = signed_in("telegram:1")
    assert client.post("/api/dispatch").status_code == 403
    task = client.post("/api/tasks", json={"title": "x"}).json()["task"]
    archived = client.patch(f"/api/tasks/{task['id']}", json={"status": "archived"})
    assert archived.status_code == 403
    refused = [e for e in board.audit_log(limit=10) if e.outcome == "refused"]
    assert {e.text for e in refused} == {"dispatch --json", f"archive {task['id'][1:]}"}


def test_a_link_works_once(app_client: TestClient, board: Kanban) -> None:
    token = make_link(board, "telegram:1")
    assert app_client.post("/auth/link", data={"token": token}).status_code == 303
    app_client.cookies.clear()
    again = app_client.post("/auth/link", data={"token": token})
    assert again.status_code == 401
    assert COOKIE not in again.cookies


def test_an_expired_or_unknown_link_is_refused(app_client: TestClient, board: Kanban) -> None:
    expired = make_link(board, "telegram:1", ttl_s=-1)
    assert app_client.post("/auth/link", data={"token": expired}).status_code == 401
    assert app_client.post("/auth/link", data={"token": "A" * 43}).status_code == 401
    assert app_client.get("/auth/link?token=<script>").status_code == 401
    assert app_client.get("/api/me").status_code == 401


def test_opening_a_link_does_not_spend_it(app_client: TestClient, board: Kanban) -> None:
    """Chat platforms fetch links to preview them; only the confirmation signs in."""
    token = make_link(board, "telegram:1")
    for _ in range(3):
        page = app_client.get(f"/auth/link?token={token}")
        assert page.status_code == 200
        assert 'id="signin-confirm"' in page.text
    assert app_client.post("/auth/link", data={"token": token}).status_code == 303


def test_a_cross_origin_sign_in_is_refused(app_client: TestClient, board: Kanban) -> None:
    token = make_link(board, "telegram:1")
    forced = app_client.post(
        "/auth/link", data={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert forced.status_code == 403
    assert app_client.post("/auth/link", data={"token": token}).status_code == 303


def test_fixation_is_impossible(app_client: TestClient, board: Kanban) -> None:
    planted = "attacker-chosen-session-id-000000000000000"
    app_client.cookies.set(COOKIE, planted, domain="127.0.0.1")
    sign_in(app_client, board, "telegram:1")
    issued = app_client.cookies.get(COOKIE)
    assert issued
    assert issued != planted
    # A session the browser already had is ended by the new sign-in, not carried over.
    old = issued
    sign_in(app_client, board, "telegram:3")
    assert app_client.cookies.get(COOKIE) != old
    app_client.cookies.set(COOKIE, old, domain="127.0.0.1")
    assert app_client.get("/api/me").status_code == 401


def test_the_cookie_is_httponly_strict_and_expires(app_client: TestClient, board) -> None:
    token = make_link(board, "telegram:1")
    answer = app_client.post("/auth/link", data={"token": token})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    assert "secure" not in cookie  # plain http on loopback; Secure under TLS (test_config)


def test_unknown_ids_are_404(signed_in) -> None:
    client = signed_in("telegram:3")
    assert client.get("/api/tasks/t999").status_code == 404
    assert client.get("/api/tasks/nonsense").status_code == 404
    assert client.patch("/api/tasks/t999", json={"title": "x"}).status_code == 404
    assert client.post("/api/tasks/t999/comments", json={"body": "x"}).status_code == 404
    assert client.post("/api/links", json={"parent": "t998", "child": "t999"}).status_code == 404
    assert client.post("/api/permissions/p999/allow", json={}).status_code == 404
    assert client.post("/api/tasks", json={"title": "x", "parents": ["t999"]}).status_code == 404
    assert client.get("/api/nothing-here").status_code == 404


def test_oversized_bodies_are_413_and_change_nothing(signed_in, board, web_settings) -> None:
    client = signed_in("telegram:1")
    huge = {"title": "x", "body": "y" * (web_settings.max_body_bytes + 1)}
    assert client.post("/api/tasks", json=huge).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b'{"title": "x", "body": "'
        for _ in range(web_settings.max_body_bytes // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    streamed = client.post(
        "/api/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert board.list() == []


def test_bad_input_is_a_json_400(signed_in, board: Kanban) -> None:
    client = signed_in("telegram:1")
    # Shapes the web checks are 400; values the kernel refuses come back with its one line.
    for body in (
        {"title": 5},
        {},
        {"title": "x", "priority": "1"},
        {"title": "x", "parents": "t1"},
    ):
        answer = client.post("/api/tasks", json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert set(answer.json()) == {"error"}
    for body in ({"title": ""}, {"title": "a\nb"}, {"title": "x", "assignee": "a b"}):
        answer = client.post("/api/tasks", json=body)
        assert answer.status_code in (400, 409), (body, answer.text)
        assert "\n" not in answer.json()["error"]
    bad_json = client.post("/api/tasks", content=b"{", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400
    assert board.list() == []


XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "[x](javascript:alert(1))",
]


@pytest.mark.parametrize("payload", XSS)
def test_xss_payloads_come_back_as_json_data(signed_in, board: Kanban, payload: str) -> None:
    client = signed_in("telegram:1")
    ref = client.post("/api/tasks", json={"title": payload, "body": payload, "tenant": "t"}).json()[
        "task"
    ]["id"]
    client.post(f"/api/tasks/{ref}/comments", json={"body": payload})
    for answer in (client.get("/api/board"), client.get(f"/api/tasks/{ref}")):
        assert answer.headers["content-type"] == "application/json"
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    detail = client.get(f"/api/tasks/{ref}").json()
    assert detail["task"]["title"] == payload
    assert detail["comments"][0]["body"] == payload


def test_a_worker_identity_is_never_taken_from_the_request(signed_in, board) -> None:
    client = signed_in("telegram:1")
    answer = client.post(
        "/api/tasks", json={"title": "x"}, headers={"X-Kanban-User": "admin", "KANBAN_USER": "x"}
    )
    task = board.get(int(answer.json()["task"]["id"][1:]))
    assert task.created_by == "1 (telegram:1)"


def test_a_huge_sign_in_body_is_413_without_a_session(app_client, web_settings) -> None:
    answer = app_client.post(
        "/auth/link",
        content=b"token=" + b"A" * (web_settings.max_body_bytes + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413


def test_websockets_are_refused(app_client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, app_client.websocket_connect("/api/events"):
        pass
    assert refused.value.code == 1008
