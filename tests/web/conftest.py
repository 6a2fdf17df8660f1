"""Fixtures for the web board: the app in-process on a real board, and signed-in clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from kanban_core import Kanban
from web import store
from web.app import create_app
from web.backend import WebBackend
from web.config import WebSettings
from web.server import build_backend

USERS = {
    "telegram:1": Role.OPERATOR,
    "telegram:2": Role.VIEWER,
    "telegram:3": Role.ADMIN,
    "slack:U4": Role.APPROVER,
}
BASE = "http://127.0.0.1:8787"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def executor(board: Kanban) -> Iterator[KernelExecutor]:
    pool = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
    yield pool
    pool.shutdown()


@pytest.fixture
def access() -> AccessPolicy:
    return AccessPolicy(users=USERS, console_role=Role.ADMIN)


@pytest.fixture
def web_settings() -> WebSettings:
    return WebSettings(enabled=True, max_body_bytes=64 * 1024)


@pytest.fixture
def backend(
    board: Kanban, executor: KernelExecutor, access: AccessPolicy, web_settings: WebSettings
) -> WebBackend:
    return build_backend(board, executor, access, web_settings, environ={})


@pytest.fixture
def app_client(backend: WebBackend) -> Iterator[TestClient]:
    with TestClient(create_app(backend), base_url=BASE, follow_redirects=False) as client:
        yield client


def make_link(board: Kanban, principal: str, ttl_s: int = 600) -> str:
    with board.db.transaction(write=True) as tx:
        return store.create_link(tx, principal, ttl_s=ttl_s)


def sign_in(client: TestClient, board: Kanban, principal: str) -> str:
    """Sign ``client`` in as ``principal`` through a login link; returns the CSRF token."""
    token = make_link(board, principal)
    page = client.get(f"/auth/link?token={token}")
    assert page.status_code == 200
    done = client.post("/auth/link", data={"token": token}, headers={"Origin": BASE})
    assert done.status_code == 303, done.text
    me = client.get("/api/me")
    assert me.status_code == 200
    csrf: str = me.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


@pytest.fixture
def signed_in(app_client: TestClient, board: Kanban) -> Callable[[str], TestClient]:
    """``signed_in("telegram:1")``: the client signed in as that user, CSRF header set."""

    def factory(principal: str) -> TestClient:
        sign_in(app_client, board, principal)
        return app_client

    return factory
