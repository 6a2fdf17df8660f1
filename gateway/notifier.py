"""The notifier: claims due deliveries from the outbox, sends them, marks each one.

Latency comes from a short poll (and a nudge after every chat command); correctness from the
rows: a failed send is retried with backoff, a send that keeps failing becomes a dead letter
that is logged loudly and listed by ``kanban status``, and a gateway killed mid-send leaves a
claim that expires, so the message is sent after the restart.

Live progress is special: one message per (run, chat), edited in place (its id is kept in
``progress_messages``, so a restarted gateway edits the same message). A burst of progress for
one run and chat becomes one edit (older rows are superseded: marked sent, never shown), and a
chat gets at most one progress edit per ``progress_min_interval_ms`` (the rest waits, untried).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import cast

from gateway.adapter import ChatAdapter, EditingAdapter
from gateway.config import NotifierSettings
from gateway.errors import AdapterError, AdapterRateLimited, AdapterRejected, MessageGone
from gateway.executor import KernelExecutor, wait_first
from gateway.messages import ChatRef
from gateway.progress import progress_document, progress_line
from gateway.remote_reply import reply_document
from gateway.rendering import event_document, settled_card
from kanban_core import Kanban, StorageError
from kanban_core.board.deliveries import Delivery
from kanban_core.board.domain import EventKind

log = logging.getLogger(__name__)

#: A notification no running gateway has taken for this long (its platform is enabled nowhere)
#: becomes a dead letter, listed by ``kanban status``, instead of waiting forever.
UNSERVED_AFTER_S = 3600
#: How often a notifier looks for such notifications.
_UNSERVED_SWEEP_S = 60.0
#: What settles a permission request: its card is edited in place.
_SETTLING = frozenset({EventKind.PERMISSION_EXPIRED, EventKind.PERMISSION_ANSWERED})


class Notifier:
    """Delivers terminal-event notifications to the chats that subscribed."""

    def __init__(
        self,
        board: Kanban,
        adapters: Mapping[str, ChatAdapter],
        executor: KernelExecutor,
        settings: NotifierSettings,
        *,
        claimer: str,
        served: Iterable[str] | None = None,
    ) -> None:
        self.board = board
        #: The adapters to send through (with several gateways, those this one runs now).
        self.adapters = adapters
        #: The platforms some gateway of this configuration serves, running here or not.
        self.served = sorted(adapters if served is None else served)
        self.executor = executor
        self.settings = settings
        self.claimer = claimer
        self.unserved_after_s = UNSERVED_AFTER_S
        self._wake = asyncio.Event()
        self._next_sweep = 0.0
        #: Seconds, monotonic; a test passes its own.
        self.clock: Callable[[], float] = time.monotonic
        # (platform, chat) -> when its last progress was shown: the per-chat rate limit.
        self._last_progress: dict[tuple[str, str], float] = {}
        # (platform, chat) -> until when its progress waits: what follows waits too, in order.
        self._held_until: dict[tuple[str, str], float] = {}

    def nudge(self) -> None:
        """Look for new deliveries now."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            # Cleared before the pass, so a nudge arriving during it causes another pass.
            self._wake.clear()
            try:
                await self._sweep_unserved()
                busy = await self.deliver_once()
            except StorageError as exc:
                # The database restarting or out of reach: one line; the next pass tries again.
                log.warning("notifier pass: %s", exc, extra={"action": "notify"})
                busy = 0
            except Exception:
                log.exception("notifier pass failed", extra={"action": "notify"})
                busy = 0
            if busy:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    wait_first(self._wake.wait(), stop.wait()), self.settings.poll_ms / 1000
                )

    async def deliver_once(self) -> int:
        """Claim and send one batch per platform; returns how many were attempted."""
        batches = await asyncio.gather(
            *(self._platform_batch(name, adapter) for name, adapter in self.adapters.items())
        )
        return sum(batches)

    async def expire_unserved(self) -> list[tuple[int, str]]:
        """Dead-letter notifications for platforms no running gateway serves; log each loudly."""
        expired = await self.executor.run(
            self.board.expire_unserved_deliveries,
            served=self.served,
            after_ms=int(self.unserved_after_s * 1000),
        )
        for delivery_id, platform in expired:
            log.error(
                "DEAD LETTER: notification %s to %s: no running gateway has %s enabled",
                delivery_id,
                platform,
                platform,
                extra={"action": "dead_letter", "delivery": delivery_id},
            )
        return expired

    async def _sweep_unserved(self) -> None:
        now = asyncio.get_running_loop().time()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _UNSERVED_SWEEP_S
        await self.expire_unserved()

    async def _platform_batch(self, platform: str, adapter: ChatAdapter) -> int:
        batch = await self.executor.run(
            self.board.claim_deliveries,
            platform=platform,
            claimer=self.claimer,
            lease_ms=self.settings.claim_lease_s * 1000,
        )
        # The newest progress of each run and chat in this batch: the others are superseded.
        newest = {_progress_key(d): d.id for d in batch if d.kind == EventKind.PROGRESS}
        # One chat's messages stay in event order: sends within a platform are sequential, and
        # while a chat's progress waits, what follows it in that chat (its ending) waits too.
        for delivery in batch:
            chat_key = (delivery.platform, delivery.chat_id)
            held_ms = int(max(0.0, self._held_until.get(chat_key, 0.0) - self.clock()) * 1000)
            if delivery.kind != EventKind.PROGRESS:
                if held_ms > 0:
                    await self._defer(delivery, held_ms)
                else:
                    await self._send(adapter, delivery)
            elif newest[_progress_key(delivery)] != delivery.id or not (
                await self.executor.run(self.board.supersede_progress, delivery)
            ):
                await self.executor.run(self.board.delivery_sent, delivery.id, claimer=self.claimer)
            elif (wait_ms := self._progress_wait_ms(delivery)) > 0:
                self._held_until[chat_key] = self.clock() + wait_ms / 1000
                await self._defer(delivery, wait_ms)
            else:
                self._last_progress[(delivery.platform, delivery.chat_id)] = self.clock()
                await self._send(adapter, delivery)
        return len(batch)

    def _progress_wait_ms(self, delivery: Delivery) -> int:
        last = self._last_progress.get((delivery.platform, delivery.chat_id))
        if last is None:
            return 0
        elapsed_ms = (self.clock() - last) * 1000
        return max(0, int(self.settings.progress_min_interval_ms - elapsed_ms + 0.999))

    async def _defer(self, delivery: Delivery, delay_ms: int) -> None:
        await self.executor.run(
            self.board.delivery_deferred, delivery.id, claimer=self.claimer, delay_ms=delay_ms
        )

    async def _show_progress(self, adapter: ChatAdapter, chat: ChatRef, delivery: Delivery) -> None:
        """Edit the run's progress message in this chat, or send it (and remember its id)."""
        if not adapter.capabilities.edits:
            await adapter.send(chat, progress_line(delivery))  # a line per update (the console)
            return
        document = progress_document(delivery)
        message_id = await self.executor.run(self.board.progress_message, delivery)
        if message_id is not None:
            try:
                await cast(EditingAdapter, adapter).edit(chat, message_id, document)
                return
            except MessageGone:
                log.info("progress message %s is gone; sending a new one", message_id)
        sent = await adapter.send(chat, document)
        if sent is not None:
            await self.executor.run(self.board.remember_progress_message, delivery, sent)

    async def _remember_card(self, adapter: ChatAdapter, delivery: Delivery, sent: str) -> None:
        # Only where it can be edited later; a platform that cannot edit gets a notice.
        if adapter.capabilities.edits:
            await self.executor.run(self.board.remember_permission_card, delivery, sent)

    async def _settle_card(self, adapter: ChatAdapter, chat: ChatRef, delivery: Delivery) -> None:
        """Edit the request's card to say how it was settled, its buttons gone.

        Without a card to edit (a platform that cannot edit, a card gone or never sent here),
        an expiry is still told as a notice; an answer is not (whoever answered was told).
        """
        message_id = None
        if adapter.capabilities.edits:
            message_id = await self.executor.run(self.board.permission_card, delivery)
        if message_id is not None:
            try:
                await cast(EditingAdapter, adapter).edit(chat, message_id, settled_card(delivery))
            except MessageGone:
                log.info("permission card %s is gone", message_id)
            else:
                await self.executor.run(self.board.forget_permission_card, delivery)
                return
        if delivery.kind == EventKind.PERMISSION_EXPIRED:
            await adapter.send(chat, event_document(delivery))

    async def _send(self, adapter: ChatAdapter, delivery: Delivery) -> None:
        chat = ChatRef(delivery.platform, delivery.chat_id, delivery.thread_id or None)
        try:
            if delivery.kind == EventKind.PROGRESS:
                await self._show_progress(adapter, chat, delivery)
            elif delivery.kind in _SETTLING:
                await self._settle_card(adapter, chat, delivery)
            elif delivery.kind == EventKind.EXEC_REPLY:
                await adapter.send(chat, reply_document(delivery))
            else:
                sent = await adapter.send(chat, event_document(delivery))
                if delivery.kind == EventKind.PERMISSION_REQUESTED and sent is not None:
                    await self._remember_card(adapter, delivery, sent)
        except AdapterRateLimited as exc:
            await self._failed(delivery, str(exc), int(exc.retry_after * 1000), permanent=False)
        except AdapterRejected as exc:
            await self._failed(delivery, str(exc), 0, permanent=True)
        except AdapterError as exc:
            await self._failed(
                delivery, str(exc), self._backoff_ms(delivery.attempts), permanent=False
            )
        except Exception as exc:
            log.exception(
                "adapter %s failed to send", delivery.platform, extra={"action": "notify"}
            )
            await self._failed(
                delivery, repr(exc), self._backoff_ms(delivery.attempts), permanent=False
            )
        else:
            await self.executor.run(self.board.delivery_sent, delivery.id, claimer=self.claimer)

    async def _failed(
        self, delivery: Delivery, error: str, delay_ms: int, *, permanent: bool
    ) -> None:
        dead = permanent or delivery.attempts >= self.settings.max_attempts
        await self.executor.run(
            self.board.delivery_failed,
            delivery.id,
            claimer=self.claimer,
            error=error,
            delay_ms=delay_ms,
            dead=dead,
        )
        target = f"{delivery.platform}:{delivery.chat_id}"
        if dead:
            log.error(
                "DEAD LETTER: %s of t%s to %s after %s attempts: %s",
                delivery.kind,
                delivery.task_id,
                target,
                delivery.attempts,
                error,
                extra={"action": "dead_letter", "delivery": delivery.id},
            )
        else:
            log.warning(
                "notification to %s failed (attempt %s), retrying in %.1fs: %s",
                target,
                delivery.attempts,
                delay_ms / 1000,
                error,
                extra={"action": "notify_retry", "delivery": delivery.id},
            )

    def _backoff_ms(self, attempts: int) -> int:
        delay_s: int = self.settings.backoff_base_s * 2 ** max(0, attempts - 1)
        return min(delay_s, self.settings.backoff_cap_s) * 1000


def _progress_key(delivery: Delivery) -> tuple[int | None, str, str]:
    return (delivery.run_id, delivery.chat_id, delivery.thread_id)
