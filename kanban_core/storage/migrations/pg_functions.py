"""The PostgreSQL hot-path functions (``kanban_claim``, ``kanban_complete``) of each revision.

Migrations 0012, 0014 and 0018 install (and their downgrades restore) these bodies; keeping
them here, built from shared parts, means a revision's function is written once and an older
revision's is still exactly what it installed. The event kinds and JSON keys are the kernel's
(``EventKind``, ``runs``): part of the stored format.
"""

from __future__ import annotations

NOW = "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000 AS BIGINT)"

# -- revisions 0012 and 0014 ----------------------------------------------------------------

# What a host may run (0014): unplaced work, work bound to it, work for a label it carries. A
# claimer with no host (p_host_id NULL) matches only unplaced work.
MAY_RUN = (
    "AND (tasks.host_id IS NULL AND tasks.host_label IS NULL OR tasks.host_id = p_host_id "
    "OR tasks.host_id IS NULL AND tasks.host_label IN "
    "(SELECT hl.label FROM host_labels hl WHERE hl.host_id = p_host_id))"
)
_HOST_PARAMS = ", p_host_id bigint, p_host_secret text"
_HOST_CHECK = """
    -- An enrolled host proves its secret and is not revoked, or claims nothing.
    IF p_host_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM hosts WHERE id = p_host_id AND secret_hash = p_host_secret
        AND revoked_ms IS NULL) THEN
        RETURN;
    END IF;"""

# The caps' counts: 0012's counted every running task (twice per capped claim). 0018 stops at
# the cap (whether the count reaches it is all a claim asks) and finds the assignee's running
# tasks through the index on them (``IS NOT DISTINCT FROM`` cannot use an index).
_RUNNING = """(
            SELECT count(*) FROM tasks WHERE status = 'running')"""
_RUNNING_UP_TO_CAP = """(SELECT count(*) FROM (
            SELECT 1 FROM tasks WHERE status = 'running' LIMIT p_max_running) capped)"""
_ASSIGNEE_RUNNING = """(
        SELECT count(*) FROM tasks
        WHERE status = 'running' AND assignee IS NOT DISTINCT FROM v_assignee
    )"""
_ASSIGNEE_UP_TO_CAP = """(CASE WHEN v_assignee IS NULL THEN (
        SELECT count(*) FROM (SELECT 1 FROM tasks WHERE status = 'running' AND assignee IS NULL
                              LIMIT p_max_running_assignee) capped)
        ELSE (SELECT count(*) FROM (SELECT 1 FROM tasks
                                    WHERE status = 'running' AND assignee = v_assignee
                                    LIMIT p_max_running_assignee) capped) END)"""
# 0018: every statement of the functions is planned once per session (its generic plan), not
# again on each call: the custom plans PL/pgSQL kept choosing for the ready pick (its
# parameters compared with ``not_before_ms``) cost more to plan than to run.
_GENERIC_PLANS = "\nSET plan_cache_mode = force_generic_plan"

# What a claim writes on the task row (both claims' functions): running, under a lease, its
# run's id allocated here so the run row is inserted with it.
_TAKE = """UPDATE tasks SET status = 'running', attempts = attempts + 1,
    current_run_id = nextval(pg_get_serial_sequence('task_runs', 'id')),
    lease_owner = p_claimer, lease_expires_ms = v_now + p_ttl_ms, heartbeat_ms = v_now,
    started_ms = COALESCE(started_ms, v_now), updated_ms = v_now,
    deadline_ms = CASE WHEN max_runtime_s IS NULL THEN NULL
                  ELSE v_now + max_runtime_s * 1000 END,
    pause_reason = NULL"""


def _take(indent: str) -> str:
    """``_TAKE`` for a statement that starts at ``indent`` (its other lines one level in)."""
    return _TAKE.replace("\n", "\n" + indent)


