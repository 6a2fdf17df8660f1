"""``python -m benchmarks [--quick] [--pg URL] [--only KEYS]``: measure the kernel, print one table.

Targets are compared against, never asserted (shared machines are noisy): a missed target is
marked ✗ and the exit status stays 0. Only a failed correctness check of the concurrent-claim
run (a task claimed twice, a surfaced "database is locked", a damaged database) exits 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks import (
    agents_bench,
    cases,
    contention,
    dispatching,
    failover_bench,
    gateway_bench,
    opening,
    progress_bench,
    remote_bench,
    sandbox_bench,
    web_bench,
    web_page,
)
from benchmarks.backends import Backend, PostgresBackend, SqliteBackend
from benchmarks.report import (
    Metric,
    Value,
    at_least,
    at_most,
    mebibytes,
    microseconds,
    milliseconds,
    per_second,
    render_table,
    seconds,
)
from benchmarks.sizes import Sizes
from benchmarks.timing import Progress

PG_ENV = "KANBAN_BENCH_PG_URL"
COLUMNS = ("SQLite", "PostgreSQL")


def metrics(sizes: Sizes) -> list[Metric]:
    """The table's rows, labelled with the sizes actually used."""
    big = f"{sizes.big_board // 1000}k-task board"
    return [
        Metric(
            "cycles_fresh",
            f"claim→complete, fresh board (ready queue ≤ {sizes.cycle_batch})",
            per_second,
            at_least(4_600, "≥ 4,600/s"),
            column_targets=(("PostgreSQL", at_least(2_000, "≥ 2,000/s")),),
        ),
        Metric(
            "cycles_batch",
            f"… claims in batches of {cases.CLAIM_BATCH} (`claim_next`), each completed alone",
            per_second,
            column_targets=(("PostgreSQL", at_least(2_000, "≥ 2,000/s")),),
        ),
        Metric(
            "cycles_big",
            f"claim→complete, {big}, {sizes.big_todo:,} waiting in todo",
            per_second,
            at_least(2_000, "≥ 2,000/s"),
        ),
        Metric(
            "cycles_promote",
            f"claim→complete, {big}, each completion promoting a waiting child",
            per_second,
            at_least(2_000, "≥ 2,000/s"),
        ),
        Metric(
            "list",
            f"`list` in-process, {sizes.list_board:,}-task board (rendered)",
            milliseconds,
            at_most(0.040, "≤ 40 ms"),
        ),
        Metric(
            "show",
            f"`show` in-process, task with {sizes.show_events:,} events, {big}",
            milliseconds,
            at_most(0.010, "≤ 10 ms"),
        ),
        Metric(
            "context",
            f"worker context of a task with {sizes.show_events:,} events, {big}",
            milliseconds,
            at_most(0.003, "≤ 3.0 ms"),
        ),
        Metric(
            "poll",
            f"empty event poll (events_after), {sizes.events:,} events",
            microseconds,
            at_most(50e-6, "≤ 50 µs"),
        ),
        Metric(
            "poll_raw",
            "… the reference's poll (raw sqlite3, one SELECT), same log",
            microseconds,
            target_text="recorded",
        ),
        Metric(
            "open",
            "open and close a board, as each command does (`Kanban.open` + close)",
            microseconds,
            target_text="< next row",
        ),
        Metric(
            "open_raw",
            "… the reference's connect() + close (raw sqlite3, its pragmas), same board",
            microseconds,
            target_text="recorded",
        ),
        Metric(
            "first_call",
            "first `kanban create` in a fresh home (the board created): wall",
            seconds,
            at_most(0.36, "≤ 0.36 s"),
        ),
        Metric(
            "cli_wall",
            "`kanban list` subprocess, empty board: wall",
            seconds,
            at_most(0.20, "≤ 0.20 s"),
        ),
        Metric(
            "cli_rss",
            "`kanban list` subprocess, empty board: peak RSS",
            mebibytes,
            at_most(40 * 2**20, "≤ 40 MiB"),
        ),
        Metric(
            "claims_parallel",
            f"claim→complete, {sizes.contention_workers} processes, "
            f"{sizes.contention_tasks:,} ready tasks",
            per_second,
            column_targets=(("PostgreSQL", at_least(5_000, "≥ 5,000/s")),),
        ),
        Metric(
            "claims_parallel_batch",
            f"… claims in batches of {cases.CLAIM_BATCH}, {sizes.contention_workers} processes",
            per_second,
            column_targets=(("PostgreSQL", at_least(5_000, "≥ 5,000/s")),),
        ),
        Metric(
            "claims_ok",
            "… each task exactly once, no “database is locked”, integrity ok",
            str,
            target_text="all ok",
        ),
        Metric(
            "pass_idle",
            f"dispatcher pass, {big}, {sizes.dispatch_running:,} running at cap, "
            f"{sizes.dispatch_ready:,} ready: nothing claimable",
            milliseconds,
            at_most(0.010, "≤ 10 ms"),
        ),
        Metric(
            "pass_spawn10",
            "… a pass that claims and spawns 10 (process start excluded)",
            milliseconds,
            at_most(0.040, "≤ 40 ms"),
        ),
        Metric(
            "promotion",
            "complete a parent with 10 waiting children (promotion included)",
            milliseconds,
            at_most(0.002, "≤ 2 ms"),
        ),
        Metric(
            "nudge",
            "nudged claim: create → worker spawn, through the gateway loop, p99",
            milliseconds,
            at_most(0.100, "≤ 100 ms"),
        ),
        Metric(
            "dispatchers_ok",
            f"{sizes.contention_workers} dispatchers racing: each task claimed once",
            str,
            target_text="all once",
        ),
        Metric(
            "router",
            f"chat `list` through the router, {sizes.router_board:,}-task board, p99",
            milliseconds,
            at_most(0.050, "≤ 50 ms"),
        ),
        Metric(
            "notify",
            "event committed (other connection) → adapter send, p99",
            milliseconds,
            at_most(0.250, "≤ 250 ms"),
        ),
        Metric(
            "sandbox",
            "what the bubblewrap jail adds to an agent's spawn, median",
            milliseconds,
            at_most(0.050, "≤ 50 ms"),
        ),
        Metric(
            "remote_exec",
            "`/ws status` asked on one host, run on the workspace's host → reply in chat, p99",
            milliseconds,
            at_most(0.500, "≤ 500 ms"),
        ),
        Metric(
            "answer",
            "permission answer → the waiting agent wakes, p99",
            milliseconds,
            at_most(0.250, "≤ 250 ms"),
        ),
        Metric(
            "acp_stream",
            f"ACP turn of {agents_bench.UPDATES:,} session/update messages: supervisor CPU",
            seconds,
            at_most(1.0, "≤ 1 s"),
        ),
        Metric(
            "web_page",
            f"web board page of {web_page.CARDS:,} cards, load → interactive (headless Chromium)",
            seconds,
            at_most(1.5, "≤ 1.5 s"),
        ),
        Metric(
            "web_visible",
            "… a task committed by another process → its card shown in that page, p99",
            milliseconds,
            at_most(0.250, "≤ 250 ms"),
        ),
        Metric(
            "web_board",
            f"web `GET /api/board`, {sizes.list_board:,}-task board: server time, median",
            milliseconds,
            at_most(0.100, "≤ 100 ms"),
        ),
        Metric(
            "web_board_all",
            "… with every finished card too (`?finished=100000`, ~10k cards, 3 MB of JSON)",
            milliseconds,
            target_text="recorded",
        ),
        Metric(
            "web_stream",
            "web: event committed by another process → read off an open SSE stream, p99",
            milliseconds,
            at_most(0.250, "≤ 250 ms"),
        ),
        Metric(
            "web_streams_rss",
            f"web: {web_bench.STREAMS} open SSE streams, memory added to `kanban web`",
            mebibytes,
            at_most(20 * 2**20, "≤ 20 MiB"),
        ),
        Metric(
            "progress_edit",
            "agent update → edited chat message (Telegram, "
            f"{progress_bench.INTERVAL_S * 1000:,.0f} ms coalescing), p99",
            milliseconds,
            at_most(
                progress_bench.INTERVAL_S + 0.250,
                f"≤ {progress_bench.INTERVAL_S * 1000 + 250:,.0f} ms",
            ),
        ),
        Metric(
            "claude_stream",
            f"claude-code run of {agents_bench.UPDATES:,} stream-json lines: supervisor CPU",
            seconds,
            at_most(1.0, "≤ 1 s"),
        ),
        Metric(
            "failover",
            "a host killed (kill -9) → its chat answered from another host, `lease_seconds: 2`",
            seconds,
            at_most(4.0, "≤ lease + 2 s"),
        ),
        Metric(
            "gateway_rss",
            "gateway + Telegram, Discord, Slack adapters loaded: resident memory",
            mebibytes,
            target_text="recorded",
        ),
    ]


