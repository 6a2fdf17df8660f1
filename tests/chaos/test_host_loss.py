"""A host killed with SIGKILL — gateway, supervisors and agents at once — mid-run and mid-send.

Every scenario checks the same things: no task lost (it ends done), none completed twice (one
completed run, on a live host; the dead host's run ended by its lease), the platform connection
answering from another host within the lease time plus a try, and each terminal notification
reaching the chat exactly once — except where Telegram took a message whose sender died before
it could record the send: that one arrives twice, the outbox's documented at-least-once.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos.board import (
    PLATFORM_BOUND_S,
    all_sent,
    assert_each_notice_once,
    create_task,
    deliveries,
    notices,
    runs_of,
    start_owner,
    start_standby,
    status,
    task_running_on_a,
)
from tests.support.cluster import (
    NOTIFY_CLAIM_S,
    REDO_BOUND_S,
    Cluster,
    wait_owner,
)
from tests.support.fake_telegram import FakeTelegram
from tests.support.network import until

pytestmark = [pytest.mark.chaos, pytest.mark.anyio]


async def test_a_host_killed_mid_run_hands_over_its_chat_and_its_run_completes_once_elsewhere(
    fake: FakeTelegram, board_url: str, cluster: Cluster, tmp_path: Path
) -> None:
    a, b, task, first_run = await task_running_on_a(
        cluster, board_url, tmp_path, "survive a power cut"
    )
    assert set(fake.pollers) == {"a"}
    cluster.release("b")  # b's agents complete at once; a's would wait forever

    polls = len(fake.pollers)
    killed = await cluster.kill("a")
    await until(lambda: "b" in fake.pollers[polls:], PLATFORM_BOUND_S + 5)
    handed = time.monotonic() - killed
    await wait_owner(board_url, "leader", b, PLATFORM_BOUND_S)
    await until(lambda: status(board_url, task) == "done", REDO_BOUND_S + 10)
    redone = time.monotonic() - killed
    print(f"\nkill -9 mid-run: chat on b after {handed:.2f} s, run redone in {redone:.2f} s")
    assert handed < PLATFORM_BOUND_S
    assert redone < REDO_BOUND_S

    runs = runs_of(board_url, task)
    assert [(outcome, host) for _, outcome, host in runs] == [("crashed", "a"), ("completed", "b")]
    assert runs[0][0] == first_run
    assert (first_run, "a") not in cluster.results(task)
    kinds = await all_sent(board_url, task, 15)
    assert [k for k, _ in kinds] == ["crashed", "completed"]
    assert_each_notice_once(fake, board_url, task)
    assert fake.token not in a.text() + b.text()


async def test_a_host_killed_mid_send_leaves_the_notification_to_another_host(
    fake: FakeTelegram, board_url: str, cluster: Cluster, tmp_path: Path
) -> None:
    a, b, c = (cluster.add(name, board_url) for name in "abc")
    await start_owner(cluster, board_url, a)
    await start_standby(cluster, b)

    # a claims the completion's notification; its sendMessage never reaches Telegram.
    lost_send = fake.hold("sendMessage")
    first = create_task(board_url, tmp_path, "notify me once", "--host", "a")
    cluster.release("a")
    await until(lambda: lost_send.arrived.is_set(), 30)
    assert deliveries(board_url, first) == [("completed", "sending")]
    killed = await cluster.kill("a")
    lost_send.release(deliver=False)
    await all_sent(board_url, first, PLATFORM_BOUND_S + NOTIFY_CLAIM_S + 10)
    print(f"\nkill -9 mid-send: notification sent by b after {time.monotonic() - killed:.2f} s")
    assert "b" in fake.pollers
    assert_each_notice_once(fake, board_url, first)

    # b's send reaches Telegram, but b dies before recording it: c sends it again. Telegram's
    # sendMessage has no idempotency key, so this one is visible twice (at least once).
    await wait_owner(board_url, "platform:telegram", b, PLATFORM_BOUND_S)
    await start_standby(cluster, c)
    taken_send = fake.hold("sendMessage")
    second = create_task(board_url, tmp_path, "notify me at least once", "--host", "b")
    cluster.release("b")
    await until(lambda: taken_send.arrived.is_set(), 30)
    await cluster.kill("b")
    taken_send.release(deliver=True)
    await all_sent(board_url, second, PLATFORM_BOUND_S + NOTIFY_CLAIM_S + 10)
    received = notices(fake, second)
    assert len(received) == 2, received
    assert received[0] == received[1]
    assert [o for _, o, _ in runs_of(board_url, second)] == ["completed"]