_CLAIM_TEMPLATE = """
CREATE{or_replace} FUNCTION kanban_claim(
    p_claimer text, p_ttl_ms bigint, p_token_hash text, p_task_id bigint, p_assignee text,
    p_max_running integer, p_max_running_assignee integer{host_params}
) RETURNS SETOF tasks LANGUAGE plpgsql{settings} AS $$
DECLARE
    v_now bigint := {now};
    v_id bigint;
    v_assignee text;
    v_pause text;
    v_task tasks;
    v_event bigint;
BEGIN{host_check}
    IF p_max_running IS NOT NULL OR p_max_running_assignee IS NOT NULL THEN
        -- Capped claims take turns (until commit), and each counts what the last one committed.
        PERFORM pg_advisory_xact_lock(7262300003);
        IF p_max_running IS NOT NULL AND {running_count} >= p_max_running THEN
            RETURN;
        END IF;
    END IF;
    IF p_task_id IS NOT NULL AND (p_max_running IS NOT NULL
                                  OR p_max_running_assignee IS NOT NULL) THEN
        -- Holding the cap lock, never wait on a task row someone else holds: skip it (the
        -- next pass tries again) rather than stall every capped claim behind it.
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE id = p_task_id AND status = 'ready'{may_run} FOR UPDATE SKIP LOCKED;
    ELSIF p_task_id IS NOT NULL THEN
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE id = p_task_id AND status = 'ready'{may_run} FOR UPDATE;
    ELSIF p_assignee IS NOT NULL THEN
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE status = 'ready' AND assignee = p_assignee
          AND (not_before_ms IS NULL OR not_before_ms <= v_now){may_run}
        ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    ELSE
        SELECT id, assignee, pause_reason INTO v_id, v_assignee, v_pause FROM tasks
        WHERE status = 'ready' AND (not_before_ms IS NULL OR not_before_ms <= v_now){may_run}
        ORDER BY priority DESC, created_ms, id LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF v_id IS NULL THEN
        RETURN;
    END IF;
    IF p_max_running_assignee IS NOT NULL AND {assignee_count} >= p_max_running_assignee THEN
        RETURN;
    END IF;
    {take}
    WHERE id = v_id RETURNING * INTO v_task;
    INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status,
        started_ms, lease_ttl_ms, heartbeat_ms, max_runtime_s{host_column})
    VALUES (v_task.current_run_id, v_id, v_task.attempts, v_task.assignee, p_claimer,
        p_token_hash, 'running', v_now, p_ttl_ms, v_now, v_task.max_runtime_s{host_value});
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


def _claim(*, placed: bool, replace: bool = False, lean: bool = False) -> str:
    return _CLAIM_TEMPLATE.format(
        or_replace=" OR REPLACE" if replace else "",
        settings=_GENERIC_PLANS if lean else "",
        running_count=_RUNNING_UP_TO_CAP if lean else _RUNNING,
        assignee_count=_ASSIGNEE_UP_TO_CAP if lean else _ASSIGNEE_RUNNING,
        now=NOW,
        host_params=_HOST_PARAMS if placed else "",
        host_check=_HOST_CHECK if placed else "",
        may_run=" " + MAY_RUN if placed else "",
        host_column=", host_id" if placed else "",
        host_value=", p_host_id" if placed else "",
        take=_take("    "),
    )


#: 0014's claim as a replacement (what 0018's downgrade restores).
REPLACE_CLAIM_0014 = _claim(placed=True, replace=True)
#: 0018: 0014's claim with plans made once per session and caps counted only up to the cap.
CLAIM_0018 = _claim(placed=True, replace=True, lean=True)

#: 0012: the claim in one call (pick, caps, lease, run row, events).
CLAIM_0012 = _claim(placed=False)
#: 0014: the same, for a host (proven by its secret) and only the work it may run.
CLAIM_0014 = _claim(placed=True)
CLAIM_0012_SIGNATURE = "kanban_claim(text, bigint, text, bigint, text, integer, integer)"
CLAIM_SIGNATURE = "kanban_claim(text, bigint, text, bigint, text, integer, integer, bigint, text)"
COMPLETE_SIGNATURE = "kanban_complete(bigint, bigint, text, text, text, text, text, text)"

# The completion's fence: 0012's, and 0014's which also refuses a run of a revoked host.
_FENCE_0012 = "AND r.token_hash = p_token_hash AND r.ended_ms IS NULL)"
_FENCE_0014 = (
    "AND r.token_hash = p_token_hash AND r.ended_ms IS NULL\n"
    "        AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = r.host_id "
    "AND h.revoked_ms IS NOT NULL))"
)

_COMPLETE_TEMPLATE = """
CREATE{or_replace} FUNCTION kanban_complete(
    p_id bigint, p_run_id bigint, p_token_hash text, p_result text, p_summary text,
    p_metadata text, p_payload text, p_promoted_payload text
) RETURNS SETOF tasks LANGUAGE plpgsql{settings} AS $$
DECLARE
    v_now bigint := {now};
    v_task tasks;
    v_event bigint;