class Run:
    """One backend's measurements, each isolated: a failure becomes an error cell, not a crash."""

    def __init__(
        self, backend: Backend, sizes: Sizes, log: Progress, only: frozenset[str] = frozenset()
    ) -> None:
        self.only = only  # the metric keys to measure; empty: all of them
        self.backend = backend
        self.sizes = sizes
        self.log = log
        self.results: dict[str, Value] = {}
        self.notes: list[str] = []
        self.failed_checks = False

    def measure(self, keys: Sequence[str], fn: Callable[[], Sequence[Value]]) -> None:
        """Run one measurement; on an exception, every key it fills says ``error``.

        With ``only`` set, a measurement filling none of those keys is skipped.
        """
        if self.only and not self.only.intersection(keys):
            return
        try:
            values = fn()
        except Exception as exc:  # noqa: BLE001 - one broken measurement must not hide the rest
            traceback.print_exc(file=sys.stderr)
            name = type(exc).__name__
            self.notes.append(f"{self.backend.name} {'/'.join(keys)}: {name}: {exc}")
            values = [f"error ({name})"] * len(keys)
        self.results.update(zip(keys, values, strict=True))

    def all(self) -> None:
        """Every measurement, cheapest first."""
        b, s, log = self.backend, self.sizes, self.log
        self.measure(["cli_wall", "cli_rss"], lambda: cases.cli_list(b, s, log))
        self.measure(["first_call"], lambda: [opening.first_call(b, s, log)])
        self.measure(["open", "open_raw"], lambda: list(opening.open_close(b, s, log)))
        self.measure(["cycles_fresh", "cycles_batch"], lambda: cases.fresh_cycles(b, s, log))
        self.measure(["list"], lambda: [cases.list_time(b, s, log)])
        self.measure(
            ["show", "cycles_big", "context", "cycles_promote"],
            lambda: _big_board(cases.big_board(b, s, log)),
        )
        self.measure(["poll", "poll_raw"], lambda: list(cases.poll_time(b, s, log)))
        self.measure(["claims_parallel", "claims_parallel_batch", "claims_ok"], self._contention)
        self.measure(
            ["pass_idle", "pass_spawn10", "promotion"],
            lambda: _triple(dispatching.big_board_passes(b, s, log)),
        )
        self.measure(["nudge"], lambda: [gateway_bench.nudged_claim(b, s, log)])
        self.measure(["dispatchers_ok"], lambda: [dispatching.concurrent_dispatchers(b, s, log)])
        self.measure(["router"], lambda: [gateway_bench.router_round_trip(b, s, log)])
        self.measure(["notify"], lambda: [gateway_bench.event_to_send(b, s, log)])
        self.measure(["answer"], lambda: [agents_bench.answer_to_agent(b, s, log)])
        self.measure(["remote_exec"], lambda: [remote_bench.request_to_reply(b, s, log)])
        self.measure(
            ["web_board", "web_board_all"], lambda: list(web_bench.board_endpoint(b, s, log))
        )
        self.measure(["web_stream"], lambda: [web_bench.event_to_stream(b, s, log)])
        self.measure(["progress_edit"], lambda: [progress_bench.update_to_edit(b, s, log)])
        if b.name == "PostgreSQL":  # several hosts need a shared server
            self.measure(["failover"], lambda: [failover_bench.kill_to_answer(b, s, log)])
        if b.name == "SQLite":
            self.measure(["gateway_rss"], lambda: [gateway_bench.gateway_rss(log)])
            self.measure(["web_streams_rss"], lambda: [web_bench.streams_memory(log, b.workdir)])
            # The same on every backend: measured once.
            self.measure(["sandbox"], lambda: [sandbox_bench.spawn_overhead(log)])
            self.measure(["acp_stream"], lambda: [agents_bench.stream_cpu(log)])
            self.measure(
                ["web_page", "web_visible"],
                lambda: list(
                    web_page.board_page_interactive(log, loads=s.cli_runs, events=s.notify_samples)
                ),
            )
            self.measure(["claude_stream"], lambda: [agents_bench.claude_stream_cpu(log)])

    def _contention(self) -> list[Value]:
        single = contention.run(self.backend, self.sizes, self.log, batch=1)
        batched = contention.run(self.backend, self.sizes, self.log, batch=cases.CLAIM_BATCH)
        problems = single.problems + batched.problems
        if problems:
            self.failed_checks = True
            self.notes += [f"{self.backend.name} concurrent claims, {p}" for p in problems]
        ok, rounds = single.ok + batched.ok, single.rounds + batched.rounds
        verdict = f"{ok}/{rounds} ok" + ("" if ok == rounds else " ✗")
        return [single.claims_per_s, batched.claims_per_s, verdict]


