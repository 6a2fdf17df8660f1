"""Fixtures for the gateway core: an asyncio backend for anyio and the kernel executor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gateway.executor import KernelExecutor
from kanban_core import Kanban


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def executor(board: Kanban) -> Iterator[KernelExecutor]:
    """The gateway's thread hop, sized like the gateway sizes it for this database."""
    pool = KernelExecutor(threads=1 if board.db.dialect == "sqlite" else 4)
    yield pool
    pool.shutdown()
