"""Claude Code's ``--output-format stream-json`` output, folded into log lines, progress and usage.

Each line the agent prints is one JSON object: ``system`` (``init`` names the session, model and
MCP servers), ``assistant`` (text and ``tool_use`` blocks, with the API call's usage),
``user`` (``tool_result`` blocks) and, last, ``result`` (the outcome, ``total_cost_usd`` and the
session's ``usage``). :class:`StreamFolder` is pure: a line in, the log lines it means out, with
its state (usage so far, what the agent said) kept for the supervisor. Anything else — not
JSON, cut short, too deeply nested, of an unknown shape — becomes a bounded plain log line.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from kanban_core.dispatch.permission_tool import summary_of
from kanban_core.dispatch.progress_tracker import ProgressTracker

#: A line longer than this is cut; the rest of it is skipped, not parsed.
MAX_LINE_BYTES = 1 << 20
#: What one log line keeps of anything the agent sends.
_LOG_CHARS = 500
#: How much of what the agent said is kept (a usage limit is often only said).
_SAID_CHARS = 4000
#: A count past this is not believed (a garbled or hostile number).
_MAX_COUNT = 10**15
#: Messages whose usage is tracked one by one; past this only the result's totals count.
_MAX_MESSAGES = 100_000


@dataclass(slots=True)
class StreamState:
    """What the stream said so far."""

    session_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micro_usd: int | None = None
    said: str = ""
    result: str | None = None  # the result message's text, once it came
    result_subtype: str | None = None
    is_error: bool = False
    lines: int = 0
    unreadable: int = 0
    # Claude repeats a message's usage on each of its content lines: counted once per message.
    per_message: dict[str, tuple[int, int]] = field(default_factory=dict)

    def usage(self) -> dict[str, int]:
        """The usage so far, in the shape the supervisor's usage listener takes."""
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        if self.cost_micro_usd is not None:
            usage["cost_micro_usd"] = self.cost_micro_usd
        return usage

    def evidence(self) -> str:
        """What the agent said and its result, for the usage-limit check."""
        return "\n".join(filter(None, (self.said, self.result)))


@dataclass(frozen=True, slots=True)
class Fold:
    """What one line meant: lines for the log, and whether the usage changed."""

    log: tuple[str, ...] = ()
    usage_changed: bool = False


