"""One ACP session with an agent the supervisor started: the supervisor is the ACP client.

The agent speaks JSON-RPC on its stdio (the Agent Client Protocol, through the official SDK):
``initialize``, ``session/new`` in the workspace with the kanban MCP server (or ``session/load``
of the workspace session's earlier one, where the agent advertises ``loadSession``),
``session/prompt`` with the task's prompt, ``session/cancel`` when the run must stop. What the
agent streams (``session/update``) becomes lines of the run's log; what it asks
(``session/request_permission``) goes to the run's :class:`PermissionAsker`, whose answer is
mapped onto the agent's own options.

The SDK is asyncio; the supervisor is not, so a session runs on its own loop in a thread and
everything the board needs is called through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from kanban_core.dispatch.progress_tracker import ProgressTracker

#: A JSON-RPC line longer than this ends the session (a hostile or broken agent), not the process.
LINE_LIMIT_BYTES = 8 * 1024 * 1024
#: What one log line keeps of anything the agent sends.
_LOG_CHARS = 500
#: How long a "cancelled" answer waits for session/cancel to go out first.
_CANCEL_ORDER_S = 5.0
_PATH_KEYS = ("path", "file_path", "filePath", "notebook_path", "abs_path", "target", "destination")
_COMMAND_KEYS = ("command", "cmd")


class Verdict(enum.StrEnum):
    """What a permission request comes to."""

    ALLOW_ONCE = "allow_once"
    ALLOW_RUN = "allow_run"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class AgentAsk:
    """A tool call the agent wants to make, as the policy and a person see it."""

    tool_kind: str
    tool_name: str
    summary: str
    paths: tuple[str, ...]
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    """The decision on one ask, with the message the agent is given when denied."""

    verdict: Verdict
    message: str = ""
    withdrawn: bool = False  # the run is ending: the agent gets ACP's "cancelled" outcome


class PermissionAsker(Protocol):
    """Decides an agent's permission request; may block until a person answers."""

    def ask(self, ask: AgentAsk, cancelled: threading.Event) -> Answer:
        """The answer; returns a denial at once when ``cancelled`` is set."""


@dataclass(slots=True)
class SessionResult:
    """How a session ended."""

    stop_reason: str | None = None  # the agent's stopReason for the prompt
    error: str | None = None  # the protocol failed (or the agent went away) with this message
    asks: int = 0
    denied: int = 0
    updates: int = 0
    usage: dict[str, int] = field(default_factory=dict)
    said: str = ""  # the end of what the agent said (a usage limit is often only said)


#: Called with the session's usage so far whenever the agent reports some.
UsageListener = Callable[[Mapping[str, int]], None]
#: How much of what the agent said a result keeps.
_SAID_CHARS = 2000


def ask_from_tool_call(tool_call: Any) -> AgentAsk:
    """The ask of an ACP tool call: its kind, title, the command or paths its raw input names."""
    kind = str(getattr(tool_call, "kind", None) or "other")
    title = _bounded(str(getattr(tool_call, "title", None) or "a tool"))
    raw = getattr(tool_call, "raw_input", None)
    paths: list[str] = []
    for location in getattr(tool_call, "locations", None) or ():
        path = getattr(location, "path", None)
        if isinstance(path, str):
            paths.append(path)
    summary = title
    if isinstance(raw, Mapping):
        for key in _PATH_KEYS:
            value = raw.get(key)
            if isinstance(value, str) and value not in paths:
                paths.append(value)
        for key in _COMMAND_KEYS:
            value = raw.get(key)
            if isinstance(value, str):
                summary = _bounded(value)
            elif isinstance(value, list) and all(isinstance(part, str) for part in value):
                summary = _bounded(" ".join(value))
    return AgentAsk(tool_kind=kind, tool_name=title, summary=summary, paths=tuple(paths))


def choose_option(options: Sequence[Any], verdict: Verdict) -> str | None:
    """The agent's own option id for a verdict (never an invented one); None when it has none."""
    wanted = {
        Verdict.ALLOW_ONCE: ("allow_once", "allow_always"),
        Verdict.ALLOW_RUN: ("allow_once", "allow_always"),
        Verdict.DENY: ("reject_once", "reject_always"),
    }[verdict]
    for kind in wanted:
        for option in options:
            if str(getattr(option, "kind", "")) == kind:
                return str(option.option_id)
    return None


