"""The board's tables as SQLAlchemy metadata: the reference the migrations are checked against.

Imported only by migrations and tests; the kernel's queries are plain SQL (see sql.py). Times
that take part in lease arithmetic are integer epoch milliseconds from the database clock.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

#: INTEGER PRIMARY KEY is the rowid on SQLite; BIGINT identity on PostgreSQL.
ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

tasks = Table(
    "tasks",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("title", Text, nullable=False),
    Column("body", Text),
    Column("assignee", String(64)),
    Column("status", String(16), nullable=False),
    Column("block_kind", String(16)),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("tenant", String(64)),
    Column("workspace_kind", String(16), nullable=False, server_default="scratch"),
    Column("workspace_path", Text),
    Column("created_by", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("completed_ms", BigInteger),
    Column("result", Text),
    Column("skills", Text),
    Column("max_runtime_s", Integer),
    Column("idempotency_key", String(200)),
    # Claims: attempt counter (the fencing number), the open run and its lease.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("current_run_id", ID),
    Column("lease_owner", String(200)),
    Column("lease_expires_ms", BigInteger),
    Column("heartbeat_ms", BigInteger),
    # Failure accounting and backoff (used by the dispatcher).
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_failure_error", Text),
    Column("not_before_ms", BigInteger),
    Column("max_retries", Integer),
    Column("repo", Text),
    Column("branch_name", String(200)),
    # claimed_at + max runtime, so the dispatcher finds overdue runs by index, not by scan.
    Column("deadline_ms", BigInteger),
    Index(
        "ix_tasks_ready",
        text("priority DESC"),
        "created_ms",
        "id",
        sqlite_where=text("status = 'ready'"),
        postgresql_where=text("status = 'ready'"),
    ),
    Index(
        "ix_tasks_ready_assignee",
        "assignee",
        text("priority DESC"),
        "created_ms",
        "id",
        sqlite_where=text("status = 'ready'"),
        postgresql_where=text("status = 'ready'"),
    ),
    Index(
        "ix_tasks_lease",
        "lease_expires_ms",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index(
        "ix_tasks_deadline",
        "deadline_ms",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index("ix_tasks_status", "status", "priority", "created_ms"),
    Index("ix_tasks_assignee_status", "assignee", "status"),
    Index("ix_tasks_tenant", "tenant"),
    # One live task per key; archiving a task frees its key.
    Index(
        "ux_tasks_idempotency",
        "idempotency_key",
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL AND status <> 'archived'"),
        postgresql_where=text("idempotency_key IS NOT NULL AND status <> 'archived'"),
    ),
    sqlite_autoincrement=True,
)

task_links = Table(
    "task_links",
    metadata,
    Column("parent_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("child_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("parent_id", "child_id"),
    Index("ix_task_links_child", "child_id", "parent_id"),
)

task_comments = Table(
    "task_comments",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("author", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_task_comments_task", "task_id", "id"),
    sqlite_autoincrement=True,
)

task_runs = Table(
    "task_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("profile", String(64)),
    Column("claimer", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("outcome", String(16)),
    Column("started_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger),
    Column("lease_ttl_ms", BigInteger, nullable=False),
    Column("heartbeat_ms", BigInteger),
    Column("worker_pid", Integer),
    Column("worker_host", String(200)),
    Column("max_runtime_s", Integer),
    Column("summary", Text),
    Column("metadata", Text),
    Column("error", Text),
    Column("exit_code", Integer),
    Column("workspace_path", Text),
    UniqueConstraint("task_id", "attempt", name="uq_task_runs_attempt"),
    Index("ix_task_runs_task", "task_id", "id"),
    Index("ix_task_runs_profile", "profile", "outcome", "ended_ms"),
    sqlite_autoincrement=True,
)

task_events = Table(
    "task_events",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("task_id", ID, nullable=False),
    Column("run_id", ID),
    Column("kind", String(32), nullable=False),
    Column("payload", Text),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_task_events_task", "task_id", "id"),
    Index("ix_task_events_created", "created_ms"),
    sqlite_autoincrement=True,
)

notify_subscriptions = Table(
    "notify_subscriptions",
    metadata,
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    # '' rather than NULL so the primary key covers "no thread".
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("user_id", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("task_id", "platform", "chat_id", "thread_id"),
)

notify_deliveries = Table(
    "notify_deliveries",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("event_id", ID, ForeignKey("task_events.id"), nullable=False),
    Column("task_id", ID, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("status", String(12), nullable=False),  # pending | sending | sent | dead
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_try_ms", BigInteger, nullable=False),
    Column("claimed_by", String(200)),
    Column("claim_expires_ms", BigInteger),
    Column("sent_ms", BigInteger),
    Column("last_error", Text),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("event_id", "platform", "chat_id", "thread_id", name="uq_delivery"),
    Index(
        "ix_notify_deliveries_due",
        "platform",
        "next_try_ms",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    sqlite_autoincrement=True,
)

dispatcher_health = Table(
    "dispatcher_health",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("host", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("last_pass_ms", BigInteger, nullable=False),
    Column("last_pass_duration_ms", Integer, nullable=False),
    Column("last_error", Text),
    Column("last_error_ms", BigInteger),
    Column("passes", BigInteger, nullable=False, server_default="0"),
    Column("counts", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("user_id", String(200), nullable=False),
    Column("user_name", String(200)),
    Column("role", String(16)),
    Column("text", Text, nullable=False),
    Column("outcome", String(16), nullable=False),  # allowed | refused | error
    Column("detail", Text),
    Index("ix_audit_log_created", "created_ms"),
    sqlite_autoincrement=True,
)