class StreamFolder:
    """Folds stream-json lines into a :class:`StreamState` and an optional progress tracker."""

    def __init__(self, tracker: ProgressTracker | None = None) -> None:
        self.state = StreamState()
        self.tracker = tracker

    def fold(self, raw: bytes | str) -> Fold:
        """One line of the agent's stdout; never raises."""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text:
            return Fold()
        self.state.lines += 1
        try:
            message = json.loads(text) if text.startswith("{") else None
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            return self._plain(text)
        try:
            return self._message(message)
        except Exception as exc:  # noqa: BLE001 - a hostile shape is logged, never a crash
            self.state.unreadable += 1
            return Fold((f"unreadable stream message ({type(exc).__name__}): {_bounded(text)}",))

    def _plain(self, text: str) -> Fold:
        # Not a stream message (a custom command, a crash's traceback): kept as the agent's text.
        self._remember(text)
        return Fold((f"agent output: {_bounded(text)}",))

    def _message(self, message: Mapping[str, Any]) -> Fold:
        kind = message.get("type")
        if kind == "assistant":
            return self._assistant(message)
        if kind == "user":
            return Fold(tuple(self._tool_results(message)))
        if kind == "result":
            return self._result(message)
        if kind == "system":
            return Fold((self._system(message),))
        return Fold()  # partial-message events and future kinds: nothing for the log

    def _system(self, message: Mapping[str, Any]) -> str:
        subtype = _text(message.get("subtype")) or "message"
        if subtype != "init":
            return f"system {_bounded(subtype)}"
        self.state.session_id = _text(message.get("session_id"))
        servers = [
            f"{_text(s.get('name'))} ({_text(s.get('status'))})"
            for s in _list(message.get("mcp_servers"))
            if isinstance(s, dict)
        ]
        return _bounded(
            f"session {self.state.session_id or '?'}: model {_text(message.get('model')) or '?'}, "
            f"{len(_list(message.get('tools')))} tools, "
            f"permission mode {_text(message.get('permissionMode')) or '?'}, "
            f"MCP servers: {', '.join(servers) or 'none'}"
        )

    def _assistant(self, message: Mapping[str, Any]) -> Fold:
        body = message.get("message")
        if not isinstance(body, dict):
            return Fold()
        lines: list[str] = []
        for block in _list(body.get("content")):
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text":
                said = _text(block.get("text"))
                if said:
                    self._remember(said)
                    if self.tracker is not None:
                        self.tracker.said(said, whole=True)
                    lines.append(f"agent: {_bounded(said)}")
            elif block.get("type") == "tool_use":
                lines.append(self._tool_use(block))
        return Fold(tuple(lines), self._message_usage(body))

    def _tool_use(self, block: Mapping[str, Any]) -> str:
        name = _bounded(_text(block.get("name")) or "tool", 100)
        tool_input = block.get("input")
        summary = summary_of(name, tool_input) if isinstance(tool_input, dict) else name
        if self.tracker is not None:
            todos = tool_input.get("todos") if isinstance(tool_input, dict) else None
            if name == "TodoWrite" and isinstance(todos, list):
                self.tracker.planned(
                    [
                        (_text(t.get("content")), _text(t.get("status")) or "pending")
                        for t in todos
                        if isinstance(t, dict)
                    ]
                )
            else:
                self.tracker.tool_started(name if summary == name else f"{name}: {summary}")
        return f"tool {name}: {_bounded(summary)}" if summary != name else f"tool {name}"

    def _tool_results(self, message: Mapping[str, Any]) -> list[str]:
        body = message.get("message")
        if not isinstance(body, dict):
            return []
        lines = []
        for block in _list(body.get("content")):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                content = block.get("content")
                if isinstance(content, list):
                    content = " ".join(
                        _text(part.get("text")) for part in content if isinstance(part, dict)
                    )
                shown = _bounded(_text(content) or "")
                if block.get("is_error"):
                    lines.append(f"tool failed: {shown}")
                else:
                    lines.append(f"tool done: {_bounded(shown, 120)}")
        return lines

    def _message_usage(self, body: Mapping[str, Any]) -> bool:
        usage = body.get("usage")
        message_id = _text(body.get("id"))
        if not isinstance(usage, dict) or not message_id:
            return False
        state = self.state
        counts = (_count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
        before = state.per_message.get(message_id)
        if before == counts:
            return False
        if before is None and len(state.per_message) >= _MAX_MESSAGES:
            return False  # a hostile stream of message ids; the result carries the totals
        old_in, old_out = before or (0, 0)
        state.per_message[message_id] = counts
        state.input_tokens = min(_MAX_COUNT, state.input_tokens - old_in + counts[0])
        state.output_tokens = min(_MAX_COUNT, state.output_tokens - old_out + counts[1])
        return True

    def _result(self, message: Mapping[str, Any]) -> Fold:
        state = self.state
        state.result_subtype = _text(message.get("subtype")) or "?"
        state.is_error = message.get("is_error") is True
        state.result = _text(message.get("result"))[-_SAID_CHARS:] or None
        usage = message.get("usage")
        if isinstance(usage, dict):
            # The session's totals: authoritative over the per-message sums, where given.
            if _is_count(usage.get("input_tokens")):
                state.input_tokens = _count(usage["input_tokens"])
            if _is_count(usage.get("output_tokens")):
                state.output_tokens = _count(usage["output_tokens"])
        cost = message.get("total_cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool) and 0 <= cost < 1e9:
            state.cost_micro_usd = round(cost * 1_000_000)
        turns = _count(message.get("num_turns"))
        dollars = f", ${state.cost_micro_usd / 1e6:.4f}" if state.cost_micro_usd is not None else ""
        lines = [
            f"result: {_bounded(state.result_subtype, 60)} after {turns} turns, "
            f"{state.input_tokens} in / {state.output_tokens} out tokens{dollars}"
        ]
        if state.is_error and state.result:
            lines.append(f"result (error): {_bounded(state.result)}")
        return Fold(tuple(lines), usage_changed=True)

    def _remember(self, text: str) -> None:
        self.state.said = (self.state.said + "\n" + text[-_SAID_CHARS:])[-_SAID_CHARS:]


def read_lines(stream: IO[bytes], on_line: Callable[[bytes], None]) -> None:
    """Hand each line of ``stream`` to ``on_line`` until EOF; a too-long line is cut, never held."""
    skipping = False
    while True:
        line = stream.readline(MAX_LINE_BYTES)
        if not line:
            return
        complete = line.endswith(b"\n")
        if not skipping:
            on_line(line if complete else line + b" [cut]")
        skipping = not complete


@dataclass(slots=True)
class StreamReader:
    """Reads an agent's stream-json stdout in a thread: log lines, usage reports, progress."""

    folder: StreamFolder
    log: Callable[[str], None]
    on_usage: Callable[[Mapping[str, int]], None] | None = None
    progress: Callable[[dict[str, Any]], None] | None = None
    _thread: threading.Thread | None = None

    def start(self, stream: IO[bytes]) -> None:
        """Read ``stream`` until EOF in a daemon thread."""
        self._thread = threading.Thread(
            target=self._run, args=(stream,), name="claude-stream", daemon=True
        )
        self._thread.start()

    def join(self, timeout: float) -> None:
        """Wait (bounded) for the stream's end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, stream: IO[bytes]) -> None:
        try:
            read_lines(stream, self._line)
        except (OSError, ValueError) as exc:
            self.log(f"agent output unreadable: {exc}")
        finally:
            self._emit(final=True)

    def _line(self, line: bytes) -> None:
        # Whatever fails here, the pipe is still drained: an agent whose stdout is not read
        # blocks on its next write, and the run would hang instead of ending.
        try:
            folded = self.folder.fold(line)
            for entry in folded.log:
                self.log(entry)
            if folded.usage_changed and self.on_usage is not None:
                self.on_usage(self.folder.state.usage())
            self._emit(final=False)
        except Exception as exc:  # noqa: BLE001 - reported once per line, never fatal
            with contextlib.suppress(Exception):
                self.log(f"agent output not handled: {type(exc).__name__}: {_bounded(str(exc))}")

    def _emit(self, *, final: bool) -> None:
        tracker = self.folder.tracker
        snapshot = tracker.take(final=final) if tracker is not None else None
        if snapshot is None or self.progress is None:
            return
        try:
            self.progress(snapshot)
        except Exception as exc:  # noqa: BLE001 - progress is best effort; the run goes on
            self.log(f"progress not recorded: {_bounded(str(exc))}")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> int:
    return min(value, _MAX_COUNT) if _is_count(value) else 0


def _bounded(text: str, limit: int = _LOG_CHARS) -> str:
    flat = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4]).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