#: Receives a coalesced progress snapshot (writes it to the board); called off the event loop.
ProgressSink = Callable[[dict[str, Any]], None]


class _Client:
    """The client side of the connection: answers the agent's requests, logs its updates."""

    def __init__(
        self,
        asker: PermissionAsker,
        log: Callable[[str], None],
        cancelled: threading.Event,
        on_usage: UsageListener | None = None,
        progress: tuple[ProgressSink, float] | None = None,
    ) -> None:
        self.on_usage = on_usage
        self.asker = asker
        self.log = log
        self.cancelled = cancelled
        self.result = SessionResult()
        self._message: list[str] = []
        # Reports to the board go one at a time, each with the latest figures: an older one
        # finishing after a newer one would show stale progress (the SQL keeps usage growing).
        self._reporting = asyncio.Lock()
        self._sink = progress[0] if progress else None
        self.replaying = False  # session/load replays the earlier turns: not this turn's news
        #: Set once ``session/cancel`` went out (or the session is over): ACP has the client
        #: cancel the turn first and only then answer its pending requests "cancelled".
        self.cancel_sent = asyncio.Event()
        # The SDK hands each notification to its own task: one at a time, in the order sent,
        # or a later usage report could be recorded before an earlier one (and be undone).
        self._in_order = asyncio.Lock()
        self.tracker = (
            ProgressTracker(interval_s=progress[1], clock=time.monotonic) if progress else None
        )

    async def request_permission(
        self, options: list[Any], session_id: str, tool_call: Any, **kwargs: Any
    ) -> Any:
        from acp.schema import AllowedOutcome, DeniedOutcome, RequestPermissionResponse

        del session_id, kwargs
        self.result.asks += 1
        try:
            ask = ask_from_tool_call(tool_call)
        except Exception as exc:  # noqa: BLE001 - a malformed tool call is denied, not a crash
            self.log(f"permission request unreadable ({exc}); cancelled")
            return RequestPermissionResponse(outcome=DeniedOutcome(outcome="cancelled"))
        answer = await asyncio.to_thread(self.asker.ask, ask, self.cancelled)
        stopping = self.cancelled.is_set() or answer.withdrawn
        if stopping:
            # Withdrawn because the run is stopping: end the turn first (the session loop sends
            # session/cancel), so the agent is not answered "cancelled" while its turn still
            # looks alive to it, and then ends it on its own without ever hearing why.
            self.cancelled.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.cancel_sent.wait(), _CANCEL_ORDER_S)
        option = None if stopping else choose_option(options, answer.verdict)
        verdict = "cancelled" if stopping else answer.verdict.value
        self.log(f"permission {ask.tool_kind} {ask.summary!r}: {verdict}")
        if answer.verdict is Verdict.DENY:
            self.result.denied += 1
        # ACP has no field for why; the reason travels in _meta for agents that show it.
        meta = {"kanban": {"decision": answer.verdict.value, "message": answer.message}}
        if option is None:
            return RequestPermissionResponse(
                outcome=DeniedOutcome(outcome="cancelled"), field_meta=meta
            )
        return RequestPermissionResponse(
            outcome=AllowedOutcome(outcome="selected", option_id=option), field_meta=meta
        )

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        del session_id, kwargs
        if self.replaying:
            return
        async with self._in_order:
            await self._on_update(update)

    async def _on_update(self, update: Any) -> None:
        self.result.updates += 1
        kind = str(getattr(update, "session_update", ""))
        # The SDK runs each notification as its own task: everything is recorded before the
        # first await, so the log, the progress and the usage keep the agent's order.
        self._record(kind, update)
        await self.emit_progress(final=False)
        if kind == "usage_update":
            await self.report_usage()

    def _record(self, kind: str, update: Any) -> None:
        if self.tracker is not None:
            self.tracker.update(kind, update)
        if kind == "agent_message_chunk":
            text = getattr(getattr(update, "content", None), "text", None)
            if isinstance(text, str):
                self._message.append(text)
            return
        self.flush_message()
        if kind == "plan":
            entries = getattr(update, "entries", None) or ()
            steps = "; ".join(f"[{e.status}] {e.content}" for e in entries)
            self.log(f"plan: {_bounded(steps)}")
        elif kind in ("tool_call", "tool_call_update"):
            title = getattr(update, "title", None) or getattr(update, "tool_call_id", "")
            status = getattr(update, "status", None) or ""
            self.log(f"tool {_bounded(str(title))} {status}".rstrip())
        elif kind == "usage_update":
            self._usage(update)

    def _usage(self, update: Any) -> None:
        for name in ("used", "size"):
            value = getattr(update, name, None)
            if isinstance(value, int):
                self.result.usage[name] = value
        cost = getattr(update, "cost", None)
        amount = getattr(cost, "amount", None)
        # Only dollars are summed: another currency would need a rate the board does not have.
        if isinstance(amount, int | float) and str(getattr(cost, "currency", "")).upper() == "USD":
            self.result.usage["cost_micro_usd"] = max(0, round(amount * 1_000_000))

    async def report_usage(self) -> None:
        """Hand the usage so far to the listener (which may cancel the turn at a budget)."""
        if self.on_usage is None:
            return
        async with self._reporting:
            await asyncio.to_thread(self.on_usage, dict(self.result.usage))

    async def emit_progress(self, *, final: bool) -> None:
        """Hand the sink the latest snapshot when one is due (always at the end of the turn)."""
        if self.tracker is None or self._sink is None:
            return
        async with self._reporting:
            snapshot = self.tracker.take(final=final)
            if snapshot is None:
                return
            try:
                await asyncio.to_thread(self._sink, snapshot)
            except Exception as exc:  # noqa: BLE001 - progress is best effort; the turn goes on
                self.log(f"progress not recorded: {_bounded(str(exc))}")

    def flush_message(self) -> None:
        """Log what the agent said since the last other update, as one line."""
        if self._message:
            text = "".join(self._message)
            self.result.said = (self.result.said + "\n" + text)[-_SAID_CHARS:]
            self.log(f"agent: {_bounded(text)}")
            self._message.clear()

    # The capabilities the client does not advertise: an agent that calls them anyway gets
    # a JSON-RPC error from the SDK (method not found), never a crash.


