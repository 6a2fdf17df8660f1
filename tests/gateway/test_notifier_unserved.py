"""Notifications for a platform no running gateway serves become loud dead letters in time."""

from __future__ import annotations

import logging

import pytest

from gateway.messages import ChatRef
from gateway.notifier import UNSERVED_AFTER_S
from kanban_core import Actor
from kanban_core.commands import CommandContext, run_command
from kanban_core.storage import Query
from tests.gateway import test_notifier as notifier_tests
from tests.gateway.support import InMemoryAdapter, rows, wait_until

pytestmark = pytest.mark.anyio

subscribe = notifier_tests.subscribe
notifier_for, running = notifier_tests.notifier_for, notifier_tests.running
_AGE = Query(
    "test_age_deliveries",
    "UPDATE notify_deliveries SET next_try_ms = next_try_ms - :ms, "
    "claim_expires_ms = claim_expires_ms - :ms WHERE platform = :platform",
)
_CLAIM_AS_DEAD_SENDER = Query(
    "test_claim_as_dead_sender",
    "UPDATE notify_deliveries SET status = 'sending', claimed_by = 'gone', "
    "claim_expires_ms = {now} + 1000 WHERE platform = :platform",
)


def by_platform(board, task_id) -> dict[str, tuple[str, str | None]]:
    found = rows(
        board,
        "SELECT platform, status, last_error FROM notify_deliveries WHERE task_id = :task_id",
        task_id=task_id,
    )
    return {r[0]: (r[1], r[2]) for r in found}


def age(board, platform: str, seconds: float) -> None:
    with board.db.transaction(write=True) as tx:
        tx.execute(_AGE, {"ms": int(seconds * 1000), "platform": platform})


@pytest.fixture
def finished(board, operator, make_task, subscribe):
    """A done task whose notification goes to telegram, discord, slack and a console."""
    task = make_task(title="nightly build")
    for chat in (
        ChatRef("telegram", "100"),
        ChatRef("discord", "200"),
        ChatRef("slack", "C1"),
        ChatRef("console", "local"),
    ):
        subscribe(task, chat)
    board.complete(operator, task.id)
    return task


async def test_unserved_notifications_die_after_the_window_and_served_ones_do_not(
    board, executor, finished, caplog
):
    age(board, "telegram", UNSERVED_AFTER_S + 60)  # served here, however late
    age(board, "discord", UNSERVED_AFTER_S + 60)  # enabled nowhere for over an hour
    age(board, "console", UNSERVED_AFTER_S - 60)  # unserved, but not for long yet
    # A gateway that served slack died mid-send long ago; nobody released its claim.
    with board.db.transaction(write=True) as tx:
        tx.execute(_CLAIM_AS_DEAD_SENDER, {"platform": "slack"})
    age(board, "slack", UNSERVED_AFTER_S + 60)
    notifier = notifier_for(board, executor, InMemoryAdapter("telegram"))

    with caplog.at_level(logging.ERROR):
        expired = await notifier.expire_unserved()

    assert sorted(platform for _, platform in expired) == ["discord", "slack"]
    states = by_platform(board, finished.id)
    assert states["telegram"] == ("pending", None)
    assert states["console"] == ("pending", None)
    for platform in ("discord", "slack"):
        status, error = states[platform]
        assert status == "dead"
        assert error == (
            f"no running gateway delivers to {platform} (not configured or not enabled) for 60 min"
        )
    assert sum("DEAD LETTER" in r.getMessage() for r in caplog.records) == 2
    assert await notifier.expire_unserved() == []  # nothing twice


async def test_the_running_notifier_sweeps_and_status_lists_the_dead_letter(
    board, executor, finished
):
    age(board, "discord", UNSERVED_AFTER_S + 60)
    adapter = InMemoryAdapter("telegram")
    async with running(notifier_for(board, executor, adapter)):
        await wait_until(
            lambda: by_platform(board, finished.id)["discord"][0] == "dead",
            "the discord dead letter",
        )
        await wait_until(lambda: adapter.sent, "the telegram message")

    ctx = CommandContext(actor=Actor(name="ops"), open_board=lambda _url: board)
    text = "\n".join(
        str(getattr(block, "text", "")) for block in run_command(["status"], ctx).blocks
    )
    assert f"dead: completed of t{finished.id} to discord:200 after 0 attempts: no running" in text
