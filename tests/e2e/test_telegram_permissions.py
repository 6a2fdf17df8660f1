"""An ACP agent asks, the phone answers: the real gateway, dispatcher and supervisor, the fake
ACP agent on the official SDK, and the real python-telegram-bot against the fake Bot API.

Each scenario is one way a person answers (or does not answer) a card: once, with a reason, for
the rest of the run, not in time, two at once, after a gateway restart, or as a viewer. The
harness is tests/e2e/acp_chat.py (config.example.yaml as a user copies it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kanban_core import PermissionStatus
from kanban_core.board.domain import TaskId
from tests.e2e import test_telegram as telegram_e2e
from tests.e2e.acp_chat import (
    ASK_THEN_COMPLETE,
    BOB,
    CAROL,
    WAIT,
    Gateway,
    cards,
    complete,
    configure,
    recorded,
    the_card,
    told,
)
from tests.support.fake_telegram import ALICE, ALICE_ID, TOKEN, FakeTelegram

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

anyio_backend = telegram_e2e.anyio_backend
_ptb_timedelta = telegram_e2e._ptb_timedelta
fake = telegram_e2e.fake
#: A group chat where Alice and Carol (both operators) see the same card.
GROUP = -1_000_555


class Scene:
    """One gateway on its own home, the agent's record directory, and the fake Bot API."""

    def __init__(self, tmp_path: Path, fake: FakeTelegram) -> None:
        self.home, self.state = tmp_path / "home", tmp_path / "state"
        self.home.mkdir()
        self.state.mkdir()
        self.fake = fake
        self.gateway = Gateway(tmp_path, self.home)

    def configure(self, steps: list[dict[str, Any]], **kwargs: Any) -> None:
        configure(self.home, self.fake, self.state, steps, **kwargs)

    async def recorded(self, name: str) -> dict[str, Any]:
        """What the agent recorded under ``name``, once it has (the gateway polls every second)."""
        found = await self.fake.wait_for(lambda: recorded(self.state, name), WAIT)
        assert found is not None
        return found

    async def told(self, needle: str, chat_id: int = ALICE_ID) -> str:
        return await told(self.fake, needle, chat_id)


@pytest.fixture
async def scene(tmp_path: Path, fake: FakeTelegram) -> AsyncIterator[Scene]:
    made = Scene(tmp_path, fake)
    try:
        yield made
    finally:
        await made.gateway.kill()
    assert TOKEN not in made.gateway.log.read_text(encoding="utf-8")


async def test_allow_once_reaches_the_agent_and_the_chat_hears_the_completion(scene):
    scene.configure(ASK_THEN_COMPLETE)
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    card = await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    await scene.fake.press(card, card.callback_data[0])
    assert await scene.recorded("answer") == {"outcome": "yes-1"}
    meta = await scene.recorded("answer_meta")
    assert meta["kanban"]["decision"] == "allow_once"
    assert (await scene.told("Allowed p1 once")).count("\n") == 0
    await scene.told("✔ t1")
    assert len(cards(scene.fake)) == 1


async def test_a_typed_deny_with_a_reason_tells_the_agent_why(scene):
    scene.configure(ASK_THEN_COMPLETE)
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    await scene.fake.push_text("/deny p1 not on a Friday")
    assert "not on a Friday" in await scene.told("Denied p1")
    assert await scene.recorded("answer") == {"outcome": "no-1"}
    meta = await scene.recorded("answer_meta")
    assert meta["kanban"]["decision"] == "deny"
    assert "not on a Friday" in meta["kanban"]["message"]
    await scene.told("✔ t1")  # the agent went on without it


async def test_an_answer_typed_elsewhere_settles_the_card_in_place(scene):
    scene.configure(ASK_THEN_COMPLETE)
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    card = await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    assert card.callback_data
    await scene.fake.push_text("/deny p1 not on a Friday")
    assert await scene.recorded("answer") == {"outcome": "no-1"}
    await scene.fake.wait_for(lambda: card.keyboard is None, WAIT)
    assert "⛔ p1 denied by " in card.text
    assert card.text.endswith("not on a Friday")
    await scene.told("✔ t1")
    assert len(cards(scene.fake)) == 1