def _triple(values: dict[str, float]) -> list[Value]:
    return [values["pass_idle"], values["pass_spawn10"], values["promotion"]]


def _big_board(values: dict[str, float]) -> list[Value]:
    return [values["show"], values["cycles_big"], values["context"], values["cycles_promote"]]


def machine_info(sizes: Sizes, backends: Sequence[str], load_at_start: str) -> list[str]:
    """Lines describing where and how the numbers were taken."""
    lines = [
        "mode: "
        + ("quick (smaller sizes; targets are for the full sizes)" if sizes.quick else "full"),
        f"python: {platform.python_implementation()} {platform.python_version()} "
        f"({sys.executable})",
        f"sqlite: {sqlite3.sqlite_version}",
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs",
        f"load average (1/5/15 min): {load_at_start} at start, {load_average()} at end",
    ]
    lines += [f"backend: {backend}" for backend in backends]
    lines.append(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %z')}")
    return lines


def load_average() -> str:
    """The 1/5/15-minute load averages (other work on a shared machine skews every timing)."""
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the kanban kernel on SQLite and (optionally) PostgreSQL.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller boards, fewer repetitions (CI)"
    )
    parser.add_argument(
        "--pg",
        metavar="URL",
        help=f"PostgreSQL server to create throwaway databases on (env: {PG_ENV}); "
        "without one the PostgreSQL column says skipped",
    )
    parser.add_argument(
        "--only",
        metavar="KEYS",
        default="",
        help="comma-separated measurement keys (e.g. cycles_fresh,claims_parallel,promotion); "
        "the rest say skipped",
    )
    parser.add_argument(
        "--pg-only", action="store_true", help="measure PostgreSQL alone (needs --pg)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run every measurement on every backend and print the table."""
    args = parse_args(argv)
    sizes = Sizes.small() if args.quick else Sizes.full()
    pg_url = args.pg or os.environ.get(PG_ENV) or None
    only = frozenset(key.strip() for key in args.only.split(",") if key.strip())
    unknown = only - {m.key for m in metrics(sizes)}
    if unknown:
        print(f"unknown measurement keys: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    log = Progress()
    load_at_start = load_average()
    results: dict[str, dict[str, Value]] = {}
    notes: list[str] = []
    failed = False
    described: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kanban-bench-") as tmp:
        work = Path(tmp)
        makers: list[tuple[str, Callable[[], Backend]]] = []
        if not args.pg_only:
            makers.append(("SQLite", lambda: SqliteBackend(work / "sqlite")))
        if pg_url:
            makers.append(("PostgreSQL", lambda: PostgresBackend(work / "pg", pg_url)))
        # Every template is migrated up front, in one go: the schema then matches the kernel
        # this process imported even if someone edits the migrations while the run goes on.
        backends: list[Backend] = []
        for name, make in makers:
            try:
                backends.append(make())
            except Exception as exc:  # noqa: BLE001 - e.g. no server: say so in the table
                notes.append(f"{name}: cannot set up: {type(exc).__name__}: {exc}")
                results[name] = {m.key: "error (setup)" for m in metrics(sizes)}
        try:
            for backend in backends:
                described.append(backend.describe())
                run = Run(backend, sizes, log, only)
                run.all()
                results[backend.name] = run.results
                notes += run.notes
                failed = failed or run.failed_checks
                log(f"{backend.name}: done")
        finally:
            for backend in backends:
                backend.close()
    print("\n".join(machine_info(sizes, described, load_at_start)))
    print()
    print(render_table(metrics(sizes), COLUMNS, results))
    if notes:
        print()
        print("notes:")
        for note in notes:
            print(f"- {note}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
