"""``kanban permissions``, ``allow`` and ``deny`` driven as a subprocess, on each backend."""

from __future__ import annotations

from typing import Any

import pytest

from kanban_core import Actor, Kanban, KernelSettings, RunId, RunProof, TaskId, parse_task_id
from tests.integration.conftest import Cli

pytestmark = pytest.mark.integration


def ask(cli: Cli, summary: str = "run the test suite") -> dict[str, Any]:
    """Claim a new task and have its run ask (the agent side is in-process: no CLI verb asks)."""
    task_id = cli.create("asks first")
    claim = cli.claim(task_id)
    url = cli.db_url or f"sqlite:///{cli.home / 'kanban.db'}"
    proof = RunProof(parse_task_id(task_id), RunId(int(claim["run_id"])), str(claim["run_token"]))
    with Kanban.open(KernelSettings(home=cli.home, db_url=url)) as board:
        made = board.request_permission(
            Actor(name="agent", run=proof),
            TaskId(proof.task_id),
            tool_kind="execute",
            tool_name="bash",
            summary=summary,
            detail="pytest -x",
            ttl_s=600,
        )
    return {"task": task_id, "ref": made.ref}


def _fixed(row: dict[str, object]) -> dict[str, object]:
    """A listed request without the fields that count seconds on the clock."""
    return {k: v for k, v in row.items() if k not in ("age_s", "expires_in_s")}


def test_permissions_lists_what_waits_and_allow_answers_once(cli):
    asked = ask(cli)
    ref, task = asked["ref"], asked["task"]

    [listed] = cli.json("permissions")
    assert (listed["ref"], listed["task_id"], listed["tool"]) == (ref, task, "bash")
    assert listed["summary"] == "run the test suite"
    assert 0 < listed["expires_in_s"] <= 600
    assert [_fixed(r) for r in cli.json("permissions", "--task", task)] == [_fixed(listed)]
    [row] = cli.tasks()
    assert row["waiting_permission"] == [ref]
    assert f"asks {ref}" in cli.ok("list").out
    assert "Waiting for an answer" in cli.ok("show", task).out
    assert cli.task(task)["waiting_permission"] == [ref]

    out = cli.ok("allow", ref.upper(), "--run").out
    assert out.startswith(f"Allowed {ref} for the rest of its run: {task} bash")

    assert cli.json("permissions") == []
    assert cli.tasks()[0]["waiting_permission"] == []
    assert f"asks {ref}" not in cli.ok("list").out
    cli.refused(
        "deny",
        ref,
        "too late",
        match=f"{ref} was already allowed for the rest of its run by @alice",
    )


def test_deny_keeps_the_reason(cli):
    ref = ask(cli)["ref"]
    assert cli.ok("deny", ref.lstrip("p"), "not", "on", "main").out == (
        f"Denied {ref}: t1 bash — run the test suite (not on main)\n"
    )
    events = [e for e in cli.show("t1")["events"] if e["kind"] == "permission_answered"]
    assert [e["payload"]["reason"] for e in events] == ["not on main"]
    cli.refused("allow", ref, match=f"{ref} was already denied by @alice")


@pytest.mark.parametrize("bad", ["t1", "p", "p-3", "0", "pp3"])
def test_a_bad_ref_is_a_usage_error_and_changes_nothing(cli, bad):
    ref = ask(cli)["ref"]
    before = cli.snapshot("t1")
    cli.refused("allow", bad, code=2, match="not a permission request")
    cli.refused("deny", bad, "why", code=2, match="not a permission request")
    assert cli.snapshot("t1") == before
    assert [r["ref"] for r in cli.json("permissions")] == [ref]


def test_an_unknown_ref_is_refused(cli):
    cli.refused("allow", "p42", match="no such permission request: p42")