async def test_allow_for_the_run_grants_the_next_matching_request_without_a_card(scene):
    ask = {"kind": "execute", "title": "Bash"}
    scene.configure(
        [
            {"ask": {**ask, "input": {"command": "make deploy"}}, "record": "first"},
            {"ask": {**ask, "input": {"command": "make smoke-test"}}, "record": "second"},
            complete(),
        ]
    )
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    card = await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    await scene.fake.press(card, card.callback_data[1])
    await scene.told("Allowed p1 for the rest of its run")
    assert await scene.recorded("first") == {"outcome": "yes-1"}
    assert await scene.recorded("second") == {"outcome": "yes-1"}
    await scene.told("✔ t1")
    assert len(cards(scene.fake)) == 1
    with scene.gateway.board() as board:
        assert board.open_permissions(None) == []
        assert [e.kind for e in board.detail(TaskId(1)).events].count("permission_requested") == 1


async def test_an_unanswered_request_expires_the_agent_is_told_no_and_so_is_the_chat(scene):
    scene.configure(ASK_THEN_COMPLETE, edit=lambda doc: doc["permissions"].update(ttl_seconds=10))
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    card = await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    assert await scene.recorded("answer") == {"outcome": "no-1"}
    meta = await scene.recorded("answer_meta")
    assert "nobody answered p1 in time" in meta["kanban"]["message"]
    # The card itself says so, its buttons gone: no second message about it.
    await scene.fake.wait_for(lambda: card.keyboard is None, WAIT)
    assert card.text.startswith("🔐 t1 asked to run:")
    assert "⌛ nobody answered p1 in time; the agent was told no" in card.text
    assert [m for m in scene.fake.sent_to(ALICE_ID) if "nobody answered" in m.text] == [card]
    assert [edit[1] for edit in scene.fake.edits] == [card.message_id]
    await scene.told("✔ t1")
    # With no button left to press, a typed answer is refused in one line, and changes nothing.
    await scene.fake.push_text("/allow p1")
    assert (await scene.told("p1 expired unanswered")).count("\n") == 0
    with scene.gateway.board() as board:
        assert board.permission("p1").status is PermissionStatus.EXPIRED


async def test_two_people_pressing_at_once_the_first_wins_and_the_second_is_told_who(scene):
    scene.configure(ASK_THEN_COMPLETE)
    await scene.gateway.start(scene.fake)
    scene.fake.add_chat(GROUP, "group")
    await scene.fake.push_text(
        '/kanban create "deploy it" --assignee asker', chat_id=GROUP, chat_type="group"
    )
    card = await scene.fake.wait_for(lambda: the_card(scene.fake, GROUP), WAIT)
    # Both presses arrive in one getUpdates batch: Carol denies, Alice allows.
    await scene.fake.push(
        scene.fake.press_update(card, card.callback_data[2], user=CAROL),
        scene.fake.press_update(card, card.callback_data[0], user=ALICE),
    )
    await scene.told("Denied p1", GROUP)
    refused = await scene.told("p1 was already denied by", GROUP)
    assert "telegram:8" in refused, refused
    assert await scene.recorded("answer") == {"outcome": "no-1"}
    await scene.told("✔ t1", GROUP)
    with scene.gateway.board() as board:
        kinds = [e.kind for e in board.detail(TaskId(1)).events]
        assert kinds.count("permission_answered") == 1
        assert board.permission("p1").status is PermissionStatus.DENIED


async def test_the_card_from_before_a_gateway_restart_still_answers_and_a_viewer_is_refused(
    scene,
):
    scene.configure(ASK_THEN_COMPLETE)
    await scene.gateway.start(scene.fake)
    await scene.fake.push_text('/kanban create "deploy it" --assignee asker')
    card = await scene.fake.wait_for(lambda: the_card(scene.fake), WAIT)
    assert "make deploy" in card.text
    allow = card.callback_data[0]
    ref = allow.split()[-1]
    assert card.callback_data == [
        f"k:kanban allow {ref}",
        f"k:kanban allow {ref} --run",
        f"k:kanban deny {ref}",
    ]

    # The gateway goes away and comes back while the agent waits for its answer.
    assert await scene.gateway.stop() == 0
    await scene.gateway.start(scene.fake)
    assert recorded(scene.state, "answer") is None

    await scene.fake.press(card, allow, user=BOB)
    refusal = await scene.told("needs the operator role")
    assert refusal.count("\n") == 0, refusal
    assert recorded(scene.state, "answer") is None
    with scene.gateway.board() as board:
        assert board.permission(ref).status is PermissionStatus.PENDING

    await scene.fake.press(card, allow)
    await scene.told("✔ t1")
    assert recorded(scene.state, "answer") == {"outcome": "yes-1"}
    assert await scene.gateway.stop() == 0
    with scene.gateway.board() as board:
        request = board.permission(ref)
        assert request.status is PermissionStatus.ALLOWED
        assert request.answered_by is not None
        assert str(ALICE_ID) in request.answered_by
