"""The notifier against the real outbox, with a fake chat platform that can be told to fail."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from gateway.config import NotifierSettings
from gateway.errors import AdapterError, AdapterRateLimited, AdapterRejected
from gateway.messages import ChatRef
from gateway.notifier import Notifier
from kanban_core import EventKind, RunOutcome, Task, TaskId
from kanban_core.board.events import append
from kanban_core.board.recovery import FailurePolicy
from tests.gateway.support import InMemoryAdapter, rows, wait_until

pytestmark = pytest.mark.anyio

#: Fast polling and no backoff, so retries happen at once; tests that need a delay set one.
FAST = NotifierSettings(poll_ms=10, max_attempts=5, backoff_base_s=0, backoff_cap_s=0)
CHAT = ChatRef("telegram", "100")


@pytest.fixture
def subscribe(board, operator) -> Callable[..., None]:
    def factory(task: Task, chat: ChatRef = CHAT) -> None:
        board.subscribe(
            operator,
            task.id,
            platform=chat.platform,
            chat_id=chat.chat_id,
            thread_id=chat.thread_id,
        )

    return factory


@asynccontextmanager
async def running(notifier: Notifier) -> AsyncIterator[Notifier]:
    """Run the notifier in the background for the duration of a ``with`` block."""
    stop = asyncio.Event()
    task = asyncio.create_task(notifier.run(stop))
    try:
        yield notifier
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def notifier_for(board, executor, *adapters: InMemoryAdapter, settings=FAST, claimer="test"):
    return Notifier(board, {a.name: a for a in adapters}, executor, settings, claimer=claimer)


def deliveries(board, task_id: TaskId) -> list[tuple[str, int, str | None, str | None]]:
    """(status, attempts, claimed_by, last_error) of a task's delivery rows, oldest first."""
    return [
        (r[0], int(r[1]), r[2], r[3])
        for r in rows(
            board,
            "SELECT status, attempts, claimed_by, last_error FROM notify_deliveries "
            "WHERE task_id = :task_id ORDER BY id",
            task_id=task_id,
        )
    ]


def fail_run(board, operator, task: Task, outcome: RunOutcome, error: str, *, limit: int = 3):
    claim = board.claim(operator, task.id)
    assert claim is not None
    board.record_failure(operator, task.id, claim.run_id, outcome, error, FailurePolicy(limit))


# -- what is said -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("completed", "completed by @demo: wrote the report"),
        # an operator's block names the operator, not the task's agent
        ("blocked", "blocked by alice: need the staging password"),
        ("crashed", "crashed by @demo: segfault in the agent"),
        ("timed_out", "timed out by @demo: exceeded its max runtime of 60s"),
        ("gave_up", "gave up after 1 failed attempts: segfault in the agent — unblock it to retry"),
    ],
)
async def test_each_terminal_event_reaches_a_subscribed_chat(
    board, operator, executor, make_task, subscribe, kind, expected
):
    task = make_task(title="nightly report", assignee="demo")
    subscribe(task, ChatRef("telegram", "100", "7"))
    if kind == "completed":
        board.complete(operator, task.id, summary="wrote the report\nand a second line")
    elif kind == "blocked":
        board.block(operator, task.id, "need the staging password")
    elif kind == "crashed":
        fail_run(board, operator, task, RunOutcome.CRASHED, "segfault in the agent")
    elif kind == "timed_out":
        fail_run(board, operator, task, RunOutcome.TIMED_OUT, "exceeded its max runtime of 60s")
    else:
        fail_run(board, operator, task, RunOutcome.CRASHED, "segfault in the agent", limit=1)
    adapter = InMemoryAdapter()
    async with running(notifier_for(board, executor, adapter)):
        await wait_until(
            lambda: any(s.lines[1] == expected for s in adapter.sent), f"the {kind} message"
        )
    sent = next(s for s in adapter.sent if s.lines[1] == expected)
    icon = {"completed": "✔", "blocked": "⏸", "crashed": "✖", "timed_out": "⏱", "gave_up": "✖"}
    assert sent.lines == [f"{icon[kind]} t{task.id} nightly report", expected]
    assert sent.chat == ChatRef("telegram", "100", "7")
    assert {d[0] for d in deliveries(board, task.id)} == {"sent"}


async def test_a_flaky_platform_gets_the_message_exactly_once(
    board, operator, executor, make_task, subscribe
):
    task = make_task(title="flaky")
    subscribe(task)
    board.complete(operator, task.id, summary="done")
    adapter = InMemoryAdapter(script=[AdapterError("502 bad gateway"), AdapterError("timeout")])
    async with running(notifier_for(board, executor, adapter)):
        await wait_until(lambda: deliveries(board, task.id)[0][0] == "sent", "the delivery")
    assert len(adapter.calls) == 3
    assert [s.lines[0] for s in adapter.sent] == [f"✔ t{task.id} flaky"]
    assert deliveries(board, task.id) == [("sent", 3, None, "timeout")]


