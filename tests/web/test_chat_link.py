"""``/web`` from a chat: a link only in a private chat, for the sender, that signs them in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from gateway.access import AccessPolicy, Role
from gateway.executor import KernelExecutor
from gateway.messages import ChatRef, ChatUser, Document, IncomingMessage, Paragraph
from gateway.router import Router
from gateway.surfaces import SurfaceContext
from kanban_core import Kanban
from tests.support.network import closed_port
from tests.web.conftest import USERS
from web.app import create_app
from web.surface import WebSurface, create

pytestmark = pytest.mark.anyio


def _text(document: Document) -> str:
    return "\n".join(b.text for b in document.blocks if isinstance(b, Paragraph))


@pytest.fixture
def surface(
    board: Kanban, executor: KernelExecutor, access: AccessPolicy, tmp_path
) -> Iterator[WebSurface]:
    config = tmp_path / "config.yaml"
    config.write_text(f"web:\n  enabled: true\n  port: {closed_port()}\n", encoding="utf-8")
    context = SurfaceContext(
        board=board,
        executor=executor,
        access=access,
        environ={},
        config_file=config,
        nudge=lambda: None,
    )
    made = create(context)
    assert made is not None
    yield made
    made._sock.close()


def _message(text: str = "", *, private: bool, user: str = "1") -> IncomingMessage:
    return IncomingMessage(
        chat=ChatRef("telegram", user if private else "-100", None),
        user=ChatUser("telegram", user, "Ada"),
        text=text,
        delivery_id=f"d-{user}-{private}-{text}",
        command="web",
        private=private,
    )


def test_disabled_means_no_surface(board, executor, access, tmp_path) -> None:
    context = SurfaceContext(board, executor, access, {}, tmp_path / "none.yaml", lambda: None)
    assert create(context) is None


async def test_a_group_is_refused_and_gets_no_link(surface, board, executor, access) -> None:
    router = Router(board, access, executor, chat_commands=surface.chat_commands)
    reply = await router.handle(_message(private=False))
    assert reply is not None
    assert "private chat" in _text(reply)
    assert "token=" not in _text(reply)
    # Audited like any chat command (the link itself never is).
    assert [e.text for e in board.audit_log(limit=5)] == ["/web"]


async def test_a_private_chat_gets_a_link_that_signs_the_sender_in(
    surface, board, executor, access
) -> None:
    router = Router(board, access, executor, chat_commands=surface.chat_commands)
    reply = await router.handle(_message(private=True))
    assert reply is not None
    url = _text(reply).splitlines()[0]
    assert "/auth/link?token=" in url
    assert "as operator" in _text(reply)
    token = url.split("token=", 1)[1]
    with TestClient(create_app(surface.backend), follow_redirects=False) as client:
        assert client.post("/auth/link", data={"token": token}).status_code == 303
        me = client.get("/api/me").json()
    assert (me["user"], me["role"]) == ("telegram:1", "operator")
    assert all("token" not in (e.detail or "") + e.text for e in board.audit_log(limit=5))


async def test_strangers_get_no_link(surface, board, executor, access) -> None:
    router = Router(board, access, executor, chat_commands=surface.chat_commands)
    reply = await router.handle(_message(private=True, user="999"))
    assert reply is not None
    assert "not allowed" in _text(reply)


async def test_web_followed_by_words_is_still_a_repository_command(
    surface, board, executor, access
) -> None:
    router = Router(board, access, executor, chat_commands=surface.chat_commands)
    reply = await router.handle(_message("diff", private=True))
    assert reply is not None
    assert "token=" not in _text(reply)


def test_roles_are_the_access_roles() -> None:
    assert USERS["telegram:1"] is Role.OPERATOR
