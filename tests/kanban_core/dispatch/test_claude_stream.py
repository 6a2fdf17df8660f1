"""dispatch.claude_stream: Claude Code's stream-json lines into log lines, progress and usage."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from kanban_core.dispatch.claude_stream import (
    MAX_LINE_BYTES,
    StreamFolder,
    StreamReader,
    read_lines,
)
from kanban_core.dispatch.progress_tracker import ProgressTracker


def line(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode() + b"\n"


def assistant(content: list[dict[str, Any]], **message: Any) -> bytes:
    return line({"type": "assistant", "message": {"content": content, **message}})


def tracked() -> StreamFolder:
    return StreamFolder(ProgressTracker(interval_s=0, clock=lambda: 0.0))


def test_init_text_tools_and_results_become_readable_log_lines():
    folder = tracked()
    init = {
        "type": "system",
        "subtype": "init",
        "session_id": "s-1",
        "model": "opus",
        "tools": ["Bash", "Read"],
        "permissionMode": "default",
        "mcp_servers": [{"name": "kanban", "status": "connected"}],
    }
    tool_use = {"type": "tool_use", "id": "u1", "name": "Bash", "input": {"command": "make"}}
    failed = {"type": "tool_result", "tool_use_id": "u1", "is_error": True, "content": "no"}
    passed = {"type": "tool_result", "content": [{"type": "text", "text": "ok"}]}

    logged = [
        folder.fold(line(init)).log,
        folder.fold(assistant([{"type": "text", "text": "Let me build."}, tool_use])).log,
        folder.fold(line({"type": "user", "message": {"content": [failed, passed]}})).log,
    ]

    assert logged == [
        (
            "session s-1: model opus, 2 tools, permission mode default, "
            "MCP servers: kanban (connected)",
        ),
        ("agent: Let me build.", "tool Bash: make"),
        ("tool failed: no", "tool done: ok"),
    ]
    assert folder.state.session_id == "s-1"
    assert folder.tracker is not None
    snapshot = folder.tracker.snapshot()
    assert (snapshot["tool"], snapshot["tool_calls"], snapshot["messages"]) == ("Bash: make", 1, 1)
    assert snapshot["message"] == "Let me build."


def test_todo_write_is_the_plan():
    folder = tracked()
    todos = [{"content": "read", "status": "completed"}, {"content": "write"}, "junk"]
    use = {"type": "tool_use", "name": "TodoWrite", "input": {"todos": todos}}

    assert folder.fold(assistant([use])).log == ("tool TodoWrite",)
    assert folder.tracker is not None
    assert folder.tracker.snapshot()["plan"] == [
        {"content": "read", "status": "completed"},
        {"content": "write", "status": "pending"},
    ]


def test_usage_counts_each_api_message_once_and_the_result_is_authoritative():
    folder = StreamFolder()
    usage = {"input_tokens": 100, "output_tokens": 5}
    first = folder.fold(assistant([{"type": "text", "text": "a"}], id="m1", usage=usage))
    # Claude prints one line per content block of a message, each with the message's usage.
    again = folder.fold(assistant([{"type": "tool_use", "name": "Read"}], id="m1", usage=usage))
    second = folder.fold(assistant([], id="m2", usage={"input_tokens": 50, "output_tokens": 1}))
    assert (first.usage_changed, again.usage_changed, second.usage_changed) == (True, False, True)
    assert folder.state.usage() == {"input_tokens": 150, "output_tokens": 6}

    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "done",
        "num_turns": 3,
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 160, "output_tokens": 9, "cache_read_input_tokens": 4000},
    }
    folded = folder.fold(line(result))

    assert folded.usage_changed
    assert folded.log == ("result: success after 3 turns, 160 in / 9 out tokens, $0.0123",)
    assert folder.state.usage() == {
        "input_tokens": 160,
        "output_tokens": 9,
        "cost_micro_usd": 12_300,
    }


def test_a_usage_limit_result_is_kept_as_evidence():
    folder = StreamFolder()
    result = {"type": "result", "is_error": True, "result": "Claude AI usage limit reached|1"}

    folded = folder.fold(line(result))

    assert folded.log[-1] == "result (error): Claude AI usage limit reached|1"
    assert folder.state.is_error
    assert "usage limit reached" in folder.state.evidence()


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"plain words\n", "agent output: plain words"),
        (b"{not json\n", "agent output: {not json"),
        (b"[1, 2]\n", "agent output: [1, 2]"),
        (b"\xff\xfe\x00\x1b[31m\n", "agent output: \ufffd\ufffd  [31m"),
        (b"{" * 50_000 + b"\n", "agent output: " + "{" * 499),
    ],
)
def test_garbage_is_a_bounded_plain_line_never_an_exception(raw, shown):
    folded = StreamFolder().fold(raw)
    assert folded.log[0].startswith(shown[:120])
    assert len(folded.log[0]) < 600


@pytest.mark.parametrize(
    "message",
    [
        {"type": "assistant", "message": "a string"},
        {"type": "assistant", "message": {"content": [1, None, {"type": "text", "text": 5}]}},
        {"type": "assistant", "message": {"content": [], "id": "m", "usage": {"input_tokens": -4}}},
        {"type": "user", "message": {"content": [{"type": "tool_result", "content": {"a": 1}}]}},
        {"type": "result", "usage": "none", "total_cost_usd": "free", "num_turns": True},
        {"type": "result", "total_cost_usd": float("1e300")},
        {"type": "system", "subtype": ["x"], "mcp_servers": "kanban"},
        {"type": "stream_event", "event": {}},
        {"type": None},
    ],
)
def test_hostile_shapes_are_folded_without_raising(message):
    folder = tracked()
    folder.fold(json.dumps(message))
    assert folder.state.input_tokens >= 0
    assert folder.state.cost_micro_usd is None or folder.state.cost_micro_usd < 10**15


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_any_line_at_all_is_folded_without_raising(raw):
    StreamFolder(ProgressTracker(interval_s=0, clock=lambda: 0.0)).fold(raw)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["type", "message", "content", "usage", "text", "input", "name"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=30,
    )
)
def test_any_json_shape_is_folded_without_raising(value):
    StreamFolder(ProgressTracker(interval_s=0, clock=lambda: 0.0)).fold(json.dumps(value))


def test_deep_nesting_is_refused_as_plain_text():
    deep = '{"type": "assistant", "message": ' + "[" * 100_000 + "]" * 100_000 + "}"
    folded = StreamFolder().fold(deep)
    assert folded.log[0].startswith("agent output:")


def test_a_line_past_the_limit_is_cut_and_its_rest_skipped():
    huge = b"x" * (MAX_LINE_BYTES * 2 + 10) + b"\n"
    seen: list[bytes] = []

    read_lines(io.BytesIO(huge + line({"type": "system", "subtype": "x"})), seen.append)

    assert len(seen) == 2
    assert seen[0].endswith(b" [cut]")
    assert len(seen[0]) <= MAX_LINE_BYTES + 6
    assert json.loads(seen[1])["subtype"] == "x"


def test_the_reader_logs_reports_usage_and_flushes_progress_at_the_end():
    logged: list[str] = []
    usages: list[Mapping[str, int]] = []
    snapshots: list[dict[str, Any]] = []
    clock = iter(range(1000))
    folder = StreamFolder(ProgressTracker(interval_s=100, clock=lambda: float(next(clock))))
    reader = StreamReader(folder, logged.append, on_usage=usages.append, progress=snapshots.append)
    stream = io.BytesIO(
        assistant([{"type": "text", "text": "one"}], id="m1", usage={"input_tokens": 3})
        + assistant([{"type": "text", "text": "two"}])
        + line({"type": "result", "total_cost_usd": 0.5, "usage": {"output_tokens": 2}})
    )

    reader.start(stream)
    reader.join(10)

    assert logged[:2] == ["agent: one", "agent: two"]
    assert usages == [
        {"input_tokens": 3, "output_tokens": 0},
        {"input_tokens": 3, "output_tokens": 2, "cost_micro_usd": 500_000},
    ]
    # The first snapshot at once, the rest coalesced into the final one.
    assert [s["message"] for s in snapshots] == ["one", "two"]


def test_a_failing_usage_listener_neither_stops_the_reading_nor_loses_lines():
    logged: list[str] = []

    def broken(usage: Mapping[str, int]) -> None:
        raise RuntimeError("the board is gone")

    reader = StreamReader(StreamFolder(), logged.append, on_usage=broken)
    many = b"".join(
        assistant([{"type": "text", "text": f"line {i}"}], id=f"m{i}", usage={"input_tokens": i})
        for i in range(1, 2001)
    )

    reader.start(io.BytesIO(many))
    reader.join(30)

    said = [entry for entry in logged if entry.startswith("agent: ")]
    assert len(said) == 2000
    assert "agent output not handled: RuntimeError: the board is gone" in logged