async def test_a_failed_send_backs_off_exponentially(
    board, operator, executor, make_task, subscribe
):
    task = make_task()
    subscribe(task)
    board.complete(operator, task.id)
    adapter = InMemoryAdapter(script=[AdapterError("down")] * 2)
    settings = NotifierSettings(poll_ms=10, max_attempts=5, backoff_base_s=1, backoff_cap_s=600)
    notifier = notifier_for(board, executor, adapter, settings=settings)
    async with running(notifier):
        await wait_until(lambda: deliveries(board, task.id)[0][0] == "sent", "the delivery")
    first, second, third = adapter.calls
    assert second - first >= 0.9  # 1 s after the first failure
    assert third - second >= 1.9  # 2 s after the second


async def test_rate_limited_sends_are_retried_after_the_platforms_delay(
    board, operator, executor, make_task, subscribe
):
    task = make_task()
    subscribe(task)
    board.complete(operator, task.id)
    adapter = InMemoryAdapter(script=[AdapterRateLimited(0.05)])
    slow = NotifierSettings(poll_ms=10, max_attempts=5, backoff_base_s=600, backoff_cap_s=600)
    async with running(notifier_for(board, executor, adapter, settings=slow)):
        # With a 600 s backoff, only the platform's retry_after can explain a quick retry.
        await wait_until(lambda: len(adapter.sent) == 1, "the retried send", within=10)
    first, second = adapter.calls
    assert second - first >= 0.04
    assert deliveries(board, task.id)[0][:2] == ("sent", 2)


