"""Test data: kernel records with plausible defaults, independent of any database."""

from __future__ import annotations

import dataclasses
from typing import Any

from kanban_core import Task, TaskId, TaskStatus, WorkspaceKind

_TASK = Task(
    id=TaskId(42),
    title="write the tests",
    body=None,
    assignee=None,
    status=TaskStatus.READY,
    block_kind=None,
    priority=0,
    tenant=None,
    workspace_kind=WorkspaceKind.SCRATCH,
    workspace_path=None,
    created_by="alice",
    created_ms=1_700_000_000_999,
    updated_ms=1_700_000_001_000,
    started_ms=None,
    completed_ms=None,
    result=None,
    skills=(),
    max_runtime_s=None,
    idempotency_key=None,
    attempts=0,
    current_run_id=None,
    lease_expires_ms=None,
    consecutive_failures=0,
    last_failure_error=None,
)


def task_record(**overrides: Any) -> Task:
    """A Task value (t42, ready, unassigned) with ``overrides`` applied."""
    return dataclasses.replace(_TASK, **overrides)
