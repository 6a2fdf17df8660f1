"""Enrolled hosts, task placement (a host or a label) and host-aware claims and fences.

A host is a machine enrolled on the board: its secret is stored hashed, its labels in their own
table (the claim joins them), and ``last_seen_ms`` is the database clock's. A task may name a
host (``tasks.host_id``, also set when a run first makes its workspace there) or a label
(``tasks.host_label``); a run records the host that claimed it (``task_runs.host_id``).

PostgreSQL's claim gains the host (id and secret hash) and its placement predicate, so a host
claims only what it may run, and a revoked host claims nothing; the completion's fence refuses
a run whose host is revoked. Both stay one call. SQLite does the same in its claim statement.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_NOW = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)"

# What a host may run: unplaced work, work bound to it, work for a label it carries. A claimer
# with no host (p_host_id NULL) matches only unplaced work.
_MAY_RUN = (
    "AND (tasks.host_id IS NULL AND tasks.host_label IS NULL OR tasks.host_id = p_host_id "
    "OR tasks.host_id IS NULL AND tasks.host_label IN "
    "(SELECT hl.label FROM host_labels hl WHERE hl.host_id = p_host_id))"
)

_CLAIM = f"""
CREATE FUNCTION kanban_claim(
    p_claimer text, p_ttl_ms bigint, p_token_hash text, p_task_id bigint, p_assignee text,
    p_max_running integer, p_max_running_assignee integer, p_host_id bigint, p_host_secret text
) RETURNS SETOF tasks LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := {_NOW};
    v_id bigint;
    v_assignee text;
    v_pause text;
    v_task tasks;
    v_event bigint;
BEGIN
    -- An enrolled host proves its secret and is not revoked, or claims nothing.
    IF p_host_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM hosts WHERE id = p_host_id AND secret_hash = p_host_secret
        AND revoked_ms IS NULL) THEN
        RETURN;
    END IF;
    IF p_max_running IS NOT NULL OR p_max_running_assignee IS NOT NULL THEN
        -- Capped claims take turns (until commit), and each counts what the last one committed.
        PERFORM pg_advisory_xact_lock(7262300003);
        IF p_max_running IS NOT NULL AND (
            SELECT count(*) FROM tasks WHERE status = 'running') >= p_max_running THEN
            RETURN;
        END IF;
    END IF;
    IF p_task_id IS NOT NULL AND (p_max_running IS NOT NULL
                                  OR p_max_running_assignee IS NOT NULL) THEN
        -- Holding the cap lock, never wait on a task row someone else holds: skip it (the
        -- next pass tries again) rather than stall every capped claim behind it.
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE id = p_task_id AND status = 'ready' {_MAY_RUN} FOR UPDATE SKIP LOCKED;
    ELSIF p_task_id IS NOT NULL THEN
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE id = p_task_id AND status = 'ready' {_MAY_RUN} FOR UPDATE;
    ELSIF p_assignee IS NOT NULL THEN
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE status = 'ready' AND assignee = p_assignee
          AND (not_before_ms IS NULL OR not_before_ms <= v_now) {_MAY_RUN}
        ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    ELSE
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE status = 'ready' AND (not_before_ms IS NULL OR not_before_ms <= v_now) {_MAY_RUN}
        ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF v_id IS NULL THEN
        RETURN;
    END IF;
    IF p_max_running_assignee IS NOT NULL AND (
        SELECT count(*) FROM tasks
        WHERE status = 'running' AND assignee IS NOT DISTINCT FROM v_assignee
    ) >= p_max_running_assignee THEN
        RETURN;
    END IF;
    UPDATE tasks SET status = 'running', attempts = attempts + 1,
        current_run_id = nextval(pg_get_serial_sequence('task_runs', 'id')),
        lease_owner = p_claimer, lease_expires_ms = v_now + p_ttl_ms, heartbeat_ms = v_now,
        started_ms = COALESCE(started_ms, v_now), updated_ms = v_now,
        deadline_ms = CASE WHEN max_runtime_s IS NULL THEN NULL
                      ELSE v_now + max_runtime_s * 1000 END,
        pause_reason = NULL
    WHERE id = v_id RETURNING * INTO v_task;
    INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status,
        started_ms, lease_ttl_ms, heartbeat_ms, max_runtime_s, host_id)
    VALUES (v_task.current_run_id, v_id, v_task.attempts, v_task.assignee, p_claimer,
        p_token_hash, 'running', v_now, p_ttl_ms, v_now, v_task.max_runtime_s, p_host_id);
    INSERT INTO task_events (task_id, run_id, kind, payload, created_ms)
    VALUES (v_id, v_task.current_run_id, 'claimed',
        '{{"claimer":' || to_json(p_claimer)::text || ',"lease_expires_ms":'
        || v_task.lease_expires_ms || '}}', v_now);
    IF v_pause IS NOT NULL THEN
        -- A task paused at a usage limit: its chats hear it resumed.
        INSERT INTO task_events (task_id, run_id, kind, payload, created_ms)
        VALUES (v_id, v_task.current_run_id, 'quota_resumed',
            '{{"after":' || to_json(v_pause)::text || '}}', v_now)
        RETURNING id INTO v_event;
        INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status,
            attempts, next_try_ms, created_ms)
        SELECT v_event, task_id, platform, chat_id, thread_id, 'pending', 0, v_now, v_now
        FROM notify_subscriptions WHERE task_id = v_id;
    END IF;
    RETURN NEXT v_task;
