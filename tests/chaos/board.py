"""The board and the chat seen from outside the hosts: what the chaos matrix checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cluster import LEASE_S, START_TIMEOUT_S, Cluster, Host, query, wait_owner
from tests.support.fake_telegram import ALICE_ID, FakeTelegram
from tests.support.network import until


def admin(url: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A ``kanban`` verb at an admin's terminal on no enrolled host."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "KANBAN_HOME": str(root / "admin"),
        "KANBAN_DB_URL": url,
    }
    return subprocess.run(
        [sys.executable, "-m", "kanban_core", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def create_task(url: str, root: Path, title: str, *options: str) -> int:
    """``kanban create`` for the chaos agent, with ALICE's chat subscribed to it.

    Made in triage, subscribed, then accepted: a live dispatcher may otherwise run a ready
    task to its end before the subscription lands (which a finished task refuses).
    """
    made = admin(url, root, "create", title, "--assignee", "chaos", "--triage", "--json", *options)
    assert made.returncode == 0, made.stderr
    task_id = int(str(json.loads(made.stdout)["id"]).lstrip("t"))
    chat = ("--platform", "telegram", "--chat-id", str(ALICE_ID))
    subscribed = admin(url, root, "notify-subscribe", str(task_id), *chat)
    assert subscribed.returncode == 0, subscribed.stderr
    accepted = admin(url, root, "accept", str(task_id))
    assert accepted.returncode == 0, accepted.stderr
    return task_id


def runs_of(url: str, task_id: int) -> list[tuple[int, str | None, str]]:
    """The task's runs: (run id, outcome, the claiming host's name)."""
    return [
        (int(r[0]), r[1], str(r[2]))
        for r in query(
            url,
            "SELECT r.id, r.outcome, coalesce(h.name, '') FROM task_runs r "
            "LEFT JOIN hosts h ON h.id = r.host_id WHERE r.task_id = %s ORDER BY r.id",
            (task_id,),
        )
    ]


def deliveries(url: str, task_id: int) -> list[tuple[str, str]]:
    """(event kind, delivery status) of each notification of the task."""
    return [
        (str(r[0]), str(r[1]))
        for r in query(
            url,
            "SELECT e.kind, d.status FROM notify_deliveries d JOIN task_events e "
            "ON e.id = d.event_id WHERE d.task_id = %s ORDER BY d.id",
            (task_id,),
        )
    ]


def notices(fake: FakeTelegram, task_id: int) -> list[str]:
    """The notifications of the task the chat received (replies to commands excluded)."""
    return [m.text for m in fake.sent_to(ALICE_ID) if f"t{task_id}" in m.text.split("\n")[0]]


#: A standby tries every second; PTB's start (getMe, deleteWebhook, the first poll) a moment more.
PLATFORM_BOUND_S = LEASE_S + 2 + 3  # loose: the measured figure goes to the README


async def start_owner(cluster: Cluster, url: str, host: Host) -> None:
    await cluster.start(host.name)
    await wait_owner(url, "platform:telegram", host, START_TIMEOUT_S)
    await wait_owner(url, "leader", host, START_TIMEOUT_S)


async def start_standby(cluster: Cluster, host: Host) -> None:
    await cluster.start(host.name)
    await until(lambda: "platform:telegram: another gateway holds it" in host.text(), 60)


def status(url: str, task_id: int) -> str:
    return str(query(url, "SELECT status FROM tasks WHERE id = %s", (task_id,))[0][0])


async def all_sent(url: str, task_id: int, timeout: float) -> list[tuple[str, str]]:  # noqa: ASYNC109
    try:
        await until(lambda: {s for _, s in deliveries(url, task_id)} == {"sent"}, timeout)
    except AssertionError:
        pytest.fail(f"t{task_id}'s notifications not all sent: {deliveries(url, task_id)}")
    return deliveries(url, task_id)


def assert_each_notice_once(fake: FakeTelegram, url: str, task_id: int) -> None:
    """Every notification row of the task sent, and the chat holds each exactly once."""
    kinds = [kind for kind, state in deliveries(url, task_id) if state == "sent"]
    received = notices(fake, task_id)
    assert len(received) == len(kinds), (kinds, received)
    assert sum(text.startswith("✔") for text in received) == 1, received


async def task_running_on_a(
    cluster: Cluster, url: str, root: Path, title: str, *, a_url: str | None = None
) -> tuple[Host, Host, int, int]:
    """Hosts a (holding the chat and the leader's duties) and b (standing by), and a task whose
    agent runs on a, waiting for ``release("a")``: (a, b, the task, a's run)."""
    a, b = cluster.add("a", a_url or url), cluster.add("b", url)
    await start_owner(cluster, url, a)
    task = create_task(url, root, title)
    await until(lambda: cluster.started(task), 30)
    ((run, on),) = cluster.started(task)
    assert on == "a"
    await start_standby(cluster, b)
    return a, b, task, run
