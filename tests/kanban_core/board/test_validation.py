"""kanban_core.board.validation: every user-supplied value is cleaned or refused with one line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kanban_core import ValidationError, WorkspaceKind
from kanban_core.board.validation import (
    MAX_BODY_BYTES,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    WorkspaceSpec,
    check_metadata,
    clean_idempotency_key,
    clean_name,
    clean_optional,
    clean_skills,
    clean_text,
    clean_title,
    json_text_depth,
    parse_duration,
    parse_metadata,
    parse_workspace,
)

# -- titles and text --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fix the flaky test", "fix the flaky test"),
        ("  padded  ", "padded"),
        ("tab\tinside", "tab\tinside"),
        ("ünïcödé ✓ 漢字", "ünïcödé ✓ 漢字"),
        ("x" * 500, "x" * 500),
        ("😀" * 500, "😀" * 500),
    ],
)
def test_clean_title_accepts_and_strips(raw, expected):
    assert clean_title(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "title must not be empty"),
        ("   \n\t ", "title must not be empty"),
        ("two\nlines", "title must be one line"),
        ("windows\r\nline", "title must be one line"),
        ("x" * 501, "title is too long (501 characters"),
        ("nul\x00byte", "control character (U+0000)"),
        ("bell\x07", "control character (U+0007)"),
        ("escape \x1b[31mred", "control character (U+001B)"),
        ("delete\x7f", "control character (U+007F)"),
        ("c1 \x85 next line", "control character (U+0085)"),
        ("c1 \x9b csi", "control character (U+009B)"),
        ("lone \ud800 surrogate", "invalid unicode"),
    ],
)
def test_clean_title_refuses(raw, message):
    with pytest.raises(ValidationError, match=r"^title") as info:
        clean_title(raw)
    assert message in str(info.value)


def test_clean_title_refuses_a_lone_carriage_return():
    # A bare CR is a control character (it overwrites the line on a terminal) and a line break in
    # some chat renderers; the title must stay one clean line.
    with pytest.raises(ValidationError):
        clean_title("innocent\rFORGED TITLE")


def test_clean_text_normalises_crlf_and_keeps_tabs_and_newlines():
    assert clean_text("a\r\nb\tc\n", field="body", max_bytes=100) == "a\nb\tc"


def test_clean_text_limit_counts_utf8_bytes_not_characters():
    assert clean_text("é" * 5, field="body", max_bytes=10) == "é" * 5
    with pytest.raises(ValidationError, match=r"body is too long \(12 bytes; the limit is 10\)"):
        clean_text("é" * 6, field="body", max_bytes=10)


def test_one_megabyte_body_is_refused_with_its_size():
    body = "x" * (1024 * 1024)
    with pytest.raises(ValidationError, match=r"body is too long \(1048576 bytes; the limit is"):
        clean_optional(body, field="body", max_bytes=MAX_BODY_BYTES)


def test_body_at_the_limit_is_accepted():
    body = "x" * MAX_BODY_BYTES
    assert clean_optional(body, field="body", max_bytes=MAX_BODY_BYTES) == body


@pytest.mark.parametrize(("raw", "expected"), [(None, None), ("", None), ("  \n ", None)])
def test_clean_optional_blank_is_none(raw, expected):
    assert clean_optional(raw, field="body", max_bytes=10) == expected


def test_clean_optional_still_refuses_control_characters():
    with pytest.raises(ValidationError, match="body contains a control character"):
        clean_optional("a\x00", field="body", max_bytes=10)


# -- names and skills -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["coder", "alice_2", "bot.v2", "ops@example.org", "team:backend", "c++", "a-b", "ü"]
)
def test_clean_name_accepts(name):
    assert clean_name(f"  {name} ", field="assignee") == name


@pytest.mark.parametrize("raw", [None, "", "   ", "none", "None", "NULL", "-"])
def test_clean_name_unset_spellings_give_none(raw):
    assert clean_name(raw, field="assignee") is None


@pytest.mark.parametrize(
    "raw", ["two words", "-leading-dash", ".dot", "semi;colon", "slash/name", "x" * 65, "a\nb"]
)
def test_clean_name_refuses(raw):
    with pytest.raises(ValidationError, match=r"assignee .* is not a valid name"):
        clean_name(raw, field="assignee")


def test_clean_name_accepts_exactly_64_characters():
    assert clean_name("x" * 64, field="tenant") == "x" * 64


def test_clean_skills_strips_drops_blanks_and_deduplicates_in_order():
    raw = ["python", " sql ", "", "python", "none", "rust", "sql"]
    assert clean_skills(raw) == ("python", "sql", "rust")


def test_clean_skills_of_nothing_is_empty():
    assert clean_skills(None) == ()
    assert clean_skills([]) == ()


def test_clean_skills_refuses_an_invalid_skill():
    with pytest.raises(ValidationError, match="skill 'bad skill' is not a valid name"):
        clean_skills(["ok", "bad skill"])


# -- idempotency keys -------------------------------------------------------------------------


def test_idempotency_key_is_stripped():
    assert clean_idempotency_key("  deploy-42 ") == "deploy-42"
    assert clean_idempotency_key(None) is None


@pytest.mark.parametrize("raw", ["", "a\nb", "k" * 201, "nul\x00"])
def test_idempotency_key_refused(raw):
    with pytest.raises(ValidationError):
        clean_idempotency_key(raw)


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("300", 300),
        ("90s", 90),
        ("30m", 1800),
        ("1.5h", 5400),
        ("1d", 86400),
        ("2H", 7200),
        (" 45S ", 45),
        ("0.5m", 30),
        ("365d", 365 * 86400),
    ],
)
def test_parse_duration(raw, seconds):
    assert parse_duration(raw) == seconds


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_parse_duration_blank_is_none(raw):
    assert parse_duration(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "m",
        "h5",
        "5x",
        "5 m",
        "1e3",
        "-5",
        "+5",
        "0",
        "0s",
        "inf",
        "nan",
        "1.5.5h",
        "1_000",
        "5mm",
        "1h30m",
    ],
)
def test_parse_duration_refuses_malformed(raw):
    with pytest.raises(ValidationError, match="malformed duration"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", ["\u0663\u0660m", "\uff15m", "\u0665"])
def test_parse_duration_refuses_non_ascii_digits(raw):
    # float() and str.isdigit() accept Arabic-Indic and fullwidth digits; a duration is ASCII.
    with pytest.raises(ValidationError, match="malformed duration"):
        parse_duration(raw)


@pytest.mark.parametrize("raw", ["0.1", "0.5s", "366d", "10000h"])
def test_parse_duration_refuses_out_of_range(raw):
    with pytest.raises(ValidationError, match="out of range"):
        parse_duration(raw)


# -- metadata ---------------------------------------------------------------------------------


def test_parse_metadata_object():
    assert parse_metadata('{"files": 3, "nested": {"ok": true}}') == {
        "files": 3,
        "nested": {"ok": True},
    }
    assert parse_metadata(None) is None


@pytest.mark.parametrize("raw", ["[1, 2]", "3", '"text"', "null", "true"])
def test_parse_metadata_refuses_non_objects(raw):
    with pytest.raises(ValidationError, match="metadata must be a JSON object"):
        parse_metadata(raw)


@pytest.mark.parametrize("raw", ["{", "{files: 3}", "", "{'a': 1}"])
def test_parse_metadata_refuses_invalid_json(raw):
    with pytest.raises(ValidationError, match="metadata is not valid JSON"):
        parse_metadata(raw)


def test_parse_metadata_refuses_oversized():
    raw = json.dumps({"blob": "x" * MAX_METADATA_BYTES})
    with pytest.raises(ValidationError, match="metadata is too large"):
        parse_metadata(raw)


def test_check_metadata():
    assert check_metadata(None) is None
    assert check_metadata({"a": [1, 2]}) == {"a": [1, 2]}
    with pytest.raises(ValidationError, match="must be a JSON object"):
        check_metadata([1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        check_metadata({"a": object()})
    with pytest.raises(ValidationError, match="too large"):
        check_metadata({"blob": "x" * MAX_METADATA_BYTES})


# -- workspaces -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, WorkspaceSpec(WorkspaceKind.SCRATCH)),
        ("", WorkspaceSpec(WorkspaceKind.SCRATCH)),
        ("scratch", WorkspaceSpec(WorkspaceKind.SCRATCH)),
        (" worktree ", WorkspaceSpec(WorkspaceKind.WORKTREE)),
        ("dir:/srv/project", WorkspaceSpec(WorkspaceKind.DIR, "/srv/project")),
        ("dir: /srv/project/ ", WorkspaceSpec(WorkspaceKind.DIR, "/srv/project")),
        ("dir:/srv/./project", WorkspaceSpec(WorkspaceKind.DIR, "/srv/project")),
        ("dir:/srv/my project", WorkspaceSpec(WorkspaceKind.DIR, "/srv/my project")),
    ],
)
def test_parse_workspace(raw, expected):
    assert parse_workspace(raw) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("dir:", "needs a path"),
        ("dir:   ", "needs a path"),
        ("dir:relative/path", "must be absolute"),
        ("dir:./here", "must be absolute"),
        ("dir:../up", "must be absolute"),
        ("dir:~/project", "'~' is not expanded"),
        ("dir:/srv/../etc", "must not contain '..'"),
        ("dir:/srv/project/..", "must not contain '..'"),
        ("dir:/srv/\x00x", "control character"),
        ("DIR:/srv", "unknown workspace"),
        ("Scratch", "unknown workspace"),
        ("tmp", "unknown workspace"),
        ("/srv/project", "unknown workspace"),
    ],
)
def test_parse_workspace_refuses(raw, message):
    with pytest.raises(ValidationError, match="workspace") as info:
        parse_workspace(raw)
    assert message in str(info.value)


def _nested(levels: int) -> dict[str, Any]:
    inner: Any = []
    for _ in range(levels - 2):
        inner = [inner]
    return {"deep": inner}


def test_metadata_nesting_is_bounded_before_parsing():
    at_limit = '{"a": ' + "[" * (MAX_METADATA_DEPTH - 1) + "]" * (MAX_METADATA_DEPTH - 1) + "}"
    assert parse_metadata(at_limit) is not None
    for raw in (
        '{"a": ' + "[" * MAX_METADATA_DEPTH + "]" * MAX_METADATA_DEPTH + "}",
        "[" * 30_000 + "]" * 30_000,  # far past the decoder's recursion limit
        "{" * 60_000,
    ):
        with pytest.raises(ValidationError, match="nested too deeply"):
            parse_metadata(raw)


def test_brackets_inside_strings_do_not_count_as_nesting():
    assert json_text_depth('{"a": "[[[{{{\\"[[", "b": [[1]]}') == 3
    assert parse_metadata('{"text": "' + "[" * 1000 + '"}') == {"text": "[" * 1000}


def test_check_metadata_bounds_nesting_without_recursing():
    assert check_metadata(_nested(MAX_METADATA_DEPTH)) == _nested(MAX_METADATA_DEPTH)
    for value in (_nested(MAX_METADATA_DEPTH + 1), _nested(5_000)):
        with pytest.raises(ValidationError, match="nested too deeply"):
            check_metadata(value)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(ValidationError, match="nested too deeply"):
        check_metadata(looped)
