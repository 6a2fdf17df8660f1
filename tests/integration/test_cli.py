"""The ``kanban`` CLI driven as a subprocess: every verb, in text and ``--json``.

Exit codes: 0 ok, 1 refused (one ``kanban: …`` line on stderr), 2 usage error. Refused and
malformed commands must leave the board exactly as it was, which the tests check by comparing
``list --json`` / ``show --json`` snapshots taken before and after. Tests that take ``cli`` run
on SQLite and, when ``KANBAN_TEST_PG_URL`` is set, on PostgreSQL too.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import OPERATOR, Cli, refusal_problem, worker_env
from tests.shapes import REFERENCE_TASK_KEYS, RUN_JSON_KEYS

pytestmark = pytest.mark.integration

VERBS = (
    "init",
    "create",
    "list",
    "ls",
    "show",
    "assign",
    "link",
    "unlink",
    "claim",
    "comment",
    "complete",
    "block",
    "unblock",
    "archive",
    "tail",
    "watch",
    "stats",
    "runs",
    "heartbeat",
    "assignees",
    "notify-subscribe",
    "notify-list",
    "notify-unsubscribe",
    "gc",
    "reclaim",
    "edit",
)
SHOW_KEYS = {"task", "parents", "children", "comments", "events", "runs"}
CLAIM_KEYS = {
    "task_id",
    "run_id",
    "run_token",
    "attempt",
    "lease_expires_at",
    "workspace_kind",
    "workspace_path",
}
EVENT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d  ")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def kinds(detail: dict[str, Any]) -> list[str]:
    """The event kinds of a ``show --json`` document, oldest first."""
    return [event["kind"] for event in detail["events"]]


def ids(tasks: list[dict[str, Any]]) -> list[str]:
    """The ids of a ``list --json`` document."""
    return [task["id"] for task in tasks]


def field(text: str, name: str) -> str:
    """A value from the facts table of ``show`` (``name`` then two or more spaces)."""
    match = re.search(rf"^{re.escape(name)}\s{{2,}}(.*)$", text, re.MULTILINE)
    assert match, f"no {name!r} line in:\n{text}"
    return match.group(1)


# -- board and database selection ------------------------------------------------------------


def test_init_creates_the_board_and_is_safe_to_repeat(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    cli = Cli(home, backend="sqlite")
    first = cli.ok("init")
    db = home / "kanban.db"
    assert first.out.splitlines()[:2] == [
        f"Board ready: sqlite:///{db}",
        '0 task(s) on it. Next: kanban create "first task" --assignee <name>',
    ]
    assert db.is_file()
    task_id = cli.create("survives a second init")
    again = cli.ok("init")
    assert "1 task(s) on it" in again.out
    assert ids(cli.tasks()) == [task_id]


def test_database_from_env_path_and_db_option(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "home", backend="sqlite")
    env_db = tmp_path / "via-env.db"
    opt_db = tmp_path / "via-option.db"
    # A bare path in KANBAN_DB_URL is a SQLite file; the board is created on first use.
    cli.ok("create", "in the env db", env={"KANBAN_DB_URL": str(env_db)})
    # --db wins over the environment.
    cli.ok(
        "--db",
        f"sqlite:///{opt_db}",
        "create",
        "in the option db",
        env={"KANBAN_DB_URL": str(env_db)},
    )
    in_env, in_option = cli.run_each(
        [
            (("list", "--json"), {"KANBAN_DB_URL": str(env_db)}),
            (("--db", f"sqlite:///{opt_db}", "list", "--json"), None),
        ]
    )
    assert [t["title"] for t in in_env.json()] == ["in the env db"]
    assert [t["title"] for t in in_option.json()] == ["in the option db"]
    assert not (tmp_path / "home" / "kanban.db").exists()
    problems = cli.refusal_problems(
        [
            (["--db", "mysql://127.0.0.1/kanban", "list"], 1, "unsupported database URL"),
            (["--db", "sqlite:relative.db", "list"], 1, "malformed SQLite URL"),
        ]
    )
    assert problems == []


def test_reads_never_create_a_board(tmp_path: Path) -> None:
    home = tmp_path / "fresh-home"
    cli = Cli(home, backend="sqlite")
    mistyped = tmp_path / "no" / "such" / "dir" / "x.db"
    db = ["--db", f"sqlite:///{mistyped}"]
    reads = [["list"], ["show", "t1"], ["stats"], ["runs", "t1"], ["tail", "t1", "--once"]]
    reads += [["watch", "--once"], ["assignees"], ["notify-list"], ["status"], ["context", "t1"]]
    in_home = f"no board at {home / 'kanban.db'}: `kanban init` creates it"
    problems = cli.refusal_problems(
        [([*db, *argv], 1, f"no board at {mistyped}") for argv in reads]
        + [(argv, 1, in_home) for argv in reads]
        # A write may create a board, but not the directories of a mistyped path.
        + [([*db, "create", "x"], 1, f"its directory {mistyped.parent} does not exist")]
    )
    assert problems == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # The first task creates the board in its home; init creates a path's directories too.
    cli.create("first")
    assert (home / "kanban.db").is_file()
    cli.ok(*db, "init")
    assert [t["title"] for t in cli.json(*db, "list")] == []


def test_help_and_usage_errors(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    top, bare = cli.run_many([["--help"], []])
    for result in (top, bare):
        assert result.code == 0, result.describe()
        for verb in VERBS:
            assert re.search(rf"^\s+{re.escape(verb)}\b", result.out, re.MULTILINE), verb
    some = ("create", "claim", "complete", "notify-subscribe")
    helps = cli.run_many([[verb, "--help"] for verb in some])
    for verb, result in zip(some, helps, strict=True):
        assert result.code == 0, result.describe()
        assert result.out.startswith(f"usage: kanban {verb} "), result.describe()
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
            (["create"], 2, "the following arguments are required: title"),
            (["show"], 2, "required: task_id"),
            (["list", "--status", "bogus"], 2, "invalid choice: 'bogus'"),
            (["list", "--sort", "random"], 2, "invalid choice: 'random'"),
            (["list", "--limit", "0"], 2, "--limit must be between 1 and 1000000"),
            (["list", "--limit", "ten"], 2, "invalid int value"),
            (["list", "--jsn"], 2, "unrecognized arguments: --jsn"),  # no abbreviations
            (["--bogus", "list"], 2, "unrecognized arguments"),
            (["create", "x", "--priority", "high"], 2, "invalid int value"),
            (["heartbeat"], 2, "a task id is required"),
            (["gc", "--event-retention-days", "soon"], 2, "invalid int value"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


# -- authoring and reading ---------------------------------------------------------------------


def test_create_list_show_in_text_and_json(cli: Cli) -> None:
    parent = cli.create("parent")
    data = cli.json(
        "create", "Ship it",
        "--body", "line one\nline two",
        "--assignee", "coder",
        "--parent", parent,
        "--workspace", "dir:/srv//project/",
        "--tenant", "acme",
        "--priority", "5",
        "--max-runtime", "90m",
        "--skill", "python", "--skill", "git", "--skill", "python",
        "--idempotency-key", "ship-1",
    )  # fmt: skip
    # The reference's shape; newer fields may follow.
    assert REFERENCE_TASK_KEYS | {"created"} <= set(data)
    child = data["id"]
    assert child == "t2"
    assert {
        k: v
        for k, v in data.items()
        if k in REFERENCE_TASK_KEYS | {"created"} and not k.endswith("_at")
    } == {
        "id": "t2",
        "title": "Ship it",
        "body": "line one\nline two",
        "assignee": "coder",
        "status": "todo",  # waits for its parent
        "block_kind": None,
        "priority": 5,
        "tenant": "acme",
        "workspace_kind": "dir",
        "workspace_path": "/srv/project",
        "created_by": OPERATOR,
        "result": None,
        "skills": ["python", "git"],
        "max_runtime_seconds": 5400,
        "idempotency_key": "ship-1",
        "attempts": 0,
        "current_run_id": None,
        "consecutive_failures": 0,
        "last_failure_error": None,
        "created": True,
    }
    assert isinstance(data["created_at"], int)
    assert data["started_at"] is None
    assert data["completed_at"] is None

    assert cli.ok("create", "an idea", "--triage").out == "Created t3  (triage, assignee=-)\n"
    mine = cli.create("mine", "--assignee", OPERATOR)
    # A retry with the same idempotency key returns the task it names, in text and JSON.
    exists = cli.ok("create", "another title", "--idempotency-key", "ship-1").out
    assert (
        exists
        == f"Exists  {child}  (todo, assignee=coder)  — idempotency key 'ship-1' already names it\n"
    )
    retry = cli.json("create", "yet another", "--idempotency-key", "ship-1")
    assert (retry["id"], retry["title"], retry["created"]) == (child, "Ship it", False)

    listed = cli.tasks()
    assert isinstance(listed, list)
    assert ids(listed) == [child, parent, "t3", mine]  # priority first, then age
    assert all(set(task) >= REFERENCE_TASK_KEYS for task in listed)
    filters = cli.run_many(
        [
            ("list", "--json", "--assignee", "coder"),
            ("list", "--json", "--status", "triage"),
            ("list", "--json", "--tenant", "acme"),
            ("list", "--json", "--mine"),
            ("list", "--json", "--limit", "1"),
            ("list", "--json", "--sort", "title"),
            ("list", "--json", "--status", "done"),
            ("ls", "--json"),
        ]
    )
    assert [ids(r.json()) for r in filters] == [
        [child],
        ["t3"],
        [child],
        [mine],
        [child],
        [child, "t3", mine, parent],  # "Ship it" < "an idea" < "mine" < "parent" (bytewise)
        [],
        [child, parent, "t3", mine],
    ]

    table = cli.ok("ls").out.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == ["ID", "STATUS", "ASSIGNEE", "TITLE"]
    assert re.split(r"\s{2,}", table[1]) == ["◻", child, "todo", "coder", "[acme] Ship it"]
    assert re.split(r"\s{2,}", table[2]) == ["▶", parent, "ready", "(unassigned)", "parent"]
    assert cli.ok("list", "--status", "done").out == "(no matching tasks)\n"

    shown = cli.show(child)
    assert set(shown) == SHOW_KEYS
    assert shown["task"] == listed[0]
    assert (shown["parents"], shown["children"], shown["comments"], shown["runs"]) == (
        [parent],
        [],
        [],
        [],
    )
    assert kinds(shown) == ["created"]
    assert shown["events"][0]["payload"]["parents"] == [parent]
    assert {"id", "task_id", "kind", "payload", "created_at", "run_id"} <= set(shown["events"][0])
    assert cli.show(parent)["children"] == [child]

    text = cli.ok("show", child).out
    assert text.splitlines()[0] == f"{child}  Ship it"
    assert field(text, "status") == "todo"
    assert field(text, "assignee") == "coder"
    assert field(text, "tenant") == "acme"
    assert field(text, "workspace") == "dir @ /srv/project"
    assert field(text, "skills") == "python, git"
    assert field(text, "max runtime") == "5400s"
    assert field(text, "idempotency key") == "ship-1"
    assert field(text, "parents") == parent
    assert "\nBody\nline one\nline two\n" in text
    assert "Events (last 1 of 1)" in text


def test_valid_durations_and_workspaces(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    durations = {"300": 300, "90s": 90, "30m": 1800, "1.5h": 5400, "1d": 86400, " 2H ": 7200}
    workspaces = {
        "scratch": ("scratch", None),
        "worktree": ("worktree", None),
        "": ("scratch", None),
        "dir:/srv/a b/c": ("dir", "/srv/a b/c"),
        "dir:/srv/ünï/日本": ("dir", "/srv/ünï/日本"),
    }
    results = cli.run_many(
        [("create", f"d{i}", "--max-runtime", raw, "--json") for i, raw in enumerate(durations)]
        + [("create", f"w{i}", "--workspace", raw, "--json") for i, raw in enumerate(workspaces)]
    )
    for result in results:
        assert result.code == 0, result.describe()
    got = [r.json() for r in results]
    assert [t["max_runtime_seconds"] for t in got[: len(durations)]] == list(durations.values())
    assert [(t["workspace_kind"], t["workspace_path"]) for t in got[len(durations) :]] == list(
        workspaces.values()
    )


def test_edit(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("old", "--body", "old body", "--tenant", "acme", "--priority", "1")
    assert cli.ok("edit", task_id, "--title", "new 🆕").out == f"Edited {task_id}\n"
    data = cli.json("edit", task_id, "--body", "", "--tenant", "none", "--priority", "7")
    assert set(data) >= REFERENCE_TASK_KEYS
    assert (data["title"], data["body"], data["tenant"], data["priority"]) == (
        "new 🆕",
        None,
        None,
        7,
    )
    unchanged = cli.json("edit", task_id)  # nothing to change: no event
    assert unchanged == data
    events = cli.show(task_id)["events"]
    assert [(e["kind"], e["payload"]) for e in events[1:]] == [
        ("edited", {"fields": ["title"]}),
        ("reprioritized", {"priority": 7, "previous": 1}),
        ("edited", {"fields": ["body", "tenant"]}),
    ]
    before = cli.snapshot(task_id)
    problems = cli.refusal_problems(
        [
            (["edit", task_id, "--title", ""], 1, "title must not be empty"),
            (["edit", task_id, "--title", "two\nlines"], 1, "title must be one line"),
            (["edit", task_id, "--priority", "1000001"], 1, "priority must be between"),
            (["edit", task_id, "--tenant", "bad tenant"], 1, "not a valid name"),
            (["edit", task_id, "--body", "esc \x1b[2J"], 1, "body contains a control character"),
            (["edit", "t404", "--title", "x"], 1, "no such task: t404"),
            (["edit", "abc", "--title", "x"], 2, "not a task id: 'abc'"),
        ]
    )
    assert problems == []
    assert cli.snapshot(task_id) == before


def test_assign(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("work")
    running = cli.create("busy")
    assert cli.ok("assign", task_id, "bob").out == f"Assigned {task_id} to bob\n"
    assert cli.ok("assign", task_id, "none").out == f"Assigned {task_id} to (unassigned)\n"
    assert cli.ok("assign", task_id, "carol").out == f"Assigned {task_id} to carol\n"
    detail = cli.show(task_id)
    assert detail["task"]["assignee"] == "carol"
    assert [e["payload"] for e in detail["events"] if e["kind"] == "assigned"] == [
        {"assignee": "bob", "previous": None},
        {"assignee": None, "previous": "bob"},
        {"assignee": "carol", "previous": None},
    ]
    cli.claim(running)
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["assign", running, "bob"], 1, f"cannot assign {running}: it is running"),
            (["assign", task_id, "bad name!"], 1, "not a valid name"),
            (["assign", task_id, "x" * 65], 1, "not a valid name"),
            (["assign", task_id, "👩‍💻"], 1, "not a valid name"),
            (["assign", "t404", "bob"], 1, "no such task: t404"),
            (["assign", task_id], 2, "required: assignee"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_comment(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("discuss")
    assert cli.ok("comment", task_id, "words", "are", "joined").out == (
        f"Comment added to {task_id}\n"
    )
    cli.ok("comment", task_id, "  second\r\nline  ", env={"KANBAN_USER": "bob"})
    comments = cli.show(task_id)["comments"]
    assert [(c["author"], c["body"]) for c in comments] == [
        (OPERATOR, "words are joined"),
        ("bob", "second\nline"),
    ]
    assert {"id", "author", "body", "created_at"} <= set(comments[0])
    text = cli.ok("show", task_id).out
    assert "Comments (2)" in text
    assert re.search(rf"^{OPERATOR} \(.*\): words are joined$", text, re.MULTILINE)


def test_link_unlink_and_cycles(cli: Cli) -> None:
    a, b, c = (cli.create(title) for title in ("a", "b", "c"))
    assert cli.ok("link", a, b).out == f"Linked {a} -> {b}\n"
    assert cli.ok("link", a, b).out == f"Linked {a} -> {b}  (already linked)\n"
    cli.ok("link", b, c)
    assert [cli.task(t)["status"] for t in (a, b, c)] == ["ready", "todo", "todo"]
    before = cli.snapshot(a, b, c)
    problems = cli.refusal_problems(
        [
            (["link", c, a], 1, f"linking {c} -> {a} would create a cycle"),
            (["link", b, a], 1, "would create a cycle"),
            (["link", a, a], 1, "a task cannot depend on itself"),
            (["link", a, "t404"], 1, "no such task: t404"),
            (["link", "t404", a], 1, "no such task: t404"),
            (["unlink", a, c], 1, f"No such link {a} -> {c}"),
            (["unlink", "t404", a], 1, "no such task: t404"),
            (["link", a, "xyz"], 2, "not a task id: 'xyz'"),
            (["create", "orphan", "--parent", "t404"], 1, "no such task: t404"),
            (["create", "orphan", "--parent", "t0"], 2, "not a task id: 't0'"),
        ]
    )
    assert problems == []
    assert cli.snapshot(a, b, c) == before
    assert cli.ok("unlink", b, c).out == f"Unlinked {b} -> {c}\n"
    assert cli.task(c)["status"] == "ready"  # nothing holds it back any more
    cli.ok("complete", a)
    detail = cli.show(b)
    assert detail["task"]["status"] == "ready"
    assert kinds(detail) == ["created", "linked", "promoted"]
    assert detail["events"][1]["payload"] == {"parent": a, "child": b, "demoted": True}
    assert kinds(cli.show(c)) == ["created", "linked", "unlinked", "promoted"]


# -- claims and workers ------------------------------------------------------------------------


def test_claim_by_id_and_next(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    low = cli.create("low", "--priority", "1")
    high = cli.create("high", "--priority", "9")
    bobs = cli.create("bobs", "--assignee", "bob")
    waiting = cli.create("waiting", "--parent", low)
    lines = cli.ok("claim", low).out.splitlines()
    assert lines[0] == f"Claimed {low}  (run r1, attempt 1)"
    match = re.fullmatch(
        rf"export KANBAN_TASK={low} KANBAN_RUN_ID=1 KANBAN_RUN_TOKEN=(\S+)", lines[1]
    )
    assert match, lines
    text_token = match.group(1)

    before = time.time()
    claim = cli.claim()
    assert set(claim) >= CLAIM_KEYS
    assert claim["task_id"] == high  # the highest priority ready task
    assert claim["run_id"] == 2
    assert claim["attempt"] == 1
    assert claim["workspace_kind"] == "scratch"
    assert claim["workspace_path"] is None
    assert isinstance(claim["run_token"], str)
    assert len(claim["run_token"]) >= 20
    assert claim["run_token"] != text_token
    assert before + 800 < claim["lease_expires_at"] < time.time() + 1000  # the 900 s default
    short = cli.claim(None, "--assignee", "bob", "--ttl", "60")
    assert short["task_id"] == bobs
    assert short["lease_expires_at"] < time.time() + 120

    detail = cli.show(high)
    assert detail["task"]["status"] == "running"
    assert detail["task"]["current_run_id"] == claim["run_id"]
    assert detail["task"]["attempts"] == 1
    assert [(r["id"], r["status"], r["claimer"], r["outcome"]) for r in detail["runs"]] == [
        (2, "running", OPERATOR, None)
    ]
    assert detail["events"][-1]["kind"] == "claimed"
    assert detail["events"][-1]["run_id"] == 2

    before_refusals = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["claim", "--next"], 1, "nothing is ready to claim"),
            (["claim", "--next", "--assignee", "bob"], 1, "nothing is ready to claim"),
            (["claim", low], 1, f"cannot claim {low}: it is running"),
            (["claim", waiting], 1, f"cannot claim {waiting}: it is todo"),
            (["claim", "t404"], 1, "no such task: t404"),
            (["claim"], 2, "give a task id or --next"),
            (["claim", low, "--next"], 2, "give a task id or --next"),
            (["claim", low, "--assignee", "bob"], 2, "--assignee goes with --next"),
            (["claim", "--next", "--ttl", "0"], 1, "--ttl must be between"),
            (["claim", "--next", "--ttl", str(8 * 86400)], 1, "--ttl must be between"),
            (["claim", "--next", "--assignee", "no body"], 1, "not a valid name"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before_refusals


def test_worker_acts_on_its_own_run(cli: Cli) -> None:
    task_id = cli.create("build", "--assignee", "coder")
    other = cli.create("other")
    claim = cli.claim(task_id)
    run = claim["run_id"]
    assert isinstance(run, int)
    # KANBAN_USER is whatever the worker's environment says; its identity comes from the run.
    env = worker_env(claim, KANBAN_USER="mallory")
    assert cli.ok("heartbeat", env=env).out == f"Heartbeat recorded for {task_id}\n"
    cli.ok("heartbeat", task_id, "--note", "half way", env=env)
    assert cli.ok("comment", task_id, "progress", "report", env=env).out == (
        f"Comment added to {task_id}\n"
    )
    follow_up = cli.json("create", "follow-up", env=env)
    assert follow_up["created_by"] == f"coder@r{run}"
    done = cli.ok(
        "complete",
        "--result", "artifact at /tmp/x",
        "--summary", "built it\nsecond line",
        "--metadata", '{"files": 3, "ok": true, "name": "ü"}',
        env=env,
    )  # fmt: skip
    assert done.out == f"Completed {task_id}\n"

    detail = cli.show(task_id)
    task = detail["task"]
    assert (task["status"], task["result"], task["current_run_id"]) == (
        "done",
        "artifact at /tmp/x",
        None,
    )
    assert isinstance(task["completed_at"], int)
    assert [(c["author"], c["body"]) for c in detail["comments"]] == [
        (f"coder@r{run}", "progress report")
    ]
    assert len(detail["runs"]) == 1
    attempt = detail["runs"][0]
    assert set(attempt) >= RUN_JSON_KEYS
    assert {k: attempt[k] for k in RUN_JSON_KEYS - {"started_at", "ended_at"}} == {
        "id": run,
        "task_id": task_id,
        "attempt": 1,
        "profile": "coder",
        "claimer": OPERATOR,
        "status": "done",
        "outcome": "completed",
        "summary": "built it\nsecond line",
        "metadata": {"files": 3, "ok": True, "name": "ü"},
        "error": None,
        "worker_pid": None,
        "input_tokens": None,
        "output_tokens": None,
        "cost_usd": None,
    }
    assert kinds(detail) == ["created", "claimed", "heartbeat", "commented", "completed"]
    assert detail["events"][2]["payload"] == {"note": "half way"}
    assert detail["events"][4]["payload"] == {"summary": "built it", "result_len": 18}
    assert detail["events"][4]["run_id"] == run
    assert cli.json("runs", task_id) == detail["runs"]
    runs_text = cli.ok("runs", task_id).out.splitlines()
    assert re.split(r"\s{2,}", runs_text[0]) == [
        "RUN", "#", "OUTCOME", "PROFILE", "ELAPSED", "STARTED", "NOTE",
    ]  # fmt: skip
    assert runs_text[1].startswith(f"r{run}")
    assert "completed" in runs_text[1]
    assert runs_text[1].endswith("built it")
    assert cli.task(other)["status"] == "ready"
    assert kinds(cli.show(other)) == ["created"]


def test_worker_blocks_with_a_reason_and_is_unblocked(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("needs input", "--assignee", "coder")
    claim = cli.claim(task_id)
    env = worker_env(claim)
    assert (
        cli.ok("block", task_id, "which", "API?", env=env).out == f"Blocked {task_id}: which API?\n"
    )
    detail = cli.show(task_id)
    assert (detail["task"]["status"], detail["task"]["block_kind"]) == ("blocked", "human")
    assert [(c["author"], c["body"]) for c in detail["comments"]] == [
        (f"coder@r{claim['run_id']}", "BLOCKED: which API?")
    ]
    assert [(r["outcome"], r["summary"]) for r in detail["runs"]] == [("blocked", "which API?")]
    assert detail["events"][-1]["payload"] == {"reason": "which API?", "kind": "human"}
    # The run is over: the same credentials can no longer write.
    cli.refused("heartbeat", env=env, match="nothing was changed")
    assert cli.ok("unblock", task_id).out == f"Unblocked {task_id}  (now ready)\n"
    again = cli.claim(task_id)
    assert again["attempt"] == 2


def test_worker_may_block_its_own_task_without_naming_it(sqlite_cli: Cli) -> None:
    # `block --help`: "the task (a worker may omit its own)"; the reason follows it.
    cli = sqlite_cli
    task_id = cli.create("needs input")
    env = worker_env(cli.claim(task_id))
    cli.ok("block", "waiting for an API key", env=env)
    detail = cli.show(task_id)
    assert detail["task"]["status"] == "blocked"
    assert detail["events"][-1]["payload"]["reason"] == "waiting for an API key"


def test_worker_is_confined_to_its_task_and_may_not_act_as_operator(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    mine = cli.create("mine")
    other = cli.create("other")
    parked = cli.create("parked")
    cli.ok("block", parked, "parked")
    cli.ok("link", other, parked)
    claim = cli.claim(mine)
    env = worker_env(claim)
    before = cli.snapshot(mine, other, parked, subscriptions=True)
    scoped = f"this worker is scoped to {mine}; refusing to change {other}"
    problems = cli.refusal_problems(
        [
            (["complete", other], 1, scoped),
            (["block", other, "not mine"], 1, scoped),
            (["heartbeat", other], 1, scoped),
            (["edit", mine, "--title", "renamed"], 1, "a worker may not edit"),
            (["assign", other, "bob"], 1, "a worker may not assign"),
            (["archive", other], 1, "a worker may not archive"),
            (["unblock", parked], 1, "a worker may not unblock"),
            (["unlink", other, parked], 1, "a worker may not unlink"),
            (["claim", other], 1, "a worker may not claim"),
            (["claim", "--next"], 1, "a worker may not claim"),
            (["reclaim", mine], 1, "a worker may not reclaim"),
            (["gc"], 1, "a worker may not gc"),
            (
                ["notify-subscribe", mine, "--platform", "slack", "--chat-id", "C1"],
                1,
                "a worker may not notify-subscribe",
            ),
            (
                ["notify-unsubscribe", mine, "--platform", "slack", "--chat-id", "C1"],
                1,
                "a worker may not notify-unsubscribe",
            ),
            (["block", mine], 1, "a worker must say why it is blocked"),
        ],
        env=env,
    )
    assert problems == []
    assert cli.snapshot(mine, other, parked, subscriptions=True) == before


def test_worker_comments_on_another_task_as_its_run(sqlite_cli: Cli) -> None:
    # A live worker may leave a sibling a note (the reference allows it too); it changes no
    # state, and the author is its proven run, never a name it picks.
    cli = sqlite_cli
    mine = cli.create("mine", "--assignee", "coder")
    other = cli.create("other")
    claim = cli.claim(mine)
    before = cli.show(other)["task"]
    cli.ok("comment", other, "the API moved to v2", env=worker_env(claim))
    after = cli.show(other)
    assert after["task"]["status"] == before["status"]
    assert [c["author"] for c in after["comments"]] == [f"coder@r{claim['run_id']}"]


def test_forged_or_incomplete_worker_credentials_are_refused(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("guarded")
    other = cli.create("other")
    claim = cli.claim(task_id)
    good = worker_env(claim)
    before = cli.snapshot(task_id, other)
    wrong_token = {**good, "KANBAN_RUN_TOKEN": "not-the-token"}
    wrong_run = {**good, "KANBAN_RUN_ID": str(claim["run_id"] + 1)}
    wrong_task = {**good, "KANBAN_TASK": other}
    incomplete = "worker credentials are incomplete"
    problems = cli.refusal_problems_each(
        [
            (["complete"], {**good, "KANBAN_TASK": None}, 1, incomplete),
            (["list"], {**good, "KANBAN_RUN_TOKEN": None}, 1, incomplete),
            (["heartbeat"], {**good, "KANBAN_RUN_ID": None}, 1, incomplete),
            (["complete"], {**good, "KANBAN_RUN_ID": "abc"}, 1, "not a run id: 'abc'"),
            (["complete"], {**good, "KANBAN_TASK": "xyz"}, 1, "not a task id: 'xyz'"),
            (["complete"], wrong_token, 1, "nothing was changed"),
            (["heartbeat"], wrong_token, 1, "nothing was changed"),
            (["block", task_id, "x"], wrong_token, 1, "its token does not match"),
            (["comment", task_id, "x"], wrong_token, 1, "its token does not match"),
            (["complete"], wrong_run, 1, "nothing was changed"),
            (["complete"], wrong_task, 1, "nothing was changed"),
            (["heartbeat", other], wrong_task, 1, "nothing was changed"),
        ]
    )
    assert problems == []
    assert cli.snapshot(task_id, other) == before


def test_stale_run_is_refused_after_reclaim(cli: Cli) -> None:
    task_id = cli.create("flaky", "--assignee", "coder")
    first = cli.claim(task_id)
    assert cli.ok("reclaim", task_id, "--reason", "worker hung").out == (
        f"Reclaimed {task_id}  (now ready)\n"
    )
    reclaimed = cli.show(task_id)
    assert reclaimed["task"]["status"] == "ready"
    assert reclaimed["events"][-1]["payload"] == {
        "manual": True,
        "reason": "worker hung",
        "by": OPERATOR,
    }
    second = cli.claim(task_id)
    assert second["attempt"] == 2
    assert second["run_id"] != first["run_id"]
    before = cli.snapshot(task_id)
    stale = worker_env(first)
    needle = f"run r{first['run_id']} is not its current attempt"
    problems = cli.refusal_problems(
        [
            (["complete"], 1, needle),
            (["complete", task_id, "--summary", "late"], 1, needle),
            (["heartbeat"], 1, needle),
            (["heartbeat", "--note", "still alive"], 1, needle),
            (["block", task_id, "too late"], 1, needle),
        ],
        env=stale,
    )
    assert problems == []
    assert cli.snapshot(task_id) == before
    # The live attempt is unaffected.
    cli.ok("complete", "--summary", "second time lucky", env=worker_env(second))
    runs = cli.json("runs", task_id)
    assert [(r["attempt"], r["outcome"], r["error"], r["summary"]) for r in runs] == [
        (1, "reclaimed", "reclaimed by alice: worker hung", None),
        (2, "completed", None, "second time lucky"),
    ]


def test_stale_worker_cannot_comment(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("flaky")
    first = cli.claim(task_id)
    cli.ok("reclaim", task_id)
    before = cli.show(task_id)
    cli.refused(
        "comment", task_id, "I am a zombie", env=worker_env(first), match="nothing was changed"
    )
    assert cli.show(task_id) == before


def test_reclaim_refusals(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    ready = cli.create("ready")
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["reclaim", ready], 1, f"cannot reclaim {ready}: it is ready"),
            (["reclaim", "t404"], 1, "no such task: t404"),
            (["reclaim"], 2, "required: task_id"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_heartbeat_needs_worker_credentials(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("t")
    cli.claim(task_id)
    before = cli.snapshot()
    cli.refused("heartbeat", task_id, match="heartbeat needs a worker's run credentials")
    cli.refused("heartbeat", code=2, match="a task id is required")
    assert cli.snapshot() == before


def test_concurrent_claims_hand_out_each_task_once(cli: Cli) -> None:
    created = cli.run_many([("create", f"job {i}", "--json") for i in range(3)])
    task_ids = {r.json()["id"] for r in created}
    results = cli.run_many([("claim", "--next", "--json")] * 8)
    granted = [r.json() for r in results if r.code == 0]
    refused = [r for r in results if r.code != 0]
    assert sorted(c["task_id"] for c in granted) == sorted(task_ids)
    assert len({c["run_token"] for c in granted}) == 3
    for result in refused:
        assert refusal_problem(result, 1, "nothing is ready to claim") is None, result.describe()


# -- completing, blocking, archiving -----------------------------------------------------------


def test_complete_bulk_and_handoff_rules(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    a, b, c = (cli.create(title) for title in ("a", "b", "c"))
    child = cli.create("child", "--parent", a, "--parent", b)
    before = cli.snapshot(a, child)
    per_task = "--summary and --metadata are per task"
    problems = cli.refusal_problems(
        [
            (["complete", a, b, "--summary", "s"], 2, per_task),
            (["complete", a, b, "--metadata", "{}"], 2, per_task),
            (["complete", a, "--metadata", "[1, 2]"], 2, "metadata must be a JSON object"),
            (["complete", a, "--metadata", "{bad json"], 2, "metadata is not valid JSON"),
            (["complete", a, "--metadata", '"text"'], 2, "metadata must be a JSON object"),
            (
                ["complete", a, "--metadata", json.dumps({"k": "x" * 70_000})],
                2,
                "metadata is too large",
            ),
            (["complete", a, "--summary", "x" * 70_000], 1, "summary is too long"),
            (["complete", a, "--result", "bell \x07"], 1, "result contains a control character"),
            (["complete"], 2, "a task id is required"),
            (["complete", "t404"], 1, "no such task: t404"),
        ]
    )
    assert problems == []
    assert cli.snapshot(a, child) == before

    # Bulk: every good id is completed, each bad one reported on its own line, exit 1.
    bulk = cli.run("complete", a, b, "t404", "bogus", a)
    assert bulk.code == 1, bulk.describe()
    assert bulk.out.splitlines() == [f"Completed {a}", f"Completed {b}"]
    assert bulk.err_lines == [
        "kanban: no such task: t404",
        "kanban: not a task id: 'bogus' (expected something like t42)",
    ]
    assert [cli.task(t)["status"] for t in (a, b, child)] == ["done", "done", "ready"]
    assert kinds(cli.show(child))[-1] == "promoted"

    # A handoff on a task nobody claimed is kept on a zero-length run.
    cli.ok("complete", c, "--summary", "done by hand", "--metadata", '{"pr": 42}')
    runs = cli.json("runs", c)
    assert [(r["claimer"], r["outcome"], r["summary"], r["metadata"]) for r in runs] == [
        ("manual", "completed", "done by hand", {"pr": 42})
    ]
    assert cli.ok("runs", a).out == f"(no runs yet for {a})\n"
    assert cli.json("runs", a) == []
    cli.refused("complete", a, match=f"cannot complete {a}: it is done")


def test_block_and_unblock(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    a, b, c, parent = (cli.create(title) for title in ("a", "b", "c", "parent"))
    child = cli.create("child", "--parent", parent)
    assert (
        cli.ok("block", a, "waiting", "for", "design").out == f"Blocked {a}: waiting for design\n"
    )
    assert cli.ok("block", b, "--ids", c, b).out == f"Blocked {b}\nBlocked {c}\n"
    cli.ok("block", child, "hold")
    detail = cli.show(a)
    assert (detail["task"]["status"], detail["task"]["block_kind"]) == ("blocked", "human")
    assert [(x["author"], x["body"]) for x in detail["comments"]] == [
        (OPERATOR, "BLOCKED: waiting for design")
    ]
    assert detail["events"][-1]["payload"] == {
        "reason": "waiting for design",
        "kind": "human",
        "by": OPERATOR,
    }
    assert cli.show(b)["events"][-1]["payload"] == {
        "reason": f"blocked by {OPERATOR}",
        "kind": "human",
        "by": OPERATOR,
    }
    assert cli.show(b)["comments"] == []
    assert field(cli.ok("show", a).out, "status") == "blocked"

    before = cli.snapshot(a, parent)
    problems = cli.refusal_problems(
        [
            (["block", a, "again"], 1, f"cannot block {a}: it is blocked"),
            (["block", "t404"], 1, "no such task: t404"),
            (["block", "xyz"], 1, "not a task id: 'xyz'"),
            (["unblock", parent], 1, f"cannot unblock {parent}: it is ready"),
            (["unblock", "t404"], 1, "no such task: t404"),
            (["unblock"], 2, "required: ID"),
            (["unblock", a, "--reason", "esc \x1b"], 1, "reason contains a control character"),
        ]
    )
    assert problems == []
    assert cli.snapshot(a, parent) == before

    out = cli.ok("unblock", a, b, a, "--reason", "design approved").out
    assert out == f"Unblocked {a}  (now ready)\nUnblocked {b}  (now ready)\n"
    assert [x["body"] for x in cli.show(a)["comments"]] == [
        "BLOCKED: waiting for design",
        "UNBLOCK: design approved",
    ]
    assert cli.ok("unblock", child).out == f"Unblocked {child}  (now todo)\n"  # parent unfinished
    mixed = cli.run("unblock", c, a)
    assert mixed.code == 1, mixed.describe()
    assert mixed.out == f"Unblocked {c}  (now ready)\n"
    assert mixed.err_lines == [f"kanban: cannot unblock {a}: it is ready"]


def test_archive(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    a = cli.create("a", "--idempotency-key", "key-1")
    b = cli.create("b")
    child = cli.create("child", "--parent", a)
    running = cli.create("running")
    cli.claim(running)
    cli.ok("notify-subscribe", running, "--platform", "slack", "--chat-id", "C1")
    assert cli.ok("archive", a, b, a).out == f"Archived {a}\nArchived {b}\n"
    listings = cli.run_many(
        [
            ("list", "--json"),
            ("list", "--json", "--archived"),
            ("list", "--json", "--status", "archived"),
        ]
    )
    assert [ids(r.json()) for r in listings] == [
        [child, running],
        [a, b, child, running],
        [a, b],
    ]
    assert cli.task(child)["status"] == "ready"  # an archived parent satisfies its children
    cli.refused("archive", a, match=f"{a} is already archived")
    # Archiving frees the idempotency key.
    reborn = cli.json("create", "a again", "--idempotency-key", "key-1")
    assert (reborn["created"], reborn["id"]) == (True, "t5")

    assert cli.ok("archive", running).out == f"Archived {running}\n"
    runs = cli.json("runs", running)
    assert [(r["outcome"], r["error"]) for r in runs] == [
        ("reclaimed", "task archived while running")
    ]
    assert cli.json("notify-list") == []
    mixed = cli.run("archive", "t404", child)
    assert mixed.code == 1, mixed.describe()
    assert mixed.out == f"Archived {child}\n"
    assert mixed.err_lines == ["kanban: no such task: t404"]
    assert cli.task(child)["status"] == "archived"


# -- streams -----------------------------------------------------------------------------------


def test_tail_once_and_watch_once(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    a = cli.create("alpha", "--assignee", "coder", "--tenant", "acme")
    b = cli.create("beta")
    cli.ok("comment", a, "hello")
    cli.ok("complete", b)
    results = cli.run_many(
        [
            ("tail", a, "--once"),
            ("tail", a, "--once", "--limit", "1"),
            ("watch", "--once"),
            ("watch", "--once", "--kinds", "completed"),
            ("watch", "--once", "--tenant", "acme"),
            ("watch", "--once", "--assignee", "coder"),
            ("watch", "--once", "--kinds", "completed", "--tenant", "acme"),
            ("watch", "--once", "--limit", "2"),
        ]
    )
    for result in results:
        assert result.code == 0, result.describe()
    lines = [r.out.splitlines() for r in results]
    assert all(EVENT_LINE.match(line) for line in lines[0] + lines[2])

    def shape(line: str) -> list[str]:
        return re.split(r"\s{2,}", line)[1:3]

    assert [line.split("  ")[1] for line in lines[0]] == ["created", "commented"]
    assert '{"author":"alice","len":5}' in lines[0][1]
    assert [line.split("  ")[1] for line in lines[1]] == ["commented"]
    assert [shape(line) for line in lines[2]] == [
        [a, "created"],
        [b, "created"],
        [a, "commented"],
        [b, "completed"],
    ]
    assert [shape(line) for line in lines[3]] == [[b, "completed"]]
    assert [shape(line) for line in lines[4]] == [[a, "created"], [a, "commented"]]
    assert lines[5] == lines[4]
    assert lines[6] == ["(no matching events)"]
    assert [shape(line) for line in lines[7]] == [[a, "commented"], [b, "completed"]]

    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["tail", "t404", "--once"], 1, "no such task: t404"),
            (["tail", a, "--once", "--limit", "0"], 2, "--limit must be between 1 and 1000"),
            (["tail", a, "--interval", "0"], 2, "--interval must be between"),
            (["watch", "--once", "--limit", "5000"], 2, "--limit must be between 1 and 1000"),
            (["watch", "--once", "--kinds", "completed,bogus"], 2, "unknown event kind(s): bogus"),
            (["tail", "--once"], 2, "required: task_id"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_tail_follows_new_events_until_interrupted(cli: Cli) -> None:
    task_id = cli.create("followed")
    with cli.follow("tail", task_id, "--interval", "0.05") as tail:
        tail.lines.wait_for(lambda line: "  created  " in line)
        cli.ok("comment", task_id, "ping 🏓")
        line = tail.lines.wait_for(lambda line: "  commented  " in line)
        assert EVENT_LINE.match(line), line
        cli.ok("block", task_id, "stop 🛑")
        tail.lines.wait_for(lambda line: "  blocked  " in line and "stop 🛑" in line)
    assert (tail.code, tail.err) == (0, "")
    assert [line.split("  ")[1] for line in tail.lines.seen] == [
        "created",
        "commented",
        "commented",  # the BLOCKED: comment
        "blocked",
    ]


def test_watch_follows_matching_events_until_interrupted(cli: Cli) -> None:
    old = cli.create("old")
    with cli.follow("watch", "--kinds", "completed,blocked", "--interval", "0.05") as watch:
        header = watch.lines.wait_for(lambda line: line.startswith("watching from event"))
        assert header == "watching from event 1 (Ctrl-C to stop)"
        fresh = cli.create("fresh")
        cli.ok("comment", fresh, "not shown")
        cli.ok("complete", fresh)
        line = watch.lines.wait_for(lambda line: "completed" in line)
        assert re.split(r"\s{2,}", line)[1:3] == [fresh, "completed"]
        cli.ok("block", old, "shown")
        watch.lines.wait_for(lambda line: f"  {old}  blocked" in line)
    assert (watch.code, watch.err) == (0, "")
    assert len(watch.lines.seen) == 3  # the header, completed, blocked: no created or commented


# -- stats, assignees, notifications, gc -------------------------------------------------------


def test_stats_and_assignees(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    empty_stats, empty_assignees, empty_text = cli.run_many(
        [("stats", "--json"), ("assignees", "--json"), ("assignees",)]
    )
    stats = empty_stats.json()
    assert {"by_status", "by_assignee", "oldest_ready_age_seconds", "now"} <= set(stats)
    assert stats["by_status"] == {
        "triage": 0, "todo": 0, "ready": 0, "running": 0, "blocked": 0, "done": 0,
    }  # fmt: skip
    assert stats["by_assignee"] == {}
    assert stats["oldest_ready_age_seconds"] is None
    assert empty_assignees.json() == []
    assert empty_text.out == "(no assignees on the board yet)\n"

    cli.create("c1", "--assignee", "coder")
    busy = cli.create("c2", "--assignee", "coder")
    cli.create("b1", "--assignee", "bob", "--triage")
    cli.create("none")
    gone = cli.create("b2", "--assignee", "bob")
    cli.ok("archive", gone)
    cli.claim(busy)
    stats_json, stats_text, assignees_json, assignees_text = cli.run_many(
        [("stats", "--json"), ("stats",), ("assignees", "--json"), ("assignees",)]
    )
    stats = stats_json.json()
    assert stats["by_status"] == {
        "triage": 1, "todo": 0, "ready": 2, "running": 1, "blocked": 0, "done": 0,
    }  # fmt: skip
    assert stats["by_assignee"] == {"bob": {"triage": 1}, "coder": {"ready": 1, "running": 1}}
    age = stats["oldest_ready_age_seconds"]
    assert isinstance(age, int | float)
    assert 0 <= age < 600
    assert abs(stats["now"] - time.time()) < 600
    text = stats_text.out.splitlines()
    assert re.split(r"\s{2,}", text[0]) == ["STATUS", "COUNT"]
    assert re.split(r"\s{2,}", text[3]) == ["ready", "2"]
    assert "coder     ready=1 running=1" in text
    assert re.fullmatch(r"oldest ready: \d+s", text[-1])
    assert assignees_json.json() == [
        {"name": "bob", "counts": {"triage": 1}},
        {"name": "coder", "counts": {"ready": 1, "running": 1}},
    ]
    assert assignees_text.out.splitlines() == [
        "ASSIGNEE  TASKS",
        "bob       triage=1",
        "coder     ready=1 running=1",
    ]


def test_notify_subscribe_list_unsubscribe(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    tg = cli.create("telegram task")
    sl = cli.create("slack task")
    assert cli.ok("notify-list").out == "(no subscriptions)\n"
    subscribe = (
        "notify-subscribe", tg, "--platform", "Telegram", "--chat-id", "-100123",
        "--thread-id", "7", "--user-id", "42",
    )  # fmt: skip
    assert cli.ok(*subscribe).out == f"Subscribed telegram:-100123:7 to {tg}\n"
    assert (
        cli.ok(*subscribe).out == f"Subscribed telegram:-100123:7 to {tg}  (already subscribed)\n"
    )
    cli.ok("notify-subscribe", sl, "--platform", "slack", "--chat-id", "C1 ✓")
    everything = cli.json("notify-list")
    assert isinstance(everything, list)
    assert [{k: v for k, v in s.items() if k != "created_at"} for s in everything] == [
        {
            "task_id": tg,
            "platform": "telegram",
            "chat_id": "-100123",
            "thread_id": "7",
            "user_id": "42",
        },
        {"task_id": sl, "platform": "slack", "chat_id": "C1 ✓", "thread_id": None, "user_id": None},
    ]
    assert all(isinstance(s["created_at"], int) for s in everything)
    assert cli.json("notify-list", tg) == everything[:1]
    table = cli.ok("notify-list").out.splitlines()
    assert [re.split(r"\s{2,}", row) for row in table] == [
        ["TASK", "CHAT", "USER"],
        [tg, "telegram:-100123:7", "42"],
        [sl, "slack:C1 ✓", "-"],
    ]

    before = cli.snapshot(tg, sl, subscriptions=True)
    problems = cli.refusal_problems(
        [
            (["notify-subscribe", tg, "--chat-id", "1"], 2, "required: --platform"),
            (["notify-subscribe", tg, "--platform", "slack"], 2, "required: --chat-id"),
            (
                ["notify-subscribe", "t404", "--platform", "slack", "--chat-id", "1"],
                1,
                "no such task: t404",
            ),
            (
                ["notify-subscribe", tg, "--platform", "tele gram", "--chat-id", "1"],
                1,
                "not a valid name",
            ),
            (
                ["notify-subscribe", tg, "--platform", "slack", "--chat-id", " "],
                1,
                "chat id must not be empty",
            ),
            (
                ["notify-subscribe", tg, "--platform", "slack", "--chat-id", "x" * 201],
                1,
                "chat id is too long",
            ),
            (["notify-list", "t404"], 1, "no such task: t404"),
            (["notify-list", "zz"], 2, "not a task id: 'zz'"),
            (
                ["notify-unsubscribe", tg, "--platform", "telegram", "--chat-id", "-100123"],
                1,
                "(no such subscription)",
            ),
            (
                ["notify-unsubscribe", "t404", "--platform", "slack", "--chat-id", "1"],
                1,
                "no such task: t404",
            ),
        ]
    )
    assert problems == []
    assert cli.snapshot(tg, sl, subscriptions=True) == before

    unsubscribe = (
        "notify-unsubscribe",
        tg,
        "--platform",
        "TELEGRAM",
        "--chat-id",
        "-100123",
        "--thread-id",
        "7",
    )
    assert cli.ok(*unsubscribe).out == f"Unsubscribed telegram:-100123:7 from {tg}\n"
    cli.refused(*unsubscribe, match="(no such subscription)")
    # A finished task has no more events: its subscriptions end and new ones are refused.
    cli.ok("complete", sl)
    assert cli.json("notify-list") == []
    cli.refused(
        "notify-subscribe", sl, "--platform", "slack", "--chat-id", "C1", match=f"{sl} is done"
    )


def test_gc(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    done = cli.create("done")
    live = cli.create("live")
    cli.ok("complete", done)
    cli.ok("comment", live, "keep me")
    assert (
        cli.ok("gc").out
        == "GC complete: 0 event row(s), 0 delivery row(s), 0 exec request(s), 0 spent nonce(s), "
        "0 log file(s), 0 workspace(s) removed\n"
    )
    logs = cli.home / "logs"
    logs.mkdir()
    old = time.time() - 60 * 86400
    for name in ("t1.log", "t1.log.1", "notes.txt", "t2.log"):
        (logs / name).write_text("log\n")
        if name != "t2.log":
            os.utime(logs / name, (old, old))
    out = cli.ok("gc", "--event-retention-days", "0").out
    assert out == (
        "GC complete: 2 event row(s), 0 delivery row(s), 0 exec request(s), 0 spent nonce(s), "
        "2 log file(s), 0 workspace(s) removed\n"
    )
    assert sorted(p.name for p in logs.iterdir()) == ["notes.txt", "t2.log"]
    assert cli.show(done)["events"] == []
    assert kinds(cli.show(live)) == ["created", "commented"]  # live work keeps its audit
    assert cli.ok("tail", done, "--once").out == f"(no events yet for {done})\n"
    cli.refused(
        "gc", "--event-retention-days", "-1", match="retention days must be between 0 and 36500"
    )
    cli.refused(
        "gc", "--log-retention-days", "-5", match="retention days must be between 0 and 36500"
    )


# -- bad input ---------------------------------------------------------------------------------


def test_bad_text_input_is_refused_and_changes_nothing(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("anchor")
    before = cli.snapshot(task_id)
    # A single argv string is capped at 128 KiB by Linux, so a 1 MB text reaches the CLI only
    # as many words; `comment` joins its words.
    megabyte = ["y" * 100_000] * 9 + ["y" * 99_991]  # joined with spaces: 1,000,000 bytes
    problems = cli.refusal_problems(
        [
            (["create", ""], 1, "title must not be empty"),
            (["create", " \t "], 1, "title must not be empty"),
            (["create", "two\nlines"], 1, "title must be one line"),
            (["create", "x" * 501], 1, "title is too long (501 characters"),
            (["create", "🐛" * 501], 1, "title is too long"),
            (["create", "bell \x07"], 1, "title contains a control character (U+0007)"),
            (["create", "\x1b[31mred"], 1, "(U+001B)"),
            (["create", "c1 \x9b"], 1, "(U+009B)"),
            (["create", "del \x7f"], 1, "(U+007F)"),
            (["create", "bad \udcff bytes"], 1, "title contains invalid unicode"),
            (
                ["create", "ok", "--body", "\x1b]0;pwned\x07"],
                1,
                "body contains a control character",
            ),
            (["create", "ok", "--idempotency-key", " "], 1, "idempotency key must not be empty"),
            (["create", "ok", "--idempotency-key", "k" * 201], 1, "at most 200 characters"),
            (["create", "ok", "--skill", "bad skill"], 1, "skill 'bad skill' is not a valid name"),
            (["create", "ok", "--assignee", "😀"], 1, "assignee '😀' is not a valid name"),
            (["create", "ok", "--priority", "1000001"], 1, "priority must be between"),
            (["create", "ok", "--priority", "-1000001"], 1, "priority must be between"),
            (["comment", task_id, ""], 1, "comment must not be empty"),
            (["comment", task_id, " ", " "], 1, "comment must not be empty"),
            (["comment", task_id, "back\x08space"], 1, "comment contains a control character"),
            (["comment", task_id, *megabyte], 1, "comment is too long (1000000 bytes"),
            (["comment", task_id, "é" * 40_000], 1, "comment is too long (80000 bytes"),
            (["block", task_id, "esc", "\x1b"], 1, "reason contains a control character"),
        ]
    )
    assert problems == []
    assert cli.snapshot(task_id) == before


def test_title_with_a_carriage_return_is_refused(sqlite_cli: Cli) -> None:
    # A lone CR is a C0 control (it rewrites the terminal line): not a one-line title.
    cli = sqlite_cli
    before = cli.snapshot()
    cli.refused("create", "harmless\rrm -rf /")
    assert cli.snapshot() == before


def test_malformed_durations_metadata_and_workspaces_are_usage_errors(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    task_id = cli.create("anchor")
    before = cli.snapshot()
    malformed = "malformed duration"
    cases: list[tuple[list[str], int, str]] = [
        (["create", "x", "--max-runtime", raw], 2, needle)
        for raw, needle in (
            ("", "a duration must not be empty"),
            ("abc", malformed),
            ("0", malformed),
            ("-5", malformed),
            ("1e3", malformed),
            ("inf", malformed),
            ("nan", malformed),
            ("5x", malformed),
            ("m", malformed),
            ("½h", malformed),
            ("400d", "out of range"),
            ("0.1s", "out of range"),
        )
    ]
    cases += [
        (["create", "x", "--workspace", raw], 2, needle)
        for raw, needle in (
            ("dir:relative/path", "path must be absolute, got 'relative/path'"),
            ("dir:./here", "path must be absolute"),
            ("dir:~/src", "'~' is not expanded"),
            ("dir:/srv/../etc", "must not contain '..'"),
            ("dir:", "needs a path"),
            ("dir:/tmp/\x1b", "workspace path contains a control character"),
            ("docker", "unknown workspace 'docker'"),
        )
    ]
    cases += [
        (["complete", task_id, "--metadata", raw], 2, needle)
        for raw, needle in (
            ("", "not valid JSON"),
            ("{'single': 'quotes'}", "not valid JSON"),
            ("null", "must be a JSON object"),
            ("3", "must be a JSON object"),
            # 60 KB of nesting, under the size limit: one line, not the decoder's recursion.
            ("[" * 30_000 + "]" * 30_000, "nested too deeply"),
            ('{"a": ' + "[" * 33 + "]" * 33 + "}", "nested too deeply"),
            ("[" * 60_000, "nested too deeply"),
        )
    ]
    problems = cli.refusal_problems(cases)
    assert problems == []
    assert cli.snapshot() == before


def test_tenant_names(sqlite_cli: Cli) -> None:
    cli = sqlite_cli
    good = ["équipe-\u03b1", "acme.prod@eu:1+x", "١٢٣", "T" * 64]
    results = cli.run_many([("create", f"for {t}", "--tenant", t, "--json") for t in good])
    assert [r.json()["tenant"] for r in results] == good
    cleared = cli.json("create", "no tenant", "--tenant", "")
    assert cleared["tenant"] is None
    assert ids(cli.tasks("--tenant", "équipe-\u03b1")) == [results[0].json()["id"]]
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["create", "x", f"--tenant={bad}"], 1, "is not a valid name")
            for bad in ("team 🚀", "🚀", "a/b", "-lead", "x" * 65, "zero\u200bwidth", "semi;colon")
        ]
        + [(["edit", "t1", "--tenant", "a b"], 1, "tenant 'a b' is not a valid name")]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_unknown_and_malformed_ids(cli: Cli) -> None:
    a = cli.create("a")
    cli.create("b")
    before = cli.snapshot(a)
    missing = "no such task: t404"
    cases: list[tuple[list[str], int, str]] = [
        (argv, 1, missing)
        for argv in (
            ["show", "t404"],
            ["show", "#404"],
            ["edit", "t404", "--title", "x"],
            ["assign", "T404", "bob"],
            ["comment", "404", "hi"],
            ["link", a, "t404"],
            ["unlink", "t404", a],
            ["claim", "t404"],
            ["complete", "t404"],
            ["block", "t404"],
            ["unblock", "t404"],
            ["archive", "t404"],
            ["tail", "t404", "--once"],
            ["runs", "t404"],
            ["reclaim", "t404"],
            ["notify-subscribe", "t404", "--platform", "slack", "--chat-id", "C1"],
            ["notify-list", "t404"],
            ["notify-unsubscribe", "t404", "--platform", "slack", "--chat-id", "C1"],
        )
    ]
    cases.append((["show", "t" + "9" * 18], 1, f"no such task: t{'9' * 18}"))
    malformed = [
        (argv, 2, "not a task id")
        for argv in (
            ["show", "abc"],
            ["show", "t0"],
            ["show", "t-1"],
            ["show", "1.5"],
            ["show", "t" + "9" * 19],
            ["show", "١٢"],  # Arabic-Indic digits are digits, but not ids
            ["runs", "#x"],
            ["assign", "zz", "bob"],
            ["link", "x", "y"],
            ["tail", "t", "--once"],
            ["edit", "'; DROP TABLE tasks; --", "--title", "x"],
        )
    ]
    # Bulk verbs report each bad id and carry on, so a malformed one is a refusal.
    malformed += [
        ([verb, "abc"], 1, "not a task id: 'abc'")
        for verb in ("complete", "block", "unblock", "archive")
    ]
    if cli.backend == "sqlite":  # malformed ids never reach the database
        cases += malformed
    problems = cli.refusal_problems(cases)
    assert problems == []
    assert cli.snapshot(a) == before


def test_sql_looking_strings_are_stored_verbatim(cli: Cli) -> None:
    nasty = "'; DROP TABLE tasks; --"
    body = 'Robert\'); DROP TABLE students;--\n" OR ""="'
    key = "' OR '1'='1"
    task_id = cli.create(nasty, "--body", body, "--idempotency-key", key)
    formats = cli.create("100% {now} :title %(title)s %s ? $1 \\x00")
    comment = "1; DELETE FROM task_comments WHERE 1=1; --"
    cli.ok("comment", task_id, comment)
    cli.ok("complete", formats, "--summary", "'); UPDATE tasks SET status='done'; --")
    detail = cli.show(task_id)
    assert (detail["task"]["title"], detail["task"]["body"], detail["task"]["idempotency_key"]) == (
        nasty,
        body,
        key,
    )
    assert [c["body"] for c in detail["comments"]] == [comment]
    assert cli.task(formats)["title"] == "100% {now} :title %(title)s %s ? $1 \\x00"
    assert cli.json("runs", formats)[0]["summary"] == "'); UPDATE tasks SET status='done'; --"
    retry = cli.json("create", "retry", "--idempotency-key", key)
    assert (retry["created"], retry["id"]) == (False, task_id)
    results = cli.run_many(
        [
            ("list", "--json"),
            ("list", "--json", "--tenant", "x' OR '1'='1"),
            ("list", "--json", "--assignee", "' OR 1=1 --"),
            ("ls",),
            ("show", task_id),
        ]
    )
    listed, by_tenant, by_assignee, table, text = results
    assert [(t["id"], t["title"], t["status"]) for t in listed.json()] == [
        (task_id, nasty, "ready"),
        (formats, "100% {now} :title %(title)s %s ? $1 \\x00", "done"),
    ]
    assert by_tenant.json() == []
    assert by_assignee.json() == []
    assert nasty in table.out
    assert text.out.splitlines()[0] == f"{task_id}  {nasty}"
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["create", "x", "--assignee", nasty], 1, "is not a valid name"),
            (["create", "x", "--tenant", nasty], 1, "is not a valid name"),
            (["create", "x", "--skill", nasty], 1, "is not a valid name"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_unicode_and_emoji_round_trip(cli: Cli) -> None:
    title = "Fix 🐛 in Zürich — 東京 ✓ שלום 👩‍💻 Cafe\u0301"
    body = "Ünïcödé body\n\twith a tab\n第二行 🚀\u2028end"
    task_id = cli.create(
        title, "--body", body, "--tenant", "équipe", "--assignee", "José", "--skill", "日本語"
    )
    comment = "Looks good 👍 — ça marche"
    cli.ok("comment", task_id, comment)
    summary = "Fertig ✅ 完了"
    claim = cli.claim(task_id)
    cli.ok(
        "complete",
        "--summary",
        summary,
        "--metadata",
        '{"emoji": "🎉", "ключ": "значение"}',
        env=worker_env(claim),
    )
    detail = cli.show(task_id)
    task = detail["task"]
    assert (task["title"], task["body"], task["tenant"], task["assignee"], task["skills"]) == (
        title,
        body,
        "équipe",
        "José",
        ["日本語"],
    )
    assert [c["body"] for c in detail["comments"]] == [comment]
    assert detail["runs"][0]["summary"] == summary
    assert detail["runs"][0]["metadata"] == {"emoji": "🎉", "ключ": "значение"}
    assert detail["events"][-1]["payload"]["summary"] == summary
    emoji_only = cli.create("🎉")
    cli.ok("edit", emoji_only, "--title", "🎉🎊", "--body", "🥳" * 25_000)  # 100 kB of emoji
    results = cli.run_many(
        [
            ("show", task_id),
            ("ls",),
            ("list", "--json", "--tenant", "équipe"),
            ("list", "--json", "--assignee", "José"),
            ("tail", task_id, "--once"),
            ("show", emoji_only, "--json"),
            ("assignees", "--json"),
        ]
    )
    for result in results:
        assert result.code == 0, result.describe()
    text, table, by_tenant, by_assignee, tail, edited, assignees = results
    assert text.out.splitlines()[0] == f"{task_id}  {title}"
    assert f"\n{body}\n" in text.out
    assert f"{OPERATOR} (" in text.out
    assert comment in text.out
    assert f"[équipe] {title}" in table.out
    assert ids(by_tenant.json()) == [task_id]
    assert ids(by_assignee.json()) == [task_id]
    assert summary in tail.out
    assert (edited.json()["task"]["title"], edited.json()["task"]["body"]) == (
        "🎉🎊",
        "🥳" * 25_000,
    )
    assert assignees.json() == [{"name": "José", "counts": {"done": 1}}]
    before = cli.snapshot()
    problems = cli.refusal_problems(
        [
            (["create", "x", "--tenant", "team 🚀"], 1, "tenant 'team 🚀' is not a valid name"),
            (["create", "x", "--assignee", "👩‍💻"], 1, "is not a valid name"),
            (["assign", task_id, "José 🎉"], 1, "is not a valid name"),
        ]
    )
    assert problems == []
    assert cli.snapshot() == before


def test_names_at_their_documented_limits_are_accepted(cli: Cli) -> None:
    # clean_name allows 64 characters for every name (assignee, tenant, skill, platform).
    long_name = "n" * 64
    task_id = cli.create(
        "limits", "--assignee", long_name, "--tenant", long_name, "--skill", long_name
    )
    task = cli.task(task_id)
    assert (task["assignee"], task["tenant"], task["skills"]) == (long_name, long_name, [long_name])
    result = cli.run(
        "notify-subscribe", task_id, "--platform", long_name[:32], "--chat-id", "c" * 200,
        "--thread-id", "t" * 200, "--user-id", "u" * 200,
    )  # fmt: skip
    assert result.code == 0, result.describe()
    assert cli.json("notify-list", task_id)[0]["platform"] == long_name[:32]


@pytest.mark.parametrize(
    "user",
    [pytest.param("u" * 300, id="300-chars"), pytest.param("eve\x1b[2J", id="escape-sequence")],
)
def test_odd_kanban_user_is_refused_cleanly_or_stored_sanely(cli: Cli, user: str) -> None:
    # KANBAN_USER becomes created_by, claimer and comment authors: it must not crash the CLI
    # (created_by is VARCHAR(200)) nor carry terminal control sequences onto the board.
    before = cli.snapshot()
    result = cli.run("create", "who am I", "--json", env={"KANBAN_USER": user})
    if result.code == 0:
        created_by = result.json()["created_by"]
        assert not CONTROL.search(created_by), result.describe()
        return
    assert refusal_problem(result, 1, "") is None, result.describe()
    assert cli.snapshot() == before


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["list", "--limit", str(10**20)], id="list-limit"),
        pytest.param(["gc", "--event-retention-days", str(10**12)], id="gc-retention"),
        pytest.param(["create", "x", "--priority", str(10**20)], id="priority"),
        pytest.param(["claim", "--next", "--ttl", str(10**20)], id="ttl"),
    ],
)
def test_huge_numbers_are_handled_without_a_traceback(cli: Cli, argv: list[str]) -> None:
    # argparse accepts any int; past 64 bits the database driver cannot bind it.
    cli.create("a")
    before = cli.snapshot()
    result = cli.run(*argv)
    assert "Traceback" not in result.err, result.describe()
    if result.code != 0:
        assert refusal_problem(result, result.code, "") is None, result.describe()
        assert cli.snapshot() == before


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_idempotent_creates_yield_one_task(cli: Cli) -> None:
    key = "deploy-2024-🔑"
    results = cli.run_many(
        [("create", f"deploy {i}", "--idempotency-key", key, "--json") for i in range(8)]
    )
    for result in results:
        assert result.code == 0, result.describe()
    data = [r.json() for r in results]
    assert len({d["id"] for d in data}) == 1
    assert sum(d["created"] for d in data) == 1
    listed = cli.tasks()
    assert len(listed) == 1
    assert listed[0]["idempotency_key"] == key
    assert listed[0]["title"] == next(d["title"] for d in data if d["created"])
    assert kinds(cli.show(listed[0]["id"])) == ["created"]


def test_concurrent_first_use_of_a_fresh_home(tmp_path: Path) -> None:
    # No init: eight processes race to create the schema; each must see a usable board.
    cli = Cli(tmp_path / "home", backend="sqlite")
    results = cli.run_many([("create", f"task {i}", "--json") for i in range(8)])
    for result in results:
        assert result.code == 0, result.describe()
    assert sorted(r.json()["id"] for r in results) == sorted(f"t{i}" for i in range(1, 9))
    assert len(cli.tasks()) == 8
