"""Validation of user-supplied values: titles, names, durations, metadata and workspace specs."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from kanban_core.board.domain import WorkspaceKind
from kanban_core.errors import ValidationError

MAX_TITLE_CHARS = 500
#: Bodies are for specs, not for payloads; a 1 MB paste is refused with a clear message.
MAX_BODY_BYTES = 256 * 1024
MAX_COMMENT_BYTES = 64 * 1024
MAX_SUMMARY_BYTES = 64 * 1024
MAX_METADATA_BYTES = 64 * 1024
#: Metadata records facts about the work, not a data structure: 32 levels is far more than a
#: handoff needs, and the bound keeps a pasted ``[[[[…`` from exhausting the parser's stack
#: (CPython's JSON decoder recurses once per level).
MAX_METADATA_DEPTH = 32
MAX_NAME_CHARS = 64
MAX_IDEMPOTENCY_KEY_CHARS = 200

# C0 controls other than tab/newline, DEL, and C1 controls: they corrupt terminals and chat
# rendering, and nobody means to type them.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")
_NAME = re.compile(r"^[\w][\w.@:+-]*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")
_TOO_DEEP = f"metadata is nested too deeply (the limit is {MAX_METADATA_DEPTH} levels)"


def clean_text(value: str, *, field: str, max_bytes: int, allow_empty: bool = False) -> str:
    """Strip, refuse control characters and enforce a size limit; returns the cleaned text."""
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text and not allow_empty:
        raise ValidationError(f"{field} must not be empty")
    bad = _CONTROL.search(text)
    if bad:
        raise ValidationError(f"{field} contains a control character (U+{ord(bad.group()):04X})")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > max_bytes:
        raise ValidationError(f"{field} is too long ({size} bytes; the limit is {max_bytes})")
    _refuse_surrogates(text, field)
    return text


def clean_title(value: str) -> str:
    """A one-line, non-empty title."""
    title = clean_text(value, field="title", max_bytes=MAX_TITLE_CHARS * 4)
    if "\n" in title:
        raise ValidationError("title must be one line (put details in --body)")
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(f"title is too long ({len(title)} characters; the limit is 500)")
    return title


def clean_optional(value: str | None, *, field: str, max_bytes: int) -> str | None:
    """Like clean_text, but None and blank become None."""
    if value is None:
        return None
    text = clean_text(value, field=field, max_bytes=max_bytes, allow_empty=True)
    return text or None


def clean_name(value: str | None, *, field: str) -> str | None:
    """Assignee, tenant and skill names: letters, digits and ``_ . @ : + -``; None unsets."""
    if value is None:
        return None
    name = value.strip()
    if name.lower() in ("", "none", "-", "null"):
        return None
    if len(name) > MAX_NAME_CHARS or not _NAME.match(name):
        raise ValidationError(
            f"{field} {value!r} is not a valid name (letters, digits, _ . @ : + -; "
            f"at most {MAX_NAME_CHARS} characters)"
        )
    return name


def clean_skills(values: list[str] | None) -> tuple[str, ...]:
    """Strip, drop empties, de-duplicate keeping order, validate each name."""
    seen: dict[str, None] = {}
    for raw in values or []:
        name = clean_name(raw, field="skill")
        if name is not None:
            seen.setdefault(name, None)
    return tuple(seen)


def clean_idempotency_key(value: str | None) -> str | None:
    """A non-empty key of bounded size, or None."""
    if value is None:
        return None
    key = clean_text(value, field="idempotency key", max_bytes=MAX_IDEMPOTENCY_KEY_CHARS * 4)
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS or "\n" in key:
        raise ValidationError("idempotency key must be one line of at most 200 characters")
    return key


def parse_duration(value: str | None) -> int | None:
    """``300``, ``90s``, ``30m``, ``1.5h``, ``1d`` to whole seconds; None or blank gives None."""
    if value is None or not value.strip():
        return None
    text = value.strip().lower()
    error = ValidationError(
        f"malformed duration {value!r} (expected 30s, 5m, 2h, 1d, or a number of seconds)"
    )
    unit = 1
    if text[-1] in _DURATION_UNITS:
        unit = _DURATION_UNITS[text[-1]]
        text = text[:-1]
    try:
        amount = float(text)
    except ValueError:
        raise error from None
    digits = text.replace(".", "", 1)
    if not math.isfinite(amount) or amount <= 0 or not (digits.isascii() and digits.isdigit()):
        raise error
    seconds = int(amount * unit)
    if seconds < 1 or seconds > 365 * 86400:
        raise ValidationError(f"duration {value!r} is out of range (1 second to 365 days)")
    return seconds


def parse_metadata(value: str | None) -> dict[str, Any] | None:
    """A JSON object given on the command line, or None."""
    if value is None:
        return None
    if len(value.encode("utf-8", errors="surrogatepass")) > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is too large (the limit is {MAX_METADATA_BYTES} bytes)")
    # Measured before parsing: the decoder would recurse once per level and overflow.
    if json_text_depth(value) > MAX_METADATA_DEPTH:
        raise ValidationError(_TOO_DEEP)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"metadata is not valid JSON: {exc.msg} at column {exc.colno}"
        ) from None
    if not isinstance(parsed, dict):
        raise ValidationError("metadata must be a JSON object, like '{\"files\": 3}'")
    return parsed


def check_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Metadata passed as a value (MCP, API): must be a JSON-serialisable object."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError("metadata must be a JSON object")
    # Before encoding: json.dumps recurses per level (and a self-reference never ends).
    if value_depth_exceeds(value, MAX_METADATA_DEPTH):
        raise ValidationError(_TOO_DEEP)
    try:
        encoded = json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"metadata is not JSON-serialisable: {exc}") from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise ValidationError(f"metadata is too large (the limit is {MAX_METADATA_BYTES} bytes)")
    return value


def json_text_depth(text: str) -> int:
    """How deeply arrays and objects nest in a JSON text, counted without parsing it."""
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def value_depth_exceeds(value: object, limit: int) -> bool:
    """True when dicts and lists nest more than ``limit`` levels (walked without recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[object]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


@dataclass(frozen=True, slots=True)
class WorkspaceSpec:
    """A parsed ``--workspace`` value."""

    kind: WorkspaceKind
    path: str | None = None


def parse_workspace(value: str | None) -> WorkspaceSpec:
    """``scratch`` | ``worktree`` | ``dir:<absolute path>``; relative paths are refused here."""
    if value is None or value.strip() == "":
        return WorkspaceSpec(WorkspaceKind.SCRATCH)
    text = value.strip()
    if text in (WorkspaceKind.SCRATCH, WorkspaceKind.WORKTREE):
        return WorkspaceSpec(WorkspaceKind(text))
    if text.startswith("dir:"):
        raw = text[4:].strip()
        if not raw:
            raise ValidationError("workspace dir: needs a path, like dir:/srv/project")
        if raw.startswith("~"):
            raise ValidationError(
                "workspace dir: path must be absolute; '~' is not expanded (write it out)"
            )
        clean_text(raw, field="workspace path", max_bytes=4096)
        path = PurePosixPath(raw)
        if not path.is_absolute():
            raise ValidationError(f"workspace dir: path must be absolute, got {raw!r}")
        if ".." in path.parts:
            raise ValidationError("workspace dir: path must not contain '..'")
        return WorkspaceSpec(WorkspaceKind.DIR, str(path))
    raise ValidationError(
        f"unknown workspace {value!r} (expected scratch, worktree or dir:<absolute path>)"
    )


def _refuse_surrogates(text: str, field: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(f"{field} contains invalid unicode (a lone surrogate)") from None


def clean_repo(value: str | None, workspace: WorkspaceSpec | None) -> str | None:
    """``--repo``: an absolute path, only for worktree workspaces."""
    if value is None or not value.strip():
        return None
    if workspace is None or workspace.kind is not WorkspaceKind.WORKTREE:
        raise ValidationError("--repo goes with --workspace worktree")
    raw = clean_text(value, field="repo", max_bytes=4096)
    path = PurePosixPath(raw)
    if not path.is_absolute() or ".." in path.parts:
        raise ValidationError(f"--repo must be an absolute path without '..', got {raw!r}")
    return str(path)
