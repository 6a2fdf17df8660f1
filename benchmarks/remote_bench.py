"""A workspace command asked on one host, run on the host holding the workspace, answered in chat.

In one process, two boards on the same database stand for two enrolled hosts: host A's router
(the asking chat) and notifier with a recording adapter, host B's execution loop; each side is
woken by its own change watch, as in the gateway. A sample is `/ws status` of a real git
worktree on B: from the message entering A's router to A's adapter sending B's answer.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import yaml

from benchmarks.backends import Backend
from benchmarks.gateway_bench import OPERATOR, RecordingAdapter, p99
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress
from gateway import ChatRef, ChatUser, IncomingMessage
from gateway.access import AccessPolicy, Role
from gateway.changes import ChangeMonitor
from gateway.config import NotifierSettings
from gateway.executor import KernelExecutor
from gateway.notifier import Notifier
from gateway.remote_exec import ExecLoop
from gateway.router import Router
from kanban_core import Actor
from kanban_core.commands import CommandContext, run_command

CHAT = ChatRef("bench", "remote")
USER = ChatUser("bench", "u1", "bench")


def _repo(root: Path) -> Path:
    repo = root / "src" / "api"
    repo.mkdir(parents=True, exist_ok=True)
    env = {
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@example.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@example.invalid",
        "PATH": "/usr/bin:/bin",
    }
    for argv in (
        ["git", "init", "-q", "-b", "main"],
        ["git", "commit", "-q", "--allow-empty", "-m", "start"],
    ):
        subprocess.run(argv, cwd=repo, env=env, check=True)
    return repo


def request_to_reply(backend: Backend, sizes: Sizes, log: Progress) -> float:
    """p99 of `/ws status` asked on host A, run on host B, B's answer sent to A's chat."""
    root = backend.workdir / "remote"
    config = root / "config.yaml"
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    config.write_text(
        yaml.safe_dump(
            {
                "assignees": {"coder": {"command": ["true"]}},
                "workspaces": {
                    "managed_root": str(root / "data"),
                    "agent": "coder",
                    "repos": {"api": {"path": str(_repo(root))}},
                },
            }
        ),
        encoding="utf-8",
    )
    environ = {"KANBAN_CONFIG": str(config), "PATH": "/usr/bin:/bin"}
    with backend.board() as url, backend.open(url) as side_a, backend.open(url) as side_b:
        side_a.host, side_b.host = (
            side.enroll_host(OPERATOR, name=name, labels=(), secret=f"s-{name}", readmit=False)
            for side, name in ((side_a, "bench-a"), (side_b, "bench-b"))
        )
        made = run_command(
            ["ws", "new", "bench", "--repo", "api"],
            CommandContext(actor=Actor("bench"), open_board=lambda _u: side_b, environ=environ),
        )
        ws_id = made.data["workspace"]
        log(f"{backend.name}: remote request → reply in chat")

        async def main() -> list[float]:
            threads = 1 if side_a.db.dialect == "sqlite" else 4
            exec_a, exec_b = KernelExecutor(threads=threads), KernelExecutor(threads=threads)
            adapter = RecordingAdapter()
            access = AccessPolicy(users={USER.key: Role.OPERATOR})
            router = Router(side_a, access, exec_a, environ=environ)
            notifier = Notifier(side_a, {"bench": adapter}, exec_a, NotifierSettings(), claimer="a")
            remote = ExecLoop(side_b, access, exec_b, claimer="b", environ=environ)
            stop = asyncio.Event()
            runner = asyncio.gather(
                notifier.run(stop),
                remote.run(stop),
                ChangeMonitor(side_a.watch_changes(), exec_a, on_change=[notifier.nudge]).run(stop),
                ChangeMonitor(side_b.watch_changes(), exec_b, on_change=[remote.nudge]).run(stop),
            )
            samples = []
            try:
                for i in range(sizes.notify_samples + 3):
                    adapter.sent.clear()
                    message = IncomingMessage(CHAT, USER, f"ws status --ws {ws_id}", f"r{i}")
                    start = time.perf_counter()
                    reply = await router.handle(message)
                    if reply is None or "sent to host bench-b" not in str(reply.blocks):
                        raise RuntimeError(f"not sent to the other host: {reply}")
                    await asyncio.wait_for(adapter.sent.wait(), 30)
                    if i >= 3:  # warm-up
                        samples.append(adapter.sent_at[-1] - start)
            finally:
                stop.set()
                await runner
                exec_a.shutdown()
                exec_b.shutdown()
            return samples

        return p99(asyncio.run(main()))