async def test_a_rejected_send_is_a_loud_dead_letter(
    board, operator, executor, make_task, subscribe, caplog
):
    task = make_task(title="gone chat")
    subscribe(task)
    board.complete(operator, task.id)
    adapter = InMemoryAdapter(script=[AdapterRejected("chat not found")])
    with caplog.at_level(logging.WARNING, logger="gateway.notifier"):
        async with running(notifier_for(board, executor, adapter)):
            await wait_until(lambda: deliveries(board, task.id)[0][0] == "dead", "a dead letter")
    assert len(adapter.calls) == 1
    assert adapter.sent == []
    errors = [
        r for r in caplog.records if r.name == "gateway.notifier" and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 1
    assert "DEAD LETTER" in errors[0].getMessage()
    assert "chat not found" in errors[0].getMessage()
    (dead,) = [d for d in board.dead_letters() if d["task_id"] == f"t{task.id}"]
    assert (dead["platform"], dead["chat_id"], dead["kind"], dead["attempts"]) == (
        "telegram",
        "100",
        "completed",
        1,
    )
    assert "chat not found" in dead["last_error"]


async def test_a_send_that_keeps_failing_dies_after_max_attempts(
    board, operator, executor, make_task, subscribe, caplog
):
    task = make_task()
    subscribe(task)
    board.complete(operator, task.id)
    adapter = InMemoryAdapter(script=[AdapterError("still down")] * 10)
    settings = NotifierSettings(poll_ms=10, max_attempts=3, backoff_base_s=0, backoff_cap_s=0)
    with caplog.at_level(logging.WARNING, logger="gateway.notifier"):
        async with running(notifier_for(board, executor, adapter, settings=settings)):
            await wait_until(lambda: deliveries(board, task.id)[0][0] == "dead", "a dead letter")
    assert len(adapter.calls) == 3
    assert deliveries(board, task.id) == [("dead", 3, None, "still down")]
    levels = [r.levelname for r in caplog.records if r.name == "gateway.notifier"]
    assert levels == ["WARNING", "WARNING", "ERROR"]
    assert any(d["task_id"] == f"t{task.id}" for d in board.dead_letters())


async def test_an_unexpected_adapter_exception_is_retried_not_fatal(
    board, operator, executor, make_task, subscribe, caplog
):
    task = make_task()
    subscribe(task)
    board.complete(operator, task.id)
    adapter = InMemoryAdapter(script=[RuntimeError("a bug in the adapter")])
    with caplog.at_level(logging.ERROR, logger="gateway.notifier"):
        async with running(notifier_for(board, executor, adapter)):
            await wait_until(lambda: len(adapter.sent) == 1, "the retried send")
    assert deliveries(board, task.id)[0][:2] == ("sent", 2)
    (logged,) = [r for r in caplog.records if "failed to send" in r.getMessage()]
    assert logged.exc_info is not None  # with the traceback, for whoever fixes the adapter


# -- who is told --------------------------------------------------------------------------------


async def test_two_subscribers_get_one_message_each(
    board, operator, executor, make_task, subscribe
):
    task = make_task(title="shared")
    subscribe(task, ChatRef("telegram", "100"))
    subscribe(task, ChatRef("telegram", "200", "3"))
    board.block(operator, task.id, "waiting")
    adapter = InMemoryAdapter()
    async with running(notifier_for(board, executor, adapter)):
        await wait_until(lambda: len(adapter.sent) >= 2, "two messages")
    assert sorted((s.chat.chat_id, s.chat.thread_id) for s in adapter.sent) == [
        ("100", None),
        ("200", "3"),
    ]
    assert all(
        s.lines == [f"⏸ t{task.id} shared", "blocked by alice: waiting"] for s in adapter.sent
    )
    assert [d[:2] for d in deliveries(board, task.id)] == [("sent", 1), ("sent", 1)]


async def test_subscriptions_end_when_the_task_is_done(
    board, operator, executor, make_task, subscribe
):
    task = make_task(title="finite")
    subscribe(task)
    board.block(operator, task.id, "first")
    board.unblock(operator, task.id)
    board.complete(operator, task.id, summary="all done")
    assert board.subscriptions(task.id) == []
    # A terminal event after the end (written below the API) finds nobody to tell.
    with board.db.transaction(write=True) as tx:
        append(tx, task.id, EventKind.BLOCKED, {"reason": "after the end"})
    adapter = InMemoryAdapter()
    async with running(notifier_for(board, executor, adapter)):
        await wait_until(lambda: len(adapter.sent) >= 2, "the two messages")
        await wait_until(
            lambda: all(d[0] == "sent" for d in deliveries(board, task.id)), "all marked sent"
        )
    assert [s.lines[1] for s in adapter.sent] == ["blocked by alice: first", "completed: all done"]
    assert len(deliveries(board, task.id)) == 2


async def test_a_sender_killed_between_claim_and_send_is_covered_by_the_next(
    board, operator, executor, make_task, subscribe
):
    task = make_task(title="orphaned")
    subscribe(task)
    board.complete(operator, task.id)
    # The old gateway claims and dies before sending or marking anything.
    (claimed,) = board.claim_deliveries(platform="telegram", claimer="old", lease_ms=1)
    assert deliveries(board, task.id) == [("sending", 1, "old", None)]
    adapter = InMemoryAdapter()
    async with running(notifier_for(board, executor, adapter, claimer="new")):
        await wait_until(lambda: len(adapter.sent) == 1, "the orphaned message")
        await wait_until(lambda: deliveries(board, task.id)[0][0] == "sent", "marked sent")
    assert adapter.sent[0].lines[0] == f"✔ t{task.id} orphaned"
    assert deliveries(board, task.id) == [("sent", 2, None, None)]
    # The old sender coming back to life cannot mark what is no longer its claim.
    assert board.delivery_sent(claimed.id, claimer="old") is False


async def test_platforms_without_an_adapter_are_left_alone(
    board, operator, executor, make_task, subscribe
):
    task = make_task()
    subscribe(task, ChatRef("telegram", "100"))
    subscribe(task, ChatRef("discord", "200"))
    board.complete(operator, task.id)
    adapter = InMemoryAdapter("telegram")

    def by_platform() -> dict[str, tuple[str, int, str | None]]:
        found = rows(
            board,
            "SELECT platform, status, attempts, claimed_by FROM notify_deliveries "
            "WHERE task_id = :task_id",
            task_id=task.id,
        )
        return {r[0]: (r[1], int(r[2]), r[3]) for r in found}

    async with running(notifier_for(board, executor, adapter)):
        await wait_until(lambda: by_platform()["telegram"][0] == "sent", "the telegram message")
    assert by_platform() == {"telegram": ("sent", 1, None), "discord": ("pending", 0, None)}
    assert [s.chat for s in adapter.sent] == [ChatRef("telegram", "100")]


# -- latency ------------------------------------------------------------------------------------


async def test_a_nudge_delivers_at_once_without_waiting_for_the_poll(
    board, operator, executor, make_task, subscribe
):
    task = make_task()
    subscribe(task)
    adapter = InMemoryAdapter()
    lazy = NotifierSettings(poll_ms=60_000, max_attempts=5, backoff_base_s=0, backoff_cap_s=0)
    notifier = notifier_for(board, executor, adapter, settings=lazy)
    async with running(notifier):
        await asyncio.sleep(0)  # let it start its first (empty) pass
        await executor.run(board.complete, operator, task.id)
        notifier.nudge()
        await wait_until(lambda: len(adapter.sent) == 1, "the nudged delivery", within=2)


async def test_a_nudge_during_a_pass_is_not_lost(
    board, operator, executor, make_task, subscribe, monkeypatch
):
    """A nudge that arrives while the notifier is claiming must cause another look."""
    task = make_task()
    subscribe(task)
    adapter = InMemoryAdapter()
    lazy = NotifierSettings(poll_ms=60_000, max_attempts=5, backoff_base_s=0, backoff_cap_s=0)
    notifier = notifier_for(board, executor, adapter, settings=lazy)
    claim = board.claim_deliveries
    in_pass = threading.Event()
    release = threading.Event()
    passes = []

    def claim_and_wait(**kwargs):
        batch = claim(**kwargs)
        passes.append(len(batch))
        if len(passes) == 1:
            in_pass.set()  # the first pass found nothing; hold it until the nudge came
            assert release.wait(10)
        return batch

    monkeypatch.setattr(board, "claim_deliveries", claim_and_wait)
    async with running(notifier):
        await wait_until(in_pass.is_set, "the first pass")
        board.complete(operator, task.id)
        notifier.nudge()  # the chat command that completed it nudges, as the gateway's sink does
        release.set()
        # The poll is a minute away: only the nudge can explain a delivery within seconds.
        await wait_until(lambda: len(adapter.sent) == 1, "the nudged delivery", within=3)
    assert passes[0] == 0