@dataclass(frozen=True, slots=True)
class SessionSpec:
    """What a session needs besides the agent's pipes."""

    cwd: str
    prompt: str
    mcp_command: str
    mcp_args: tuple[str, ...]
    mcp_env: Mapping[str, str]
    load_session_id: str | None = None  # the earlier session to resume, where the agent can
    on_session: Callable[[str], None] | None = None  # hears a new session's id (to keep it)


def run_session(
    spec: SessionSpec,
    stdin: IO[bytes],
    stdout: IO[bytes],
    asker: PermissionAsker,
    log: Callable[[str], None],
    cancel: threading.Event,
    on_usage: UsageListener | None = None,
    progress: tuple[ProgressSink, float] | None = None,
) -> SessionResult:
    """Drive one prompt turn to its end on a fresh event loop (call from a thread).

    ``on_usage`` hears each usage report; ``progress`` is a sink and the minimum seconds
    between two snapshots (None turns it off).
    """
    return asyncio.run(
        _session(spec, stdin, stdout, asker, log, cancel, on_usage=on_usage, progress=progress)
    )


async def _session(
    spec: SessionSpec,
    stdin: IO[bytes],
    stdout: IO[bytes],
    asker: PermissionAsker,
    log: Callable[[str], None],
    cancel: threading.Event,
    *,
    on_usage: UsageListener | None = None,
    progress: tuple[ProgressSink, float] | None = None,
) -> SessionResult:
    from acp import PROTOCOL_VERSION, connect_to_agent, text_block
    from acp.schema import ClientCapabilities, EnvVariable, Implementation, McpServerStdio

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT_BYTES)
    reading, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), stdout)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, stdin)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    client = _Client(asker, log, cancel, on_usage=on_usage, progress=progress)
    connection = connect_to_agent(client, writer, reader)  # type: ignore[arg-type]
    result = client.result
    try:
        started = await connection.initialize(
            protocol_version=PROTOCOL_VERSION,
            # Only what is implemented: no file system, no terminal (the agent has its own).
            client_capabilities=ClientCapabilities(),
            client_info=Implementation(name="kanban-gateway", version="1"),
        )
        server = McpServerStdio(
            name="kanban",
            command=spec.mcp_command,
            args=list(spec.mcp_args),
            env=[EnvVariable(name=k, value=v) for k, v in spec.mcp_env.items()],
        )
        can_load = bool(getattr(started.agent_capabilities, "load_session", False))
        session_id = await _open_session(connection, spec, server, client, can_load=can_load)
        prompt = asyncio.ensure_future(
            connection.prompt(session_id=session_id, prompt=[text_block(spec.prompt)])
        )
        stop = asyncio.ensure_future(asyncio.to_thread(cancel.wait))
        done, _ = await asyncio.wait({prompt, stop}, return_when=asyncio.FIRST_COMPLETED)
        if prompt not in done:
            log("cancelling the agent's turn")
            await connection.cancel(session_id=session_id)
            client.cancel_sent.set()
            # The agent answers the prompt with stopReason "cancelled"; a broken one may not.
            await asyncio.wait({prompt}, timeout=5)
        if prompt.done() and prompt.exception() is None:
            response = prompt.result()
            result.stop_reason = str(response.stop_reason)
            usage = getattr(response, "usage", None)
            for name in ("input_tokens", "output_tokens", "total_tokens"):
                value = getattr(usage, name, None)
                if isinstance(value, int):
                    result.usage[name] = value
            if usage is not None:
                await client.report_usage()
        elif prompt.done():
            failure = prompt.exception()
            text = str(failure) or type(failure).__name__
            data = getattr(failure, "data", None)
            if data is not None:
                # A JSON-RPC error's data often says why (a usage limit and its reset time).
                text += f" ({data})"
            result.error = _bounded(text)
        else:
            prompt.cancel()
            result.error = "the agent did not end its turn after session/cancel"
        if not stop.done():
            cancel.set()  # ends the waiting thread; the session is over anyway
    except Exception as exc:  # noqa: BLE001 - the agent broke the protocol or went away
        result.error = _bounded(f"{type(exc).__name__}: {exc}")
    finally:
        client.cancel_sent.set()  # nothing more will be cancelled: no answer waits on it
        client.flush_message()
        await client.emit_progress(final=True)  # the final state, before the terminal event
        cancel.set()
        # Closing a dead pipe fails; nothing is left to do then.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.close(), 2)
        # The pipes are the agent's; closing them here is what makes a hung agent see EOF.
        transport.close()
        reading.close()
        await asyncio.sleep(0)  # lets the transports finish closing on this loop
    return result


async def _open_session(
    connection: Any, spec: SessionSpec, server: Any, client: _Client, *, can_load: bool
) -> str:
    """Resume the earlier session with ``session/load`` where the agent can; else a new one."""
    earlier = spec.load_session_id
    if earlier and not can_load:
        client.log(f"the agent cannot resume {earlier} (no loadSession); starting a new session")
    elif earlier:
        client.replaying = True
        try:
            await connection.load_session(cwd=spec.cwd, session_id=earlier, mcp_servers=[server])
            client.log(f"resumed the agent's session {earlier} (session/load)")
            return earlier
        except Exception as exc:  # noqa: BLE001 - a lost session is not the turn's end
            client.log(f"session/load of {earlier} failed ({_bounded(str(exc))}); starting anew")
        finally:
            client.replaying = False
    session = await connection.new_session(cwd=spec.cwd, mcp_servers=[server])
    if spec.on_session is not None:
        await asyncio.to_thread(spec.on_session, str(session.session_id))
    return str(session.session_id)


def _bounded(text: str) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat if len(flat) <= _LOG_CHARS else flat[: _LOG_CHARS - 1] + "…"
