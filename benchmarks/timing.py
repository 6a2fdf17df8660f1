"""Timing helpers: medians of repeated ``time.perf_counter`` measurements, and progress lines."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Sequence


def median(values: Sequence[float]) -> float:
    """The median of the samples (a single outlier on a shared machine does not move it)."""
    if not values:
        raise ValueError("no samples")
    return float(statistics.median(values))


def per_call(fn: Callable[[], object], *, calls: int, repeats: int, warmup: int = 1) -> float:
    """Median over ``repeats`` samples of the mean seconds per call of ``calls`` calls."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - start) / calls)
    return median(samples)


class Progress:
    """Progress lines on stderr, so stdout carries only the machine info and the table."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    def __call__(self, message: str) -> None:
        """Print one progress line with the time elapsed since the run began."""
        elapsed = time.perf_counter() - self._start
        sys.stderr.write(f"[{elapsed:7.1f}s] {message}\n")
        sys.stderr.flush()
