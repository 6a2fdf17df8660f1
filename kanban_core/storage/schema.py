"""The board's tables as SQLAlchemy metadata: the reference the migrations are checked against.

Imported only by migrations and tests; the kernel's queries are plain SQL (see sql.py). Times
that take part in lease arithmetic are integer epoch milliseconds from the database clock.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
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

#: The statuses of a task that waits (for parents, a claim or a person): ix_tasks_status.
WAITING_STATUSES = "status = 'triage' OR status = 'todo' OR status = 'ready' OR status = 'blocked'"
COMPLETED_BY_PROFILE = "outcome = 'completed' AND profile IS NOT NULL"

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
    # Budgets (cost in millionths of a dollar) and why a ready task waits (a usage limit).
    Column("max_cost_micro_usd", BigInteger),
    Column("max_tokens", BigInteger),
    Column("pause_reason", Text),
    # Placement (migration 0014): the host it must run on (named, or where its workspace was
    # made), or a label a host must carry.
    Column("host_id", ID),
    Column("host_label", String(64)),
    # An index is written by a claim or a complete only when a column it holds (or its WHERE
    # reads) changes, and each costs a WAL page per transaction. So nothing here holds status
    # for every task: waiting tasks, ready tasks and running tasks each have their own partial
    # index, and a task leaving one of them (ready -> running -> done) touches only those.
    Index(
        "ix_tasks_status",
        "status",
        text("priority DESC"),
        "created_ms",
        "id",
        # Spelled as ORs: SQLite uses a partial index only when a query term equals one of its
        # terms (status = 'ready' matches an OR term, never an IN list).
        sqlite_where=text(WAITING_STATUSES),
        postgresql_where=text(WAITING_STATUSES),
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
    # The dispatcher's live count of running tasks per assignee, from the index alone.
    Index(
        "ix_tasks_running",
        "assignee",
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index(
        "ix_tasks_deadline",
        "deadline_ms",
        # Only runs with a max runtime can be overdue; the others never enter the index.
        sqlite_where=text("status = 'running' AND deadline_ms IS NOT NULL"),
        postgresql_where=text("status = 'running' AND deadline_ms IS NOT NULL"),
    ),
    Index("ix_tasks_assignee", "assignee"),
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
    # What the agent reported using in this run (cost in millionths of a dollar).
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost_micro_usd", BigInteger),
    # The enrolled host that claimed it (migration 0014); NULL for the implicit host.
    Column("host_id", ID),
    # Also serves a task's runs in order (attempts grow with ids).
    UniqueConstraint("task_id", "attempt", name="uq_task_runs_attempt"),
    # A worker's "recent work by this assignee": completed runs of an assignee only, written
    # once at the end (runs of unassigned tasks are never looked up this way).
    Index(
        "ix_task_runs_profile",
        "profile",
        "ended_ms",
        sqlite_where=text(COMPLETED_BY_PROFILE),
        postgresql_where=text(COMPLETED_BY_PROFILE),
    ),
    # No AUTOINCREMENT (here and on task_events): it rewrites sqlite_sequence on every insert,
    # one more WAL page per claim. Ids still never repeat, because rows are never deleted here
    # and gc never deletes the newest event (a new rowid is always max + 1).
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
    # 0 when this chat asked not to hear the live progress of the task's runs.
    Column("progress", Integer, nullable=False, server_default="1"),
    PrimaryKeyConstraint("task_id", "platform", "chat_id", "thread_id"),
)

#: The one progress message per (run, chat) that the notifier edits in place.
progress_messages = Table(
    "progress_messages",
    metadata,
    Column("run_id", ID, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("task_id", ID, nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("event_id", ID, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("run_id", "platform", "chat_id", "thread_id"),
)

#: An agent's request for permission that the profile's policy sent to a person.
permission_requests = Table(
    "permission_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("task_id", ID, ForeignKey("tasks.id"), nullable=False),
    Column("run_id", ID, nullable=False),
    Column("tool_kind", String(32), nullable=False),
    Column("tool_name", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("detail", Text),
    Column("paths", Text),
    Column(
        "status", String(16), nullable=False
    ),  # pending | allowed | denied | expired | cancelled
    Column("decision", String(16)),  # allow_once | allow_run | deny
    Column("answered_by", String(200)),
    Column("reason", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("answered_ms", BigInteger),
    Index("ix_permission_requests_task", "task_id", "id"),
    Index("ix_permission_requests_run", "run_id", "status"),
    Index(
        "ix_permission_requests_pending",
        "expires_ms",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

#: The chat message of each permission card (migration 0014): edited in place once the request
#: is answered or expires, so its buttons go away.
permission_cards = Table(
    "permission_cards",
    metadata,
    Column("request_id", ID, nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("message_id", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("request_id", "platform", "chat_id", "thread_id"),
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

# Enrolled hosts (migration 0014): the secret is stored hashed; times are the database clock's.
hosts = Table(
    "hosts",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("enrolled_ms", BigInteger, nullable=False),
    Column("last_seen_ms", BigInteger),
    Column("revoked_ms", BigInteger),
    UniqueConstraint("name", name="uq_hosts_name"),
    sqlite_autoincrement=True,
)

host_labels = Table(
    "host_labels",
    metadata,
    Column("host_id", ID, ForeignKey("hosts.id"), nullable=False),
    Column("label", String(64), nullable=False),
    PrimaryKeyConstraint("host_id", "label", name="pk_host_labels"),
    Index("ix_host_labels_label", "label", "host_id"),
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

# Chat deliveries a gateway accepted (migration 0008): a redelivery finds its key and is dropped.
chat_deliveries = Table(
    "chat_deliveries",
    metadata,
    Column("platform", String(32), nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("platform", "delivery_id"),
    Index("ix_chat_deliveries_created", "created_ms"),
)

# -- workspaces (migration 0004) ------------------------------------------------------------
# A workspace is one task's set of git worktrees (one per repository) plus its agent sessions.
# Ids are generated text (`ws-<unix>-<hex>`): they become directory names, so never user input.
S = String(40)

workspaces = Table(
    "workspaces",
    metadata,
    Column("id", S, primary_key=True),
    Column("task_id", ID, ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("archived", Integer, nullable=False, server_default="0"),
    Column("pinned", Integer, nullable=False, server_default="0"),
    Column("container_path", Text, nullable=False),
    Column("branch_name", String(200), nullable=False),
    Column("executor", String(64), nullable=False),
    Column("active_repo", String(64)),
    Column("active_session_id", S),
    Column("created_by", String(200), nullable=False),
    Column("idempotency_key", String(200)),
    Column("journal", Text),
    Column("error", Text),
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    Column("archived_ms", BigInteger),
    UniqueConstraint("task_id", name="uq_workspaces_task"),
    UniqueConstraint("idempotency_key", name="uq_workspaces_idempotency"),
    Index("ix_workspaces_listing", "archived", "pinned", "updated_ms"),
)

workspace_repos = Table(
    "workspace_repos",
    metadata,
    Column("workspace_id", S, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("source_path", Text, nullable=False),
    Column("common_dir", Text, nullable=False),
    Column("worktree_path", Text, nullable=False),
    Column("branch", String(200), nullable=False),
    Column("base_ref", String(200), nullable=False),
    Column("base_oid", String(64), nullable=False),
    Column("branch_created", Integer, nullable=False),
    Column("enabled", Integer, nullable=False, server_default="1"),
    Column("pr_number", Integer),
    Column("pr_url", Text),
    Column("pr_state", String(16)),
    PrimaryKeyConstraint("workspace_id", "slug", name="pk_workspace_repos"),
)

workspace_sessions = Table(
    "workspace_sessions",
    metadata,
    Column("id", S, primary_key=True),
    Column("workspace_id", S, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("executor", String(64), nullable=False),
    Column("agent_session_id", String(64), nullable=False),
    Column("turns", Integer, nullable=False, server_default="0"),
    Column("queue_paused", Integer, nullable=False, server_default="0"),
    Column("pause_reason", Text),
    Column("created_ms", BigInteger, nullable=False),
    # The ACP agent's own id of this conversation, resumed by the next turn (session/load).
    Column("acp_session_id", String(200)),
    UniqueConstraint("workspace_id", "position", name="uq_workspace_sessions_position"),
)

session_messages = Table(
    "session_messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column(
        "session_id", S, ForeignKey("workspace_sessions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("role", String(16), nullable=False),  # user | assistant | system
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
    Column("turn_id", S),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_session_messages_session", "session_id", "id"),
    sqlite_autoincrement=True,
)

workspace_turns = Table(
    "workspace_turns",
    metadata,
    Column("id", S, primary_key=True),
    Column("workspace_id", S, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column(
        "session_id", S, ForeignKey("workspace_sessions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("task_id", ID, nullable=False),
    Column("run_id", ID),
    Column("prompt", Text, nullable=False),
    Column("status", String(16), nullable=False),  # pending running completed failed cancelled
    Column("error", Text),
    Column("before_heads", Text),
    Column("after_heads", Text),
    Column("requested_by", String(200), nullable=False),
    Column("source_key", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger),
    Column("ended_ms", BigInteger),
    UniqueConstraint("source_key", name="uq_workspace_turns_source"),
    Index("ix_workspace_turns_workspace", "workspace_id", "status"),
    Index("ix_workspace_turns_run", "run_id"),
    Index("ix_workspace_turns_session", "session_id", "created_ms"),
)

queued_messages = Table(
    "queued_messages",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column(
        "session_id", S, ForeignKey("workspace_sessions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("text", Text, nullable=False),
    Column("principal", String(200), nullable=False),
    Column("source_key", String(200)),
    Column("state", String(16), nullable=False),  # queued | started | cancelled
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("source_key", name="uq_queued_messages_source"),
    Index("ix_queued_messages_session", "session_id", "state", "id"),
    sqlite_autoincrement=True,
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", S, primary_key=True),
    Column("kind", String(16), nullable=False),  # confirm (the requester) | approval (approver)
    Column("op", String(32), nullable=False),
    Column("args", Text, nullable=False),
    Column("args_hash", String(64), nullable=False),
    Column("nonce", String(32), nullable=False),
    Column("workspace_id", S, nullable=False),
    Column("summary", Text, nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("requester_name", String(200), nullable=False),
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # pending approved denied expired failed
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("decided_by", String(200)),
    Column("decided_ms", BigInteger),
    Column("result", Text),
    Index("ix_approvals_pending", "status", "expires_ms"),
)

chat_bindings = Table(
    "chat_bindings",
    metadata,
    Column("platform", String(32), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("workspace_id", S, ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    PrimaryKeyConstraint("platform", "chat_id", "thread_id", name="pk_chat_bindings"),
)

workspace_audit = Table(
    "workspace_audit",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("created_ms", BigInteger, nullable=False),
    Column("workspace_id", S, nullable=False),  # kept after the workspace is deleted
    Column("repo", String(64)),
    Column("op", String(32), nullable=False),
    Column("principal", String(200), nullable=False),
    Column("args", Text),
    Column("approval_id", S),
    Column("outcome", String(16), nullable=False),  # ok | refused | failed | requested
    Column("detail", Text),
    Column("before_oid", String(64)),
    Column("after_oid", String(64)),
    Index("ix_workspace_audit_ws", "workspace_id", "id"),
    sqlite_autoincrement=True,
)

# -- the web board's sign-in (migration 0011) -----------------------------------------------
# Secrets are stored as SHA-256 hashes only: a copy of the database signs nobody in.
web_login_links = Table(
    "web_login_links",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("principal", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("used_ms", BigInteger),
    Index("ix_web_login_links_expires", "expires_ms"),
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("principal", String(200), nullable=False),
    Column("client", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("revoked_ms", BigInteger),
    sqlite_autoincrement=True,
)

# -- named leases: platform connections and the leader (migration 0015) ---------------------
# ``fence`` grows by one on every change of owner, so work done under an older owner's lease
# can be told apart from the current one's.
leases = Table(
    "leases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("owner", String(200), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("acquired_ms", BigInteger, nullable=False),
    Column("fence", BigInteger, nullable=False),
    # The enrolled host whose gateway holds it (migration 0019); NULL: the implicit host.
    Column("host_id", BigInteger, nullable=True),
)

# -- the board's identity and its scheduled maintenance (migration 0019) -----------------------

board_identity = Table(
    "board_identity",
    metadata,
    Column("singleton", Integer, primary_key=True, autoincrement=False),
    Column("board_id", String(64), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    CheckConstraint("singleton = 1", name="ck_board_identity_single"),
)

maintenance_runs = Table(
    "maintenance_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("last_ms", BigInteger, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("runs", BigInteger, nullable=False),
    Column("summary", Text, nullable=True),
)

# -- execution requests: commands sent to the host holding a workspace (0017; unarchive: 0021) -
# A nonce is spent (exec_nonces) when a request is claimed, so a request set back to pending,
# or re-inserted after the original was purged, is refused instead of run again.
exec_requests = Table(
    "exec_requests",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("command", String(32), nullable=False),
    Column("args", Text, nullable=False),
    Column("workspace_id", S, nullable=False),
    Column("task_id", ID, nullable=False),
    Column("target_host_id", ID, ForeignKey("hosts.id"), nullable=False),
    Column("requester_host_id", ID),
    Column("platform", String(32), nullable=False),
    Column("user_id", String(200), nullable=False),
    Column("user_name", String(200), nullable=False),
    Column("chat_id", String(200), nullable=False),
    Column("thread_id", String(200), nullable=False, server_default=""),
    Column("role", String(16), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("idempotency_key", String(300), nullable=False),
    Column("state", String(12), nullable=False),
    Column("result", Text),
    Column("exit_code", Integer),
    Column("reply", Text),
    Column("claimed_by", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("claimed_ms", BigInteger),
    Column("finished_ms", BigInteger),
    UniqueConstraint("nonce", name="uq_exec_requests_nonce"),
    CheckConstraint(
        "command IN ('status', 'diff', 'commit', 'push', 'pr', 'attach', 'run', 'delete', "
        "'follow-up', 'new-session', 'approve', 'deny', 'unarchive')",
        name="ck_exec_requests_command",
    ),
    UniqueConstraint("idempotency_key", name="uq_exec_requests_key"),
    Index(
        "ix_exec_requests_open",
        "target_host_id",
        "state",
        sqlite_where=text("state IN ('pending', 'running')"),
        postgresql_where=text("state IN ('pending', 'running')"),
    ),
    sqlite_autoincrement=True,
)

exec_nonces = Table(
    "exec_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("request_id", ID, nullable=False),
    Column("used_ms", BigInteger, nullable=False),
)