END $$
"""

# The 0012 fence, plus: the run's host (if any) is not revoked.
_FENCE_012 = "AND r.token_hash = p_token_hash AND r.ended_ms IS NULL)"
_FENCE_HOST = (
    "AND r.token_hash = p_token_hash AND r.ended_ms IS NULL\n"
    "        AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = r.host_id "
    "AND h.revoked_ms IS NOT NULL))"
)
_OLD_CLAIM_SIGNATURE = "kanban_claim(text, bigint, text, bigint, text, integer, integer)"
_NEW_CLAIM_SIGNATURE = (
    "kanban_claim(text, bigint, text, bigint, text, integer, integer, bigint, text)"
)


def _hot_path() -> ModuleType:
    # The 0012 functions are the base this revision extends (and restores on downgrade).
    spec = importlib.util.spec_from_file_location(
        "kanban_migration_0012", Path(__file__).with_name("0012_pg_hot_path.py")
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _complete(fenced: bool) -> str:
    source = str(vars(_hot_path())["_COMPLETE"])
    source = source.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    if fenced:
        assert _FENCE_012 in source
        source = source.replace(_FENCE_012, _FENCE_HOST, 1)
    return source


def upgrade() -> None:
    op.create_table(
        "hosts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("enrolled_ms", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger),
        sa.Column("revoked_ms", sa.BigInteger),
        sa.UniqueConstraint("name", name="uq_hosts_name"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "host_labels",
        sa.Column("host_id", ID, sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("host_id", "label", name="pk_host_labels"),
    )
    op.create_index("ix_host_labels_label", "host_labels", ["label", "host_id"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("host_id", ID))
        batch.add_column(sa.Column("host_label", sa.String(64)))
    with op.batch_alter_table("task_runs") as batch:
        batch.add_column(sa.Column("host_id", ID))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {_OLD_CLAIM_SIGNATURE}")
    op.execute(_CLAIM)
    op.execute(_complete(fenced=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {_NEW_CLAIM_SIGNATURE}")
        op.execute(str(vars(_hot_path())["_CLAIM"]))
        op.execute(_complete(fenced=False))
    with op.batch_alter_table("task_runs") as batch:
        batch.drop_column("host_id")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("host_label")
        batch.drop_column("host_id")
    op.drop_index("ix_host_labels_label", "host_labels")
    op.drop_table("host_labels")
    op.drop_table("hosts")
