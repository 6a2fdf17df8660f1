"""The built-in ``demo`` assignee: a worker that needs no network and no model.

It behaves like a real agent would, through the worker CLI only: reads its task, writes a file
into its workspace, heartbeats, and completes with a summary and metadata.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def kanban(*args: str) -> str:
    """Run a ``kanban`` verb as this worker (credentials come from the environment)."""
    done = subprocess.run(
        [sys.executable, "-m", "kanban_core", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"kanban {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def main() -> int:
    """Do the demo task and report it."""
    task_ref = os.environ["KANBAN_TASK"]
    workspace = Path(os.environ["KANBAN_WORKSPACE"])
    task = json.loads(kanban("show", task_ref, "--json"))["task"]
    kanban("heartbeat", "--note", "writing hello.txt")
    greeting = f"Hello from the demo worker.\nTask {task['id']}: {task['title']}\n"
    if task.get("body"):
        greeting += f"\n{task['body']}\n"
    target = workspace / "hello.txt"
    target.write_text(greeting, encoding="utf-8")
    size = len(greeting.encode())
    metadata = {"files": [target.name], "bytes": size, "workspace": str(workspace)}
    kanban(
        "complete",
        "--summary",
        f"Wrote {target.name} ({metadata['bytes']} bytes) for {task['id']}.",
        "--metadata",
        json.dumps(metadata),
    )
    print(f"demo worker: completed {task['id']}")  # noqa: T201 - this output is the worker log
    return 0


if __name__ == "__main__":
    sys.exit(main())