BEGIN
    -- The fence: still running this very run, and the caller knows the run's secret.
    UPDATE tasks SET status = 'done', completed_ms = v_now, result = COALESCE(p_result, result),
        block_kind = NULL, consecutive_failures = 0, last_failure_error = NULL,
        not_before_ms = NULL, pause_reason = NULL, current_run_id = NULL, lease_owner = NULL,
        lease_expires_ms = NULL, heartbeat_ms = NULL, deadline_ms = NULL, updated_ms = v_now
    WHERE id = p_id AND status = 'running' AND current_run_id = p_run_id AND EXISTS (
        SELECT 1 FROM task_runs r WHERE r.id = p_run_id AND r.task_id = p_id
        {fence}
    RETURNING * INTO v_task;
    IF NOT FOUND THEN
        RETURN;  -- refused: the caller reads the task's state to say why
    END IF;
    UPDATE task_runs SET status = 'done', outcome = 'completed', ended_ms = v_now,
        summary = COALESCE(p_summary, summary), metadata = COALESCE(p_metadata, metadata)
    WHERE id = p_run_id AND ended_ms IS NULL;
    UPDATE permission_requests SET status = 'cancelled', answered_ms = v_now
    WHERE run_id = p_run_id AND status = 'pending';
    INSERT INTO task_events (task_id, run_id, kind, payload, created_ms)
    VALUES (p_id, p_run_id, 'completed', p_payload, v_now) RETURNING id INTO v_event;
    INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status,
        attempts, next_try_ms, created_ms)
    SELECT v_event, task_id, platform, chat_id, thread_id, 'pending', 0, v_now, v_now
    FROM notify_subscriptions WHERE task_id = p_id;
    IF FOUND THEN  -- the subscriptions that were fanned out to end (a workspace's stay)
        DELETE FROM notify_subscriptions WHERE task_id = p_id
            AND NOT EXISTS (SELECT 1 FROM workspaces w WHERE w.task_id = p_id);
    END IF;
    -- Lock the waiting children first: two parents finishing at once then cannot each miss
    -- the other's completion; the promotion's own snapshot is taken after the locks.
    PERFORM 1 FROM tasks WHERE status = 'todo'
        AND id IN (SELECT child_id FROM task_links WHERE parent_id = p_id)
        ORDER BY id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NEXT v_task;  -- no waiting child: nothing to promote
        RETURN;
    END IF;
    WITH promoted AS (
        UPDATE tasks SET status = 'ready', updated_ms = v_now
        WHERE status = 'todo'
          AND id IN (SELECT child_id FROM task_links WHERE parent_id = p_id)
          AND NOT EXISTS (SELECT 1 FROM task_links l JOIN tasks p ON p.id = l.parent_id
                          WHERE l.child_id = tasks.id AND p.status NOT IN ('done', 'archived'))
        RETURNING id)
    INSERT INTO task_events (task_id, run_id, kind, payload, created_ms)
    SELECT id, NULL, 'promoted', p_promoted_payload, v_now FROM promoted ORDER BY id;
    RETURN NEXT v_task;
END $$
"""

#: 0012: a worker's fenced completion in one call (run closed, requests cancelled, event and
#: deliveries, subscriptions ended, waiting children promoted).
COMPLETE_0012 = _COMPLETE_TEMPLATE.format(or_replace="", settings="", now=NOW, fence=_FENCE_0012)
#: 0012's completion as a replacement (what 0014's downgrade restores).
REPLACE_COMPLETE_0012 = _COMPLETE_TEMPLATE.format(
    or_replace=" OR REPLACE", settings="", now=NOW, fence=_FENCE_0012
)
#: 0014: the same, refusing a run whose host is revoked (also what 0018's downgrade restores).
REPLACE_COMPLETE_0014 = _COMPLETE_TEMPLATE.format(
    or_replace=" OR REPLACE", settings="", now=NOW, fence=_FENCE_0014
)
#: 0018: 0014's completion, its statements planned once per session.
COMPLETE_0018 = _COMPLETE_TEMPLATE.format(
    or_replace=" OR REPLACE", settings=_GENERIC_PLANS, now=NOW, fence=_FENCE_0014
)

# -- revision 0020: claims in batches -------------------------------------------------------

_CANDIDATES_GIVEN = """
        SELECT array_agg(s.id ORDER BY s.ord), array_agg(s.assignee ORDER BY s.ord),
               array_agg(s.cap ORDER BY s.ord), array_agg(s.pause_reason ORDER BY s.ord)
        INTO v_ids, v_assignees, v_caps, v_pauses
        FROM (SELECT tasks.id, tasks.assignee, c.cap, tasks.pause_reason, c.ord
              FROM unnest(p_task_ids, p_assignees, p_assignee_caps) WITH ORDINALITY
                   AS c(id, assignee, cap, ord)
              JOIN tasks ON tasks.id = c.id
              WHERE tasks.status = 'ready' AND tasks.assignee IS NOT DISTINCT FROM c.assignee
                {may_run}
              FOR UPDATE OF tasks SKIP LOCKED) s;"""
_CANDIDATES_NEXT = """
        SELECT array_agg(s.id ORDER BY s.priority DESC, s.created_ms, s.id),
               array_agg(s.assignee ORDER BY s.priority DESC, s.created_ms, s.id),
               array_agg(p_max_running_assignee),
               array_agg(s.pause_reason ORDER BY s.priority DESC, s.created_ms, s.id)
        INTO v_ids, v_assignees, v_caps, v_pauses
        FROM (SELECT id, assignee, pause_reason, priority, created_ms FROM tasks
              WHERE status = 'ready'{for_assignee}
                AND (not_before_ms IS NULL OR not_before_ms <= v_now) {may_run}
              ORDER BY priority DESC, created_ms, id LIMIT v_limit FOR UPDATE SKIP LOCKED) s;"""

_CLAIM_BATCH = """
CREATE FUNCTION kanban_claim_batch(
    p_claimer text, p_ttl_ms bigint, p_token_hashes text[], p_task_ids bigint[],
    p_assignees text[], p_assignee_caps integer[], p_assignee text, p_max_running integer,
    p_max_running_assignee integer{host_params}
) RETURNS SETOF tasks LANGUAGE plpgsql{settings} AS $$
DECLARE
    v_now bigint := {now};
    v_limit integer := COALESCE(array_length(p_token_hashes, 1), 0);
    v_ids bigint[];
    v_assignees text[];
    v_caps integer[];
    v_pauses text[];
    v_take bigint[];
    v_take_pauses text[];
BEGIN{host_check}
    IF v_limit = 0 THEN
        RETURN;
    END IF;
    IF p_max_running IS NOT NULL OR p_max_running_assignee IS NOT NULL
       OR p_assignee_caps IS NOT NULL THEN
        -- The single claim's turn-taking: capped claims count what the last one committed.
        PERFORM pg_advisory_xact_lock(7262300003);
        IF p_max_running IS NOT NULL THEN
            v_limit := LEAST(v_limit, p_max_running - {running_count});
            IF v_limit <= 0 THEN
                RETURN;
            END IF;
        END IF;
    END IF;
    -- The candidates, locked without waiting (a row someone holds is left to the next pass).
    IF p_task_ids IS NOT NULL THEN{given}
    ELSIF p_assignee IS NOT NULL THEN{next_for}
    ELSE{next}
    END IF;
    IF v_ids IS NULL THEN
        RETURN;
    END IF;
    -- Each assignee's cap: its candidates in order, after the tasks it already runs (counted
    -- once per assignee, only up to the cap, through the index on running tasks).
    WITH c AS (
        SELECT * FROM unnest(v_ids, v_assignees, v_caps, v_pauses) WITH ORDINALITY
            AS c(id, assignee, cap, pause, ord)
    ), capped AS (
        SELECT a.assignee, a.cap, CASE WHEN a.assignee IS NULL THEN (
                SELECT count(*) FROM (SELECT 1 FROM tasks WHERE status = 'running'
                                      AND assignee IS NULL LIMIT a.cap) n)
            ELSE (SELECT count(*) FROM (SELECT 1 FROM tasks WHERE status = 'running'
                                        AND assignee = a.assignee LIMIT a.cap) n) END AS running
        FROM (SELECT assignee, min(cap) AS cap FROM c WHERE cap IS NOT NULL
              GROUP BY assignee) a
    ), ranked AS (
        SELECT c.*, row_number() OVER (PARTITION BY c.assignee ORDER BY c.ord) AS nth FROM c
    )
    SELECT array_agg(t.id ORDER BY t.ord), array_agg(t.pause ORDER BY t.ord)
    INTO v_take, v_take_pauses
    FROM (SELECT ranked.id, ranked.pause, ranked.ord FROM ranked
          LEFT JOIN capped ON capped.assignee IS NOT DISTINCT FROM ranked.assignee
          WHERE capped.cap IS NULL OR ranked.nth + capped.running <= capped.cap
          ORDER BY ranked.ord LIMIT v_limit) t;
    IF v_take IS NULL THEN
        RETURN;
    END IF;
    -- The k-th task taken gets the k-th token, and the rows come back in that order.
    WITH take AS (
        SELECT x.id, x.pause, x.k FROM unnest(v_take, v_take_pauses) WITH ORDINALITY
            AS x(id, pause, k)
    ), claimed AS (
        {take}
        FROM take WHERE tasks.id = take.id
        RETURNING tasks.id, tasks.current_run_id, tasks.attempts, tasks.assignee,
            tasks.max_runtime_s, tasks.lease_expires_ms, take.pause, take.k
    ), run_rows AS (
        INSERT INTO task_runs (id, task_id, attempt, profile, claimer, token_hash, status,
            started_ms, lease_ttl_ms, heartbeat_ms, max_runtime_s{host_column})
        SELECT current_run_id, id, attempts, assignee, p_claimer, p_token_hashes[k::integer],
            'running', v_now, p_ttl_ms, v_now, max_runtime_s{host_value} FROM claimed
    ), written AS (
        -- One statement for both kinds, so each task's "claimed" precedes its "resumed".
        INSERT INTO task_events (task_id, run_id, kind, payload, created_ms)
        SELECT claimed.id, claimed.current_run_id, e.kind, e.payload, v_now
        FROM claimed CROSS JOIN LATERAL (VALUES
            (1, 'claimed', '{{"claimer":' || to_json(p_claimer)::text
                || ',"lease_expires_ms":' || claimed.lease_expires_ms || '}}'),
            (2, 'quota_resumed', '{{"after":' || to_json(claimed.pause)::text || '}}')
        ) AS e(n, kind, payload)
        WHERE e.n = 1 OR claimed.pause IS NOT NULL
        ORDER BY claimed.k, e.n
        RETURNING id, task_id, kind
    )
    -- A task paused at a usage limit: its chats hear it resumed.
    INSERT INTO notify_deliveries (event_id, task_id, platform, chat_id, thread_id, status,
        attempts, next_try_ms, created_ms)
    SELECT written.id, s.task_id, s.platform, s.chat_id, s.thread_id, 'pending', 0, v_now, v_now
    FROM written JOIN notify_subscriptions s ON s.task_id = written.task_id
    WHERE written.kind = 'quota_resumed';
    RETURN QUERY SELECT tasks.* FROM unnest(v_take) WITH ORDINALITY AS x(id, k)
        JOIN tasks ON tasks.id = x.id ORDER BY x.k;
END $$
"""

#: 0020: up to as many claims as tokens in one call — the given candidates (each with its
#: assignee, as the caller read it, and that assignee's cap) or the next ready tasks — with
#: the single claim's caps, placement and events.
CLAIM_BATCH_0020 = _CLAIM_BATCH.format(
    host_params=_HOST_PARAMS,
    settings=_GENERIC_PLANS,
    now=NOW,
    host_check=_HOST_CHECK,
    running_count=_RUNNING_UP_TO_CAP,
    given=_CANDIDATES_GIVEN.format(may_run=MAY_RUN),
    next_for=_CANDIDATES_NEXT.format(for_assignee=" AND assignee = p_assignee", may_run=MAY_RUN),
    next=_CANDIDATES_NEXT.format(for_assignee="", may_run=MAY_RUN),
    host_column=", host_id",
    host_value=", p_host_id",
    take=_take("        "),
)
CLAIM_BATCH_SIGNATURE = (
    "kanban_claim_batch(text, bigint, text[], bigint[], text[], integer[], text, integer, "
    "integer, bigint, text)"
)
