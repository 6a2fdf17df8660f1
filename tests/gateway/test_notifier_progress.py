"""The notifier's live progress: one message per run and chat, edited in place, rate limited."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from gateway import Capabilities, ChatRef, Document
from gateway.config import NotifierSettings
from gateway.errors import MessageGone
from gateway.notifier import Notifier
from kanban_core import Claim
from tests.gateway.support import InMemoryAdapter, rows, text_of
from tests.kanban_core.support import worker

pytestmark = pytest.mark.anyio

SETTINGS = NotifierSettings(
    poll_ms=10, max_attempts=5, backoff_base_s=0, backoff_cap_s=0, progress_min_interval_ms=1000
)
CHAT = ChatRef("telegram", "100")


class Clock:
    """The notifier's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Edit:
    """One edit the fake platform accepted."""

    chat: ChatRef
    message_id: str
    document: Document
    at: float


class EditingAdapter(InMemoryAdapter):
    """The in-memory platform, able to edit what it sent (and to lose a message)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.capabilities = Capabilities(max_message_chars=4096, edits=True)
        self.clock = clock
        self.ids = itertools.count(1)
        self.sent_ids: list[str] = []
        self.sent_at: list[float] = []
        self.edits: list[Edit] = []
        self.gone: set[str] = set()

    async def send(self, chat: ChatRef, document: Document) -> str | None:
        await super().send(chat, document)
        self.sent_ids.append(str(next(self.ids)))
        self.sent_at.append(self.clock())
        return self.sent_ids[-1]

    async def edit(self, chat: ChatRef, message_id: str, document: Document) -> None:
        if message_id in self.gone:
            raise MessageGone(f"message {message_id} to edit not found")
        self.edits.append(Edit(chat, message_id, document, self.clock()))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def claim(board, operator, make_task) -> Claim:
    task = make_task(title="fix the parser", assignee="coder")
    board.subscribe(operator, task.id, platform=CHAT.platform, chat_id=CHAT.chat_id)
    made: Claim | None = board.claim(operator, task.id)
    assert made is not None
    return made


def make_notifier(board, executor, adapter, clock, claimer="gw") -> Notifier:
    notifier = Notifier(board, {adapter.name: adapter}, executor, SETTINGS, claimer=claimer)
    notifier.clock = clock
    return notifier


def progress(board, claim: Claim, n: int) -> None:
    board.progress(worker(claim), claim.task.id, {"message": f"step {n}", "updates": n})


def statuses(board, claim: Claim) -> dict[str, int]:
    found = rows(
        board,
        "SELECT status, count(*) FROM notify_deliveries WHERE task_id = :t GROUP BY status",
        t=claim.task.id,
    )
    return {str(s): int(c) for s, c in found}


async def drain(notifier: Notifier) -> None:
    while await notifier.deliver_once():
        pass


async def test_the_first_progress_is_sent_and_the_next_edits_it(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    progress(board, claim, 1)
    await drain(notifier)
    assert "💬 step 1" in text_of(adapter.sent[0].document)
    clock.now += 1.5
    progress(board, claim, 2)
    await drain(notifier)
    (edit,) = adapter.edits
    assert edit.message_id == adapter.sent_ids[0]
    assert "💬 step 2" in text_of(edit.document)
    board.complete(worker(claim), claim.task.id, summary="parser fixed")
    await drain(notifier)
    assert len(adapter.sent) == 2
    assert text_of(adapter.sent[-1].document).startswith("✔ t")


async def test_a_burst_becomes_one_edit_and_superseded_rows_end_sent(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    progress(board, claim, 0)
    await drain(notifier)
    clock.now += 2
    for n in range(1, 101):
        progress(board, claim, n)
    await drain(notifier)
    assert len(adapter.edits) <= 3
    assert "💬 step 100" in text_of(adapter.edits[-1].document)
    assert statuses(board, claim) == {"sent": 101}  # the superseded ones too, never shown
    assert len(adapter.sent) == 1


async def test_edits_never_exceed_the_per_chat_rate(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    for n in range(30):
        progress(board, claim, n)
        await drain(notifier)
        clock.now += 0.25  # four snapshots a second, one edit a second at most
        # Rows held back by the rate limit are due on the database clock: make them due now.
        rows_due(board)
    shown = sorted(adapter.sent_at + [e.at for e in adapter.edits])
    assert len(shown) >= 5
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(shown))
    pending = statuses(board, claim).get("pending", 0)
    assert pending <= 1  # at most the newest snapshot still waits for its turn


def rows_due(board) -> None:
    with board.db.transaction(write=True) as tx:
        from kanban_core.storage import Query

        tx.execute(Query("due_now", "UPDATE notify_deliveries SET next_try_ms = 0"))


async def test_a_restarted_gateway_edits_the_same_message(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    await drain(make_notifier(board, executor, adapter, clock, claimer="before"))
    progress(board, claim, 1)
    await drain(make_notifier(board, executor, adapter, clock, claimer="before"))
    clock.now += 5
    progress(board, claim, 2)
    await drain(make_notifier(board, executor, adapter, clock, claimer="after"))
    assert len(adapter.sent) == 1
    assert [e.message_id for e in adapter.edits] == [adapter.sent_ids[0]]


async def test_a_message_gone_is_replaced_by_a_new_one(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    progress(board, claim, 1)
    await drain(notifier)
    adapter.gone.add(adapter.sent_ids[0])
    clock.now += 5
    progress(board, claim, 2)
    await drain(notifier)
    clock.now += 5
    progress(board, claim, 3)
    await drain(notifier)
    assert len(adapter.sent_ids) == 2
    assert [e.message_id for e in adapter.edits] == [adapter.sent_ids[1]]
    assert statuses(board, claim) == {"sent": 3}


async def test_a_chat_with_progress_off_hears_only_the_end(board, operator, executor, clock, claim):
    board.set_progress(
        operator,
        claim.task.id,
        platform=CHAT.platform,
        chat_id=CHAT.chat_id,
        thread_id=None,
        on=False,
    )
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    progress(board, claim, 1)
    board.complete(worker(claim), claim.task.id, summary="done")
    await drain(notifier)
    assert not adapter.edits
    assert [text_of(s.document)[0] for s in adapter.sent] == ["✔"]


async def test_without_edits_each_progress_is_a_new_line(board, executor, clock, claim):
    adapter = InMemoryAdapter()  # like the console: no edits
    notifier = make_notifier(board, executor, adapter, clock)
    for n in range(3):
        progress(board, claim, n)
        await drain(notifier)
        clock.now += 2
    assert len(adapter.sent) == 3
    assert [len(s.document.blocks) for s in adapter.sent] == [1, 1, 1]
    assert adapter.sent[-1].lines[0].endswith("2 updates")


async def test_the_ending_waits_for_the_last_progress_edit(board, executor, clock, claim):
    adapter = EditingAdapter(clock)
    notifier = make_notifier(board, executor, adapter, clock)
    progress(board, claim, 1)
    await drain(notifier)
    clock.now += 0.5
    progress(board, claim, 2)
    await drain(notifier)  # too soon: the edit waits
    board.complete(worker(claim), claim.task.id, summary="done")
    await drain(notifier)  # the completion waits behind it
    assert len(adapter.sent) == 1
    clock.now += 1
    rows_due(board)
    await drain(notifier)
    assert "💬 step 2" in text_of(adapter.edits[-1].document)
    assert text_of(adapter.sent[-1].document).startswith("✔")
    assert adapter.edits[-1].at <= adapter.sent_at[-1]
    assert statuses(board, claim) == {"sent": 3}
