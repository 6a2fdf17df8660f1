"""argparse ``type=`` converters: a malformed value is a usage error (exit 2), not a refusal."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

from kanban_core.board.domain import (
    TaskId,
    format_permission_ref,
    parse_permission_ref,
    parse_task_id,
)
from kanban_core.board.validation import WorkspaceSpec, parse_duration, parse_metadata
from kanban_core.commands.chat_paths import DirName, parse_workspace_arg
from kanban_core.errors import ValidationError

T = TypeVar("T")


def _usage(convert: Callable[[str], T], name: str) -> Callable[[str], T]:
    def converter(value: str) -> T:
        try:
            return convert(value)
        except ValidationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    converter.__name__ = name  # argparse names the type in its messages
    return converter


def _duration(value: str) -> int:
    seconds = parse_duration(value)
    if seconds is None:
        raise ValidationError("a duration must not be empty")
    return seconds


_MAX_BUDGET_USD = 1_000_000
_MAX_TOKENS = 10**12


def _dollars(value: str) -> int:
    """A budget in dollars (``1.50``, ``$2``), as millionths of a dollar."""
    text = value.strip().removeprefix("$")
    try:
        dollars = float(text)
    except ValueError:
        raise ValidationError(f"not an amount in dollars: {value!r}") from None
    # float() accepts nan and inf; neither is a budget.
    if not 0 < dollars <= _MAX_BUDGET_USD:
        raise ValidationError(f"a cost budget must be above 0 and at most {_MAX_BUDGET_USD}")
    micro = round(dollars * 1_000_000)
    if micro <= 0:
        raise ValidationError("a cost budget must be at least $0.000001")
    return micro


def _tokens(value: str) -> int:
    try:
        count = int(value.strip())
    except ValueError:
        raise ValidationError(f"not a whole number of tokens: {value!r}") from None
    if not 0 < count <= _MAX_TOKENS:
        raise ValidationError(f"a token budget must be above 0 and at most {_MAX_TOKENS}")
    return count


def _metadata(value: str) -> dict[str, Any]:
    parsed = parse_metadata(value)
    assert parsed is not None
    return parsed


def _permission_ref(value: str) -> str:
    return format_permission_ref(parse_permission_ref(value))


task_id: Callable[[str], TaskId] = _usage(parse_task_id, "task id")
duration: Callable[[str], int] = _usage(_duration, "duration")
metadata: Callable[[str], dict[str, Any]] = _usage(_metadata, "metadata")
#: Dollars, as millionths of a dollar.
dollars: Callable[[str], int] = _usage(_dollars, "amount")
tokens: Callable[[str], int] = _usage(_tokens, "tokens")
workspace: Callable[[str], WorkspaceSpec | DirName] = _usage(parse_workspace_arg, "workspace")
#: ``p12``, ``P12`` or ``12``, as ``p12``; a malformed ref changes nothing.
permission_ref: Callable[[str], str] = _usage(_permission_ref, "permission request")
