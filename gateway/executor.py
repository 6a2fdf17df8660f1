"""The one thread hop from the event loop into the synchronous kernel, and a wait helper."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class KernelExecutor:
    """Runs each kernel call (one whole transaction) in a worker thread.

    On SQLite there is one thread, so this process's writes queue in Python instead of spinning
    in SQLite's busy handler; PostgreSQL gets a few.
    """

    def __init__(self, *, threads: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kernel")

    async def run(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``func(*args, **kwargs)`` run in the pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(func, *args, **kwargs))

    def shutdown(self) -> None:
        """Finish queued calls and stop the threads."""
        self._pool.shutdown(wait=True)


async def wait_first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Return when the first of the coroutines finishes; cancel the rest."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
