"""How big each measurement is: the full sizes the targets are set for, and a quick variant."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sizes:
    """Board sizes, batch sizes and repetition counts for one benchmark run."""

    quick: bool
    #: claim→complete: cycles per timed batch (the ready queue is refilled to this before each
    #: batch), timed batches (one more runs first as a warm-up).
    cycle_batch: int
    cycle_batches: int
    #: The big board: total tasks and how many of them wait in todo.
    big_board: int
    big_todo: int
    #: ``list`` board size, and timed repetitions of ``list`` and ``show``.
    list_board: int
    list_repeats: int
    show_events: int
    show_repeats: int
    #: Event-log size for the empty poll, polls per sample and samples.
    events: int
    poll_calls: int
    poll_repeats: int
    #: ``kanban list`` subprocess runs (after one untimed warm-up run); also the runs of the
    #: first call in a fresh home.
    cli_runs: int
    #: Opens and closes of a board per sample (samples: poll_repeats).
    open_calls: int
    #: Concurrent claimers: ready tasks, processes, repetitions.
    contention_tasks: int
    contention_workers: int
    contention_reps: int
    #: Dispatcher: running tasks at the cap and ready tasks on the big board, timed passes,
    #: tasks for the concurrent dispatchers.
    dispatch_running: int
    dispatch_ready: int
    dispatch_repeats: int
    dispatch_concurrent_tasks: int
    #: Gateway: board size and calls for the router round trip, samples of event→send and of
    #: nudge→spawn.
    router_board: int
    router_calls: int
    notify_samples: int

    @classmethod
    def full(cls) -> Sizes:
        """The sizes the targets are stated for (about ten minutes on two cores)."""
        return cls(
            quick=False,
            cycle_batch=500,
            cycle_batches=7,
            big_board=100_000,
            big_todo=10_000,
            list_board=10_000,
            list_repeats=15,
            show_events=1_000,
            show_repeats=50,
            events=1_000_000,
            poll_calls=2_000,
            poll_repeats=9,
            cli_runs=7,
            open_calls=1_000,
            contention_tasks=10_000,
            contention_workers=4,
            contention_reps=20,
            dispatch_running=10_000,
            dispatch_ready=10_000,
            dispatch_repeats=15,
            dispatch_concurrent_tasks=2_000,
            router_board=1_000,
            router_calls=300,
            notify_samples=100,
        )

    @classmethod
    def small(cls) -> Sizes:
        """``--quick``: smaller boards and fewer repetitions, well under a minute."""
        return cls(
            quick=True,
            cycle_batch=200,
            cycle_batches=3,
            big_board=10_000,
            big_todo=1_000,
            list_board=10_000,
            list_repeats=5,
            show_events=1_000,
            show_repeats=15,
            events=100_000,
            poll_calls=1_000,
            poll_repeats=5,
            cli_runs=3,
            open_calls=300,
            contention_tasks=1_000,
            contention_workers=4,
            contention_reps=3,
            dispatch_running=1_000,
            dispatch_ready=1_000,
            dispatch_repeats=5,
            dispatch_concurrent_tasks=300,
            router_board=1_000,
            router_calls=60,
            notify_samples=20,
        )
