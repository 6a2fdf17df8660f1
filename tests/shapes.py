"""The ``--json`` shapes the tests hold the product to, defined once."""

#: Every key of a task's JSON (``create --json``, ``list --json``, ``Task.to_json``).
TASK_JSON_KEYS = frozenset(
    {
        "id",
        "title",
        "body",
        "assignee",
        "status",
        "block_kind",
        "priority",
        "tenant",
        "workspace_kind",
        "workspace_path",
        "created_by",
        "created_at",
        "updated_at",
        "started_at",
        "completed_at",
        "result",
        "skills",
        "max_runtime_seconds",
        "idempotency_key",
        "attempts",
        "current_run_id",
        "consecutive_failures",
        "last_failure_error",
        "repo",
        "branch_name",
    }
)
