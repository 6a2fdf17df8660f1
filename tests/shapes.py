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
        "pause_reason",
        "paused_until",
        "max_cost_usd",
        "max_tokens",
        "host",
        "label",
    }
)

#: The task keys of the reference's shapes (ours add the repo, the branch, the usage-limit
#: pause, the budget and the placement).
REFERENCE_TASK_KEYS = TASK_JSON_KEYS - {
    "repo",
    "branch_name",
    "pause_reason",
    "paused_until",
    "max_cost_usd",
    "max_tokens",
    "host",
    "label",
}

#: Every key of a run's JSON (``runs --json``, ``show --json``'s runs, ``Run.to_json``).
RUN_JSON_KEYS = frozenset(
    {
        "id",
        "task_id",
        "attempt",
        "profile",
        "claimer",
        "status",
        "outcome",
        "summary",
        "metadata",
        "error",
        "worker_pid",
        "started_at",
        "ended_at",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    }
)
