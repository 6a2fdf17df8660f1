"""The worker supervisor (``kanban worker``): runs one agent attempt and always records a verdict.

It prepares the workspace, serves the run's capability (the agent's only door to the board),
starts the agent in its own process group — in its bubblewrap jail where the profile's sandbox
applies — with the run's credentials in its environment, renews the lease while the agent
lives, appends the agent's output to the task's log, enforces the max runtime, and — when the
agent exits without completing or blocking — records the outcome itself with the log's tail as
evidence. Exit 0 without a verdict is a protocol failure, not a success.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from kanban_core.board.domain import (
    Actor,
    RunId,
    RunOutcome,
    RunProof,
    TaskId,
    TaskStatus,
    WorkspaceKind,
)
from kanban_core.board.kanban import Kanban, OnMissing
from kanban_core.board.recovery import FailurePolicy, UsageTotals
from kanban_core.dispatch import acp_session as acp, sandbox, usage_limits
from kanban_core.dispatch.claude_stream import StreamFolder, StreamReader
from kanban_core.dispatch.door import SANDBOX_RUN_DIR, SOCKET_ENV, SOCKET_NAME, DoorFactory
from kanban_core.dispatch.hardening import become_subreaper, make_undumpable
from kanban_core.dispatch.logs import log_path, tail
from kanban_core.dispatch.permission_asker import BoardAsker
from kanban_core.dispatch.permission_tool import SERVER_NAME, PermissionGate
from kanban_core.dispatch.progress_tracker import ProgressTracker
from kanban_core.dispatch.spawn import SUPERVISOR_TOKEN_ENV, WorkerSpec
from kanban_core.errors import KanbanError, StaleRun, StorageError
from kanban_core.profiles import SandboxMode, render_command, worker_prompt
from kanban_core.settings import KernelSettings
from kanban_core.workspaces import places

if TYPE_CHECKING:
    from kanban_core.workspaces.interactive.turns import TurnContext

#: Environment an agent inherits from the supervisor; everything else is withheld (the gateway's
#: chat tokens live in that environment), except the names a profile passes through.
_INHERITED = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TERM",
    "SHELL",
    "TMPDIR",
    "TZ",
    "VIRTUAL_ENV",
    "PYTHONPATH",
)
_EVIDENCE_BYTES = 4000
_MCP_CONFIG = "mcp.json"
_MCP_ARGS = ("-m", "kanban_core", "mcp")
#: How long an ACP agent has to end its turn after session/cancel before it is killed.
_CANCEL_GRACE_S = 5.0
#: How long the agent's last stream-json lines may take to be read after it exited.
_STREAM_DRAIN_S = 5.0
#: How long an agent may take to end its turn after its verdict (Claude Code prints its result
#: line, an ACP agent answers the prompt with its usage) before it is stopped.
_AFTER_VERDICT_S = 15.0
_SIGNALLED = 128
_POLL_S = 0.25
_PR_SET_PDEATHSIG = 1


class Supervisor:
    """One attempt at one task."""

    def __init__(
        self, spec: WorkerSpec, token: str, environ: Mapping[str, str], open_door: DoorFactory
    ) -> None:
        self.spec = spec
        self.open_door = open_door
        self.environ = environ
        self.proof = RunProof(TaskId(spec.task_id), RunId(spec.run_id), token)
        self.actor = Actor(name="supervisor", run=self.proof)
        self.home = Path(spec.home)
        self.log = log_path(self.home, spec.task_id)
        self.policy = FailurePolicy(spec.failure_limit, spec.backoff_base_s, spec.backoff_cap_s)
        self.agent: subprocess.Popen[bytes] | None = None
        self.tenant: str | None = None
        self.turn_env: dict[str, str] = {}
        self.agent_dir = Path()
        self.contained = False
        self.session: _SessionThread | None = None
        self.stream: StreamReader | None = None
        self._stopping = False
        self.budget_reason: str | None = None  # set when a usage report reached the budget

    def run(self) -> int:
        """Supervise the attempt; returns the process exit code."""
        settings = KernelSettings(home=self.home, db_url=self.spec.db_url)
        # The run's board exists; a vanished one is an error, never a new empty board.
        with Kanban.open(settings, on_missing=OnMissing.REFUSE) as board:
            task = board.get(self.proof.task_id)
            if task.status is not TaskStatus.RUNNING or task.current_run_id != self.proof.run_id:
                self.note(f"run r{self.spec.run_id} is no longer current; nothing to do")
                return 0
            turn = None
            branch: str | None = None
            try:
                if task.workspace_kind is WorkspaceKind.WORKTREE:
                    turn = _begin_turn(board, task.id, self.proof.run_id)
                if turn is not None:
                    path, branch = turn.cwd, turn.workspace.branch
                    for note in turn.notes:
                        self.note(note)
                else:
                    prepared = places.prepare(task, self.spec.profile(), self.home)
                    path, branch = prepared.path, prepared.branch
                board.set_workspace(self.actor, task.id, path=str(path), branch=branch)
            except KanbanError as exc:
                code = self._fail(board, RunOutcome.SPAWN_FAILED, f"workspace: {exc}")
                self._finish_turn(board)
                return code
            self.note(f"workspace at {path}" + (f" (turn {turn.turn.id})" if turn else ""))
            self.tenant = task.tenant
            refused = self._contain()
            if refused is not None:
                code = self._fail(board, RunOutcome.SPAWN_FAILED, refused)
                if turn is not None:
                    self._finish_turn(board)
                return code
            command = self.spec.command
            if turn is not None:
                command += self.spec.resume_args if turn.resume else self.spec.first_turn_args
                self.turn_env = turn.env
            try:
                prompt = turn.prompt if turn else worker_prompt(task)
                with self._door(task.tenant, path) as private:
                    argv = render_command(
                        command,
                        {
                            "prompt": prompt,
                            "task_id": task.ref,
                            "run_id": str(self.spec.run_id),
                            "workspace": str(path),
                            "mcp_config": str(self.agent_dir / _MCP_CONFIG),
                            "agent_session_id": turn.session.agent_session_id if turn else "",
                        },
                    )
                    if self.spec.protocol == "acp":
                        session = acp.SessionSpec(
                            cwd=str(path),
                            prompt=prompt,
                            mcp_command=sys.executable,
                            mcp_args=_MCP_ARGS,
                            mcp_env=self._mcp_env(self.agent_dir),
                            # A workspace session's next turn resumes the agent's conversation.
                            load_session_id=turn.session.acp_session_id if turn else None,
                            on_session=self._keep_session(board, turn) if turn else None,
                        )
                        return self._supervise(board, argv, path, task.tenant, private, session)
                    return self._supervise(board, argv, path, task.tenant, private)
            finally:
                if turn is not None:
                    self._finish_turn(board)

    def _contain(self) -> str | None:
        """Decide this run's containment and say it in the log; a reason when it may not run."""
        policy = self.spec.profile().sandbox
        probed = self.spec.sandbox.get("probe")
        # The dispatcher probed bubblewrap on this host already ("" when it works).
        known = None if probed is None else (lambda: str(probed) or None)
        decided = sandbox.containment(policy, known)
        self.contained = decided.contained
        if decided.contained:
            self.note(f"contained: {decided.summary}")
            return None
        if policy.mode is SandboxMode.REQUIRED:
            return f"sandbox: {decided.summary}"
        self.note(
            f"WARNING {decided.summary}: the agent runs with this user's full authority "
            "(it can read the board's files and other workspaces; see the README, Containment)"
        )
        return None

    @contextmanager
    def _door(self, tenant: str | None, workspace: Path) -> Iterator[Path]:
        """Serve the run's capability from a private directory, which it yields.

        The agent gets this directory (a socket, the MCP config) instead of the database.
        """
        private = Path(tempfile.mkdtemp(prefix=f"kanban-r{self.spec.run_id}-"))  # mode 0700
        settings = KernelSettings(home=self.home, db_url=self.spec.db_url)
        door = self.open_door(
            self.proof,
            self.spec.assignee,
            lambda: Kanban.open(settings),
            tenant=tenant,
            on_error=self.note,
            # An agent's permission prompt (kanban_permission) meets the same policy as ACP's.
            permissions=PermissionGate(
                self.spec.profile().permissions, workspace, self.spec.permission_ttl_s, self.note
            ),
        )
        try:
            door.start(private)
            # A contained agent sees the directory at a fixed place (and nothing beside it).
            self.agent_dir = Path(SANDBOX_RUN_DIR) if self.contained else private
            self._write_mcp_config(private, self.agent_dir)
            yield private
        finally:
            door.close()
            shutil.rmtree(private, ignore_errors=True)

    def _keep_session(self, board: Kanban, turn: TurnContext) -> Callable[[str], None]:
        """Remember the ACP session a workspace turn opened, for the session's next turn."""
        from kanban_core.workspaces.interactive import turns

        def keep(acp_session_id: str) -> None:
            try:
                kept = turns.remember_acp_session(board, turn.session, acp_session_id)
            except KanbanError as exc:
                kept = False
                self.note(f"could not keep the ACP session id: {exc}")
            if not kept:
                self.note("the next turn starts a new ACP session (this one's id is not kept)")

        return keep

    def _finish_turn(self, board: Kanban) -> None:
        """End the workspace turn this run carried out (once; the gateway settles it otherwise)."""
        from kanban_core.workspaces.interactive import turns

        try:
            turns.finish(board, self.proof.run_id)
        except KanbanError as exc:
            self.note(f"could not settle the workspace turn (the gateway will): {exc}")

    def _supervise(
        self,
        board: Kanban,
        argv: list[str],
        cwd: Path,
        tenant: str | None,
        private: Path,
        session: acp.SessionSpec | None = None,
    ) -> int:
        env = self._agent_env(cwd, tenant, self.agent_dir)
        self.note(f"starting {argv[0]}")
        streams = self.spec.protocol == "stream-json"
        refused = self._start_agent(
            board, argv, cwd, env, private, piped=session is not None, stream=streams
        )
        if refused is not None:
            return refused
        agent = self.agent
        assert agent is not None
        signal.signal(signal.SIGTERM, self._on_term)
        if streams:
            self.stream = self._read_stream(board, agent)
        if session is not None:
            self.session = _SessionThread(
                session,
                agent,
                self._asker(board, cwd),
                self.note,
                on_usage=self._usage_listener(board),
                progress=self._progress(board),
            )
        started = last_beat = time.monotonic()
        interval = max(1.0, self.spec.lease_ttl_s / 3)
        code: int | None = None
        while code is None:
            try:
                # Short waits, so a SIGTERM (a dispatcher timing the run out) is acted on well
                # within the grace period it allows before SIGKILL.
                code = agent.wait(timeout=_POLL_S)
                continue
            except subprocess.TimeoutExpired:
                pass
            ended = self._ended_early(board, started)
            if ended is not None:
                return ended
            if time.monotonic() - last_beat < interval:
                continue
            last_beat = time.monotonic()
            try:
                board.heartbeat(self.actor, self.proof.task_id)
            except StaleRun:
                # The run is over: the agent recorded a verdict, or a dispatcher reclaimed or
                # timed it out. Either way this attempt may not touch the task any more.
                if self._ended_by_verdict(board):
                    # Its last report (the final cost) comes as its turn ends: let it end.
                    self._await_turn_end(agent)
                self.note("the run ended elsewhere; stopping the agent")
                self._terminate()
                if self.stream is not None:
                    self.stream.join(_STREAM_DRAIN_S)  # what it printed last belongs in the log
                return 0
            except StorageError as exc:
                self.note(f"heartbeat failed, will retry: {exc}")
        # Whatever the agent left behind in its process group (MCP servers, dev servers, a
        # `sleep` it forked) goes with it, on a natural exit too.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(agent.pid, signal.SIGKILL)
        return self._after_exit(board, code)

    def _ended_by_verdict(self, board: Kanban) -> bool:
        """Whether this run ended with a verdict (completed or blocked), not reclaimed."""
        try:
            run = next(r for r in board.runs(self.proof.task_id) if r.id == self.proof.run_id)
        except (KanbanError, StopIteration):
            return False
        return run.outcome in (RunOutcome.COMPLETED, RunOutcome.BLOCKED)

    def _await_turn_end(self, agent: subprocess.Popen[bytes]) -> None:
        """Wait (bounded) for the agent to end its turn by itself, its usage reported."""
        deadline = time.monotonic() + _AFTER_VERDICT_S
        while time.monotonic() < deadline and not self._stopping:
            if self.session is not None and self.session.ended():
                return
            with suppress(subprocess.TimeoutExpired):
                agent.wait(timeout=_POLL_S)
                return

    def _ended_early(self, board: Kanban, started: float) -> int | None:
        """The exit code when the run must end while the agent still lives, else None."""
        if self.session is not None and self.session.ended():
            # An ACP agent does not exit after its turn: the turn's end is the run's end.
            self._terminate()
            return self._after_turn(board, self.session.result())
        if self._stopping:
            self._terminate()
            return self._fail(board, RunOutcome.CRASHED, "the supervisor was terminated")
        if self.stream is not None and self.budget_reason is not None:
            # A CLI agent has no turn to cancel: at its budget it is stopped.
            self._terminate()
            return self._after_exit(board, _SIGNALLED)
        max_runtime = self.spec.max_runtime_s
        if max_runtime and time.monotonic() - started > max_runtime:
            self._terminate()
            return self._fail(
                board, RunOutcome.TIMED_OUT, f"exceeded its max runtime of {max_runtime}s"
            )
        return None

    def _start_agent(
        self,
        board: Kanban,
        argv: list[str],
        cwd: Path,
        env: dict[str, str],
        private: Path,
        *,
        piped: bool,
        stream: bool = False,
    ) -> int | None:
        """Start the agent (in its jail where contained); the exit code of a failed start.

        ``piped``: its stdio is the ACP connection; ``stream``: its stdout is read as stream-json.
        """
        if self.contained:
            # Looked up here: inside the jail a missing program is only an exit status.
            if not _executable(argv[0], env.get("PATH", os.defpath), cwd):
                return self._fail(
                    board, RunOutcome.SPAWN_FAILED, f"cannot start {argv[0]!r}: not found"
                )
            env["TMPDIR"] = "/tmp"  # noqa: S108 - the jail's own, empty /tmp
            argv = sandbox.wrap(
                argv,
                policy=self.spec.profile().sandbox,
                workspace=cwd,
                run_dir=private,
                kanban_home=self.home,
                environ=env,
            )
        try:
            with self.log.open("ab") as sink:
                # An ACP agent's stdio is the protocol; what it says for people goes to stderr.
                self.agent = subprocess.Popen(
                    argv,
                    preexec_fn=_die_with_parent,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.PIPE if piped else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if piped or stream else sink,
                    stderr=sink if piped or stream else subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            return self._fail(board, RunOutcome.SPAWN_FAILED, f"cannot start {argv[0]!r}: {exc}")
        return None

    def _asker(self, board: Kanban, cwd: Path) -> acp.PermissionAsker:
        return BoardAsker(
            board=board,
            actor=self.actor,
            task_id=self.proof.task_id,
            run_id=self.proof.run_id,
            policy=self.spec.profile().permissions,
            workspace=cwd,
            ttl_s=self.spec.permission_ttl_s,
            note=self.note,
        )

    def _usage_listener(self, board: Kanban) -> acp.UsageListener:
        """Record each usage report on the run; at the budget, cancel the turn.

        Reports are cumulative and come one at a time; the board keeps each figure growing, so
        a late or repeated report never undoes one.
        """

        def on_usage(usage: Mapping[str, int]) -> None:
            try:
                totals = board.record_usage(
                    self.actor,
                    self.proof.task_id,
                    self.proof.run_id,
                    usage.get("input_tokens", usage.get("used")),
                    usage.get("output_tokens"),
                    usage.get("cost_micro_usd"),
                )
            except KanbanError as exc:
                self.note(f"could not record usage: {exc}")
                return
            reason = self._with_profile_budget(totals).over_budget()
            if reason is not None and self.budget_reason is None:
                self.budget_reason = reason
                self.note(
                    f"{reason}; " + ("stopping the agent" if self.stream else "cancelling the turn")
                )
                if self.session is not None:
                    self.session.cancel.set()

        return on_usage

    def _with_profile_budget(self, totals: UsageTotals) -> UsageTotals:
        """The task's own budget, else its profile's."""
        return UsageTotals(
            totals.tokens,
            totals.cost_micro_usd,
            totals.max_tokens if totals.max_tokens is not None else self.spec.max_tokens,
            totals.max_cost_micro_usd
            if totals.max_cost_micro_usd is not None
            else self.spec.max_cost_micro_usd,
        )

    def _progress(self, board: Kanban) -> tuple[acp.ProgressSink, float] | None:
        interval = self.spec.progress_interval_s
        if interval is None:
            return None

        def sink(snapshot: dict[str, Any]) -> None:
            # The agent's verdict ends the run before its turn does: the final snapshot after
            # it has nothing left to show, and is not an error worth a log line.
            with suppress(StaleRun):
                board.progress(self.actor, self.proof.task_id, snapshot)

        return sink, interval

    def _read_stream(self, board: Kanban, agent: subprocess.Popen[bytes]) -> StreamReader:
        """Read the agent's stream-json stdout into the log, its usage and live progress."""
        assert agent.stdout is not None
        progress = self._progress(board)
        tracker = (
            ProgressTracker(interval_s=progress[1], clock=time.monotonic) if progress else None
        )
        reader = StreamReader(
            StreamFolder(tracker),
            self.note,
            on_usage=self._usage_listener(board),
            progress=progress[0] if progress else None,
        )
        reader.start(agent.stdout)
        return reader

    def _after_stream(self, board: Kanban) -> int | None:
        """The verdict a stream-json run's own report decides (budget, usage limit), if any."""
        assert self.stream is not None
        if self.budget_reason is not None:
            return self._block_for_budget(board, self.budget_reason)
        state = self.stream.folder.state
        limit = usage_limits.detect(state.evidence(), now_ms=_now_ms())
        if limit is not None and (state.is_error or state.result is None):
            # It stopped at its usage limit (a result that is an error, or none at all).
            return self._quota(board, limit)
        return None

    def _after_turn(self, board: Kanban, result: acp.SessionResult) -> int:
        """The verdict of an ACP run whose turn ended without the agent recording one."""
        task = board.get(self.proof.task_id)
        if task.status is not TaskStatus.RUNNING or task.current_run_id != self.proof.run_id:
            self.note(f"the agent's turn ended ({result.stop_reason}) after its verdict")
            return 0
        if self.budget_reason is not None:
            return self._block_for_budget(board, self.budget_reason)
        limit = usage_limits.detect(
            "\n".join(filter(None, (result.said, result.error))), now_ms=_now_ms()
        )
        if limit is not None:
            # The turn ended without a verdict and the agent reported its usage limit: it could
            # not work, so the task waits for the reset instead of counting a failure.
            return self._quota(board, limit)
        if result.error is not None:
            reason = f"the ACP session failed: {result.error}"
        elif result.stop_reason == "end_turn":
            reason = "the agent ended its turn without completing or blocking (protocol failure)"
        else:
            reason = f"the agent stopped ({result.stop_reason}) without completing or blocking"
        return self._fail(board, RunOutcome.CRASHED, reason)

    def _after_exit(self, board: Kanban, code: int) -> int:
        if self.session is not None:
            self.session.stop()
            result = self.session.result()
            if result.error is None and result.stop_reason is None:
                result.error = f"the agent exited with code {code} during its turn"
            return self._after_turn(board, result)
        if self.stream is not None:
            self.stream.join(_STREAM_DRAIN_S)  # its last lines (the result) belong in the log
        task = board.get(self.proof.task_id)
        if task.status is not TaskStatus.RUNNING or task.current_run_id != self.proof.run_id:
            self.note(f"agent exited with code {code} after recording its verdict")
            return 0
        if self.stream is not None:
            decided = self._after_stream(board)
            if decided is not None:
                return decided
        if code == 0:
            reason = "the agent exited 0 without completing or blocking (protocol failure)"
        elif code < 0:
            reason = f"the agent was killed by signal {-code}"
        elif self.contained and code > _SIGNALLED:
            # bubblewrap reports a signalled agent as 128 + the signal number.
            reason = f"the agent was killed by signal {code - _SIGNALLED} (exit status {code})"
        else:
            limit = usage_limits.detect(tail(self.log, _EVIDENCE_BYTES), now_ms=_now_ms())
            if limit is not None:
                return self._quota(board, limit)
            reason = f"the agent exited with code {code} without completing or blocking"
        return self._fail(board, RunOutcome.CRASHED, reason)

    def _quota(self, board: Kanban, limit: usage_limits.UsageLimit) -> int:
        """Pause the task at the agent's usage limit: not a failure, resumed at the reset."""
        try:
            pause = board.record_quota(
                self.actor,
                self.proof.task_id,
                self.proof.run_id,
                resume_at_ms=limit.resume_at_ms,
                message=limit.message,
                backoff_s=self.spec.quota_backoff_s,
            )
        except StaleRun:
            return 0
        self.note(f"{pause.reason} ({limit.message})")
        return 0

    def _block_for_budget(self, board: Kanban, reason: str) -> int:
        try:
            board.block_for_budget(self.actor, self.proof.task_id, reason)
        except StaleRun:
            return 0
        self.note(f"blocked: {reason}")
        return 0

    def _fail(self, board: Kanban, outcome: RunOutcome, reason: str) -> int:
        self.note(f"{outcome.value}: {reason}")
        try:
            verdict = board.record_failure(
                self.actor,
                self.proof.task_id,
                self.proof.run_id,
                outcome,
                reason,
                self.policy,
                evidence=tail(self.log, _EVIDENCE_BYTES),
            )
        except StaleRun:
            return 0  # someone else recorded this run's end first
        if verdict.gave_up:
            self.note("gave up: blocked for a human")
        else:
            delay = verdict.backoff_ms // 1000
            self.note(f"failure {verdict.failures}/{verdict.limit}; retry in {delay}s")
        return 1

    def _terminate(self) -> None:
        if self.session is not None:
            self.session.stop()  # session/cancel first: the agent may end its turn cleanly
        agent = self.agent
        if agent is None or agent.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGTERM)
        try:
            agent.wait(timeout=self.spec.terminate_grace_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        del signum, frame
        self._stopping = True

    def _agent_env(self, cwd: Path, tenant: str | None, run_dir: Path) -> dict[str, str]:
        env = {k: self.environ[k] for k in _INHERITED if k in self.environ}
        env |= {k: self.environ[k] for k in self.spec.pass_env if k in self.environ}
        env |= dict(self.spec.env)
        env |= {
            "KANBAN_TASK": f"t{self.spec.task_id}",
            "KANBAN_RUN_ID": str(self.spec.run_id),
            "KANBAN_RUN_TOKEN": self.proof.token,
            "KANBAN_WORKSPACE": str(cwd),
            # The run's capability, not the database: no URL, no password, no board path.
            SOCKET_ENV: str(run_dir / SOCKET_NAME),
            "KANBAN_TENANT": tenant or "",
        }
        env |= self.turn_env
        if self.spec.protocol == "stream-json" and "MCP_TOOL_TIMEOUT" not in env:
            # Claude Code's limit on one MCP tool call (ms): the permission prompt may wait
            # for a person up to the request's ttl, and must not be cut short before it.
            env["MCP_TOOL_TIMEOUT"] = str((self.spec.permission_ttl_s + 60) * 1000)
        # The agent must find the same `kanban` as the supervisor, whatever its PATH says.
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
        return env

    def _mcp_env(self, agent_dir: Path) -> dict[str, str]:
        """The kanban MCP server's environment: the run's identity and its door."""
        return {
            "KANBAN_TASK": f"t{self.spec.task_id}",
            "KANBAN_RUN_ID": str(self.spec.run_id),
            "KANBAN_RUN_TOKEN": self.proof.token,
            SOCKET_ENV: str(agent_dir / SOCKET_NAME),
            "KANBAN_TENANT": self.tenant or "",
        }

    def _write_mcp_config(self, private: Path, agent_dir: Path) -> None:
        server = {
            "command": sys.executable,
            "args": list(_MCP_ARGS),
            "env": self._mcp_env(agent_dir),
        }
        # Holds the run token: only this user may read it, and only this run's agent sees it.
        fd = os.open(private / _MCP_CONFIG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"mcpServers": {SERVER_NAME: server}}, handle)

    def note(self, message: str) -> None:
        """Append a supervisor line to the task's log."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(f"[kanban {stamp}] r{self.spec.run_id}: {message}\n")


class _SessionThread:
    """An ACP session with the agent, driven in a thread beside the supervisor's loop."""

    def __init__(
        self,
        spec: acp.SessionSpec,
        agent: subprocess.Popen[bytes],
        asker: acp.PermissionAsker,
        note: Callable[[str], None],
        on_usage: acp.UsageListener | None = None,
        progress: tuple[acp.ProgressSink, float] | None = None,
    ) -> None:
        assert agent.stdin is not None
        assert agent.stdout is not None
        self.cancel = threading.Event()
        self._result: acp.SessionResult | None = None
        stdin, stdout = agent.stdin, agent.stdout

        def drive() -> None:
            self._result = acp.run_session(
                spec, stdin, stdout, asker, note, self.cancel, on_usage=on_usage, progress=progress
            )

        self._thread = threading.Thread(target=drive, name="acp-session", daemon=True)
        self._thread.start()

    def ended(self) -> bool:
        """Whether the turn is over (the prompt answered, or the session failed)."""
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Cancel the turn and wait (bounded) for the session to close."""
        self.cancel.set()
        self._thread.join(_CANCEL_GRACE_S)

    def result(self) -> acp.SessionResult:
        """How the session ended (an error when it is still running)."""
        if self._result is None:
            return acp.SessionResult(error="the session did not end")
        return self._result


def _now_ms() -> int:
    # Only to read a reset time named as a time of day; the board's clock decides the pause.
    return int(time.time() * 1000)


def _executable(program: str, path: str, cwd: Path) -> bool:
    if os.sep in program:
        target = cwd / program
        return target.is_file() and os.access(target, os.X_OK)
    return shutil.which(program, path=path) is not None


def _begin_turn(board: Kanban, task_id: TaskId, run_id: RunId) -> TurnContext | None:
    # Imported here: only worktree tasks pay for the workspace machinery.
    from kanban_core.workspaces.interactive import turns

    return turns.begin(board, task_id, run_id)


def _die_with_parent() -> None:
    """In the agent, before exec: receive SIGTERM if the supervisor dies (Linux).

    The agent has its own process group (so its whole tree can be stopped), which also means a
    SIGKILLed supervisor would leave it running; the parent-death signal closes that gap.
    """
    with suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def main(stdin_text: str, environ: Mapping[str, str], open_door: DoorFactory) -> int:
    """Entry point of ``kanban worker``: the spec on stdin, the token in the environment."""
    # First: the run token and the database URL are in this process from here on.
    make_undumpable()
    become_subreaper()
    token = environ.get(SUPERVISOR_TOKEN_ENV, "")
    spec = WorkerSpec.from_json(stdin_text)
    if not token:
        raise KanbanError(f"kanban worker needs {SUPERVISOR_TOKEN_ENV}")
    supervisor = Supervisor(spec, token, environ, open_door)
    supervisor.note(f"supervisor {os.getpid()} on {socket.gethostname()}")
    return supervisor.run()
