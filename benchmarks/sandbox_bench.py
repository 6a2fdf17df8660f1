"""What containment adds to a spawn: the bubblewrap jail around an agent.

bubblewrap is probed once per dispatcher process (the gateway: once in its life), not per spawn.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.timing import Progress, median
from kanban_core.dispatch import sandbox
from kanban_core.profiles import SandboxPolicy

_REPEATS = 21


def spawn_overhead(log: Progress) -> float:
    """Seconds a contained spawn costs over a plain one (median)."""
    problem = sandbox.probe()
    if problem is not None:
        raise RuntimeError(problem)
    log("sandbox: a plain spawn against the same spawn in the jail")
    with tempfile.TemporaryDirectory(prefix="kanban-bench-jail-") as root:
        home = Path(root) / "home"
        workspace = home / "workspaces" / "t1"
        workspace.mkdir(parents=True)
        run_dir = Path(root) / "run"
        run_dir.mkdir()
        jailed = sandbox.wrap(
            ["true"],
            policy=SandboxPolicy(),
            workspace=workspace,
            run_dir=run_dir,
            kanban_home=home,
            environ=dict(os.environ),
        )
        plain = [_spawn(["true"], workspace) for _ in range(_REPEATS)]
        contained = [_spawn(jailed, workspace) for _ in range(_REPEATS)]
    return median(contained) - median(plain)


def _spawn(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start
