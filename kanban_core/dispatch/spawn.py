"""Starting worker supervisors: the launch spec, and a spawner that runs each in its own session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kanban_core.dispatch.hardening import make_undumpable, supervisor_environ
from kanban_core.dispatch.logs import log_path, rotate
from kanban_core.errors import KanbanError
from kanban_core.permission_policy import PermissionPolicy
from kanban_core.profiles import AssigneeProfile, SandboxPolicy

#: Where the spawner puts the run token for the supervisor.
SUPERVISOR_TOKEN_ENV = "KANBAN_SUPERVISOR_TOKEN"  # noqa: S105 - a variable name, not a secret


class SpawnError(KanbanError):
    """A worker supervisor could not be started."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """Everything a supervisor needs, handed over on its stdin (never in argv, which ps shows)."""

    task_id: int
    run_id: int
    db_url: str
    home: str
    assignee: str
    command: tuple[str, ...]
    workspace: str | None  # the profile's default workspace spec, e.g. "worktree"
    repo: str | None
    env: Mapping[str, str]
    pass_env: tuple[str, ...]
    allow_dirty_base: bool
    lease_ttl_s: int
    max_runtime_s: int | None
    terminate_grace_s: int
    log_rotate_bytes: int
    log_backups: int
    failure_limit: int
    backoff_base_s: int
    backoff_cap_s: int
    extra: Mapping[str, Any] = field(default_factory=dict)
    first_turn_args: tuple[str, ...] = ()
    resume_args: tuple[str, ...] = ()
    sandbox: Mapping[str, Any] = field(default_factory=dict)  # SandboxPolicy.to_json()
    permissions: Mapping[str, Any] = field(default_factory=dict)  # PermissionPolicy.to_json()
    protocol: str = "cli"  # "acp": the supervisor is the agent's ACP client
    permission_ttl_s: int = 900  # how long a person has to answer the agent's request
    quota_backoff_s: int = 900  # how long a usage limit pauses the task when no reset is named
    max_cost_micro_usd: int | None = None  # the profile's budget, where the task sets none
    max_tokens: int | None = None
    progress_interval_s: float | None = 3.0  # live progress of an ACP agent; None: off

    def to_json(self) -> str:
        """The spec as JSON."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        """Parse a spec; raises KanbanError on anything malformed."""
        try:
            raw = json.loads(text)
            raw["command"] = tuple(raw["command"])
            raw["pass_env"] = tuple(raw["pass_env"])
            raw["first_turn_args"] = tuple(raw.get("first_turn_args", ()))
            raw["resume_args"] = tuple(raw.get("resume_args", ()))
            # Checked here, so a bad policy is a malformed spec rather than a late surprise.
            PermissionPolicy.from_json(raw.get("permissions", {}))
            return cls(**raw)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise KanbanError(f"malformed worker spec: {exc}") from None

    def profile(self) -> AssigneeProfile:
        """The assignee profile the spec was made from."""
        from kanban_core.board.validation import parse_workspace

        return AssigneeProfile(
            name=self.assignee,
            command=self.command,
            workspace=parse_workspace(self.workspace) if self.workspace else None,
            repo=self.repo,
            env=dict(self.env),
            pass_env=self.pass_env,
            allow_dirty_base=self.allow_dirty_base,
            sandbox=SandboxPolicy.from_json(self.sandbox),
            permissions=PermissionPolicy.from_json(self.permissions),
        )


class Spawner(Protocol):
    """Starts one supervised worker; returns its process id, or raises SpawnError."""

    def spawn(self, spec: WorkerSpec, token: str) -> int:
        """Start the supervisor for ``spec``; the run token travels in its environment."""
        ...

    def reap(self) -> list[tuple[int, int]]:
        """Collect supervisors that have exited: (pid, exit code) pairs."""
        ...


class SubprocessSpawner:
    """Runs ``python -m kanban_core worker`` in a new session, so it outlives its spawner."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = dict(os.environ if environ is None else environ)
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # A process that starts agents holds what they must not read (chat tokens, the database
        # URL); close its /proc entries to them before the first one starts.
        make_undumpable()

    def spawn(self, spec: WorkerSpec, token: str) -> int:
        """Start a supervisor and hand it the spec on stdin."""
        log = log_path(Path(spec.home), spec.task_id)
        # Rotate before the supervisor's output is attached, so one attempt stays in one file.
        rotate(log, spec.log_rotate_bytes, spec.log_backups)
        # Allow-listed, never the whole environment: the gateway's chat and GitHub tokens stay
        # behind. Not KANBAN_RUN_TOKEN: the supervisor is not the worker; it hands that on.
        env = supervisor_environ(self._environ, spec.pass_env)
        env |= {SUPERVISOR_TOKEN_ENV: token, "PYTHONUNBUFFERED": "1"}
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("ab") as sink:
                child = subprocess.Popen(
                    [sys.executable, "-m", "kanban_core", "worker"],
                    stdin=subprocess.PIPE,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=spec.home,
                    start_new_session=True,  # its own process group: a gateway restart spares it
                    close_fds=True,
                )
        except OSError as exc:
            raise SpawnError(f"cannot start the worker supervisor: {exc}") from exc
        assert child.stdin is not None
        try:
            child.stdin.write(spec.to_json().encode())
            child.stdin.close()
        except OSError as exc:
            child.kill()
            child.wait()
            raise SpawnError(f"the worker supervisor exited at once: {exc}") from exc
        self._children[child.pid] = child
        return child.pid

    def reap(self) -> list[tuple[int, int]]:
        """Collect exited supervisors (so they do not linger as zombies)."""
        done = [
            (pid, code)
            for pid, child in self._children.items()
            if (code := child.poll()) is not None
        ]
        for pid, _ in done:
            del self._children[pid]
        return done

    def any_exited(self) -> bool:
        """True when a supervisor this spawner started has exited and is waiting to be reaped."""
        return any(child.poll() is not None for child in self._children.values())

    def running(self) -> int:
        """How many supervisors this spawner started are still alive."""
        return len(self.live_pids())

    def live_pids(self) -> list[int]:
        """The pids of the supervisors this spawner started that are still alive."""
        return [pid for pid, child in self._children.items() if child.poll() is None]

    def wait_all(self, timeout: float) -> list[tuple[int, int]]:
        """Wait for every supervisor to exit (each up to ``timeout`` s), then reap them all.

        For an embedder that stops its workers itself (tests, a one-shot script); the gateway
        never waits: supervisors outlive it on purpose.
        """
        for child in self._children.values():
            child.wait(timeout=timeout)
        return self.reap()
