"""Text from outside that the databases cannot store (NUL, lone surrogates) is stored cleaned.

Each database test runs on SQLite and PostgreSQL: before the fix, SQLite's driver raised
UnicodeEncodeError on a lone surrogate and psycopg raised DataError on a NUL, failing the whole
transaction (an unaudited chat command, a worker crash with no verdict).
"""

from __future__ import annotations

import pytest

from kanban_core import Actor, RunOutcome
from kanban_core.board.audit import AuditEntry
from kanban_core.board.recovery import FailurePolicy
from kanban_core.storage import Query
from kanban_core.storage.text import clean, needs_cleaning, storable

#: What a console line that was not UTF-8 looks like once decoded with ``surrogateescape``.
NOT_UTF8 = b"list \xff\xfe caf\xe9".decode("utf-8", "surrogateescape")
R = "\ufffd"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("plain ascii", "plain ascii"),
        ("café — ✔ 😀", "café — ✔ 😀"),
        ("a\x00b", f"a{R}b"),
        ("lone \ud800 high", f"lone {R} high"),
        ("lone \udfff low", f"lone {R} low"),
        ("pair \ud83d\ude00 joined", "pair 😀 joined"),
        (NOT_UTF8, f"list {R}{R} caf{R}"),
        ("\x00\ud800", f"{R}{R}"),
    ],
)
def test_clean_replaces_only_what_cannot_be_stored(raw, stored):
    assert clean(raw) == stored
    assert needs_cleaning(raw) is (raw != stored)
    assert not needs_cleaning(clean(raw))


def test_storable_returns_clean_parameters_untouched():
    params = {"a": "text", "b": 3, "c": None, "d": b"\x00bytes"}
    assert storable(params) is params
    dirty = {"a": "x\x00", "b": 3, "d": b"\x00bytes"}
    assert storable(dirty) == {"a": f"x{R}", "b": 3, "d": b"\x00bytes"}


def entry(text: str, **overrides: object) -> AuditEntry:
    fields: dict[str, object] = {
        "platform": "telegram",
        "chat_id": "c1",
        "thread_id": "",
        "user_id": "42",
        "user_name": "mallory",
        "role": None,
        "text": text,
        "outcome": "refused",
        "detail": "unknown user",
    }
    fields.update(overrides)
    return AuditEntry(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("list\x00", id="nul"),
        pytest.param("show t1 \ud800", id="lone-surrogate"),
        pytest.param(NOT_UTF8, id="not-utf8-bytes"),
    ],
)
def test_the_audit_stores_any_text(board, text):
    board.record_audit(entry(text, user_name="mal\x00lory", detail=f"why {text}"))

    [stored] = board.audit_log(limit=1)
    assert stored.text == clean(text)
    assert stored.user_name == f"mal{R}lory"
    assert stored.detail == f"why {clean(text)}"


def test_a_lookup_by_dirty_text_finds_what_was_stored(board):
    # Writes and reads clean the same way, so a key with a NUL finds its own row.
    board.record_audit(entry("key\x00one"))
    with board.db.transaction(write=False) as tx:
        found = tx.fetchall(
            Query("test_find", "SELECT text FROM audit_log WHERE text = :text"),
            {"text": "key\x00one"},
        )
    assert found == [(f"key{R}one",)]


def test_executemany_cleans_every_row(board):
    insert = Query(
        "test_audit_many",
        "INSERT INTO audit_log (created_ms, platform, chat_id, thread_id, user_id, text, outcome) "
        "VALUES (1, 'p', 'c', '', 'u', :text, 'allowed')",
    )
    with board.db.transaction(write=True) as tx:
        tx.executemany(insert, [{"text": "ok"}, {"text": "nul\x00"}, {"text": "\udc80"}])
    assert [e.text for e in board.audit_log(limit=3)] == [R, f"nul{R}", "ok"]


def test_a_crash_whose_log_holds_nul_and_bad_bytes_still_gets_its_verdict(board, make_task):
    # A worker's log is the agent's raw output: binary junk must not lose the verdict.
    task = make_task(assignee="bot")
    claim = board.claim(Actor("dispatcher"), task.id)
    assert claim is not None
    evidence = "last words\x00" + b"\xff\xfe".decode("utf-8", "surrogateescape")

    verdict = board.record_failure(
        Actor("dispatcher"),
        task.id,
        claim.run_id,
        RunOutcome.CRASHED,
        "exit 3 \x00",
        FailurePolicy(limit=3),
        evidence=evidence,
    )

    assert verdict.failures == 1
    [run] = board.runs(task.id)
    assert run.outcome is RunOutcome.CRASHED
    assert run.error is not None
    assert f"last words{R}{R}{R}" in run.error
    assert "\x00" not in run.error
