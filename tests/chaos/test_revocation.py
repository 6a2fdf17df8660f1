"""A host revoked (``kanban hosts revoke``) while it runs work: the work is redone elsewhere, once.

The revoked host's agent finishes after the revocation: its completion is refused (or its
supervisor, refused a heartbeat first, stops it), the run ends by its lease, and the task is
claimed again — never by the revoked host, whose claims find nothing — and completed on another.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.board import (
    admin,
    all_sent,
    assert_each_notice_once,
    create_task,
    runs_of,
    status,
    task_running_on_a,
)
from tests.support.cluster import (
    REDO_BOUND_S,
    Cluster,
)
from tests.support.fake_telegram import FakeTelegram
from tests.support.network import until

pytestmark = [pytest.mark.chaos, pytest.mark.anyio]


async def test_a_host_revoked_mid_run_cannot_complete_and_the_work_is_redone_once(
    fake: FakeTelegram, board_url: str, cluster: Cluster, tmp_path: Path
) -> None:
    a, _, task, first_run = await task_running_on_a(
        cluster, board_url, tmp_path, "outlive a revocation"
    )

    revoked = admin(board_url, tmp_path, "hosts", "revoke", "a")
    assert revoked.returncode == 0, revoked.stderr
    cluster.release("a")
    cluster.release("b")
    await until(lambda: status(board_url, task) == "done", REDO_BOUND_S + 10)

    runs = runs_of(board_url, task)
    assert [(o, h) for _, o, h in runs] == [("reclaimed", "a"), ("completed", "b")]
    late = cluster.results(task).get((first_run, "a"))
    log = (a.home / "logs" / f"t{task}.log").read_text(encoding="utf-8")
    if late is not None:
        assert late[0] != 0, late
        assert "revoked" in late[1], late
    else:
        assert "the run ended elsewhere" in log, log
    await all_sent(board_url, task, 20)
    assert_each_notice_once(fake, board_url, task)

    # The revoked host claims nothing more, however long it keeps running.
    again = create_task(board_url, tmp_path, "after the revocation")
    await until(lambda: status(board_url, again) == "done", 30)
    assert [(o, h) for _, o, h in runs_of(board_url, again)] == [("completed", "b")]
