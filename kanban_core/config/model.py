"""The declarative schema of config.yaml: its base model, its composition, its one-line errors.

Every section is a pydantic model with unknown keys forbidden and no type coercion, so the schema
itself is the reference that ``config.example.yaml`` is checked against. The kernel declares
``board``, ``dispatcher``, ``assignees``, ``permissions`` and ``workspaces``; layers above add
their sections through the ``kanban_gateway.config_sections`` entry points (the kernel never
imports them).
Importing this module costs about 0.1 s (pydantic), so it is imported only when a file is read.
"""

from __future__ import annotations

import difflib
import sys
import types
import typing
from collections.abc import Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from kanban_core.errors import ValidationError as KanbanValidationError

SECTIONS_GROUP = "kanban_gateway.config_sections"
#: Keys that look like they hold a secret; the file may only name an environment variable.
_SECRET_SUFFIXES = ("token", "secret", "password", "passwd", "api_key", "apikey", "key")


class Section(BaseModel):
    """A mapping in config.yaml: known keys only, values of the declared type, never coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        # ``key:`` with nothing after it (or only commented-out children) is YAML null: unset.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v is not None}
        return data


@cache
def root_model() -> type[Section]:
    """The whole file: the kernel's sections plus those installed layers contribute."""
    from importlib.metadata import entry_points

    from kanban_core.config.schema import KERNEL_SECTIONS

    sections: dict[str, Any] = dict(KERNEL_SECTIONS)
    for entry in sorted(entry_points(group=SECTIONS_GROUP), key=lambda e: e.name):
        try:
            model = entry.load()
            if not (isinstance(model, type) and issubclass(model, BaseModel)):
                model = model()  # a factory, for sections assembled from other entry points
        except Exception as exc:  # noqa: BLE001 - a broken plugin is reported, not a traceback
            raise KanbanValidationError(
                f"the schema of config section {entry.name!r} ({entry.value}) cannot be "
                f"loaded: {type(exc).__name__}: {exc}"
            ) from None
        sections[entry.name] = model
    fields: dict[str, Any] = {
        name: (kind, Field(default_factory=kind if model_in(kind) else dict))
        for name, kind in sections.items()
    }
    root: type[Section] = create_model("ConfigFile", __base__=Section, **fields)
    return root


def load_file(path: Path) -> Section:
    """Read and validate config.yaml; every problem is one line ``<path>: key.path: message``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KanbanValidationError(f"{path}: cannot read: {exc}") from None
    model, problems = _validated(text)
    if problems:
        raise KanbanValidationError("\n".join(f"{path}: {problem}" for problem in problems))
    return model


@lru_cache(maxsize=4)
def _validated(text: str) -> tuple[Section, list[str]]:
    # The dispatcher re-reads the file on every pass: an unchanged file is validated once.
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return root_model()(), [f"not valid YAML: {where}{problem}"]
    return validate_document(document)


def schema_files() -> list[str]:
    """The source files of every model in the schema (and pydantic's), for the validation record."""
    import pydantic.version

    # The kernel's value checks (durations, workspace specs, names) are part of the schema too.
    from kanban_core.board import validation

    files = {__file__, pydantic.version.__file__, validation.__file__}
    pending: list[Any] = [root_model()]
    seen: set[type[BaseModel]] = set()
    while pending:
        model = model_in(pending.pop())
        if model is None or model in seen:
            continue
        seen.add(model)
        for klass in model.__mro__:
            module = sys.modules.get(klass.__module__)
            if module is not None and getattr(module, "__file__", None) and klass is not BaseModel:
                files.add(str(module.__file__))
        for name in model.model_fields:
            node = child_type(model, name)
            while node is not None and model_in(node) is None:
                node = child_type(node, "*")  # through mappings and lists to their sections
            pending.append(node)
    return sorted(f for f in files if "/pydantic/" not in f or f.endswith("version.py"))


def validate_document(document: object) -> tuple[Section, list[str]]:
    """Validate a parsed file; the problems are one line each, ``key.path: what is wrong``."""
    model = root_model()
    if document is None:
        document = {}
    if not isinstance(document, dict):
        return model(), ["the top level must be a mapping"]
    try:
        return model.model_validate(document), []
    except ValidationError as exc:
        return model(), describe(exc, model)


def describe(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    """pydantic's errors as ``key.path: message`` lines; values are never echoed (secrets)."""
    lines = []
    for error in exc.errors(include_url=False):
        loc = [str(part) for part in error["loc"] if part != "[key]"]
        message = _message(error, model, loc)
        lines.append(f"{'.'.join(loc)}: {message}" if loc else message)
    return list(dict.fromkeys(lines))


def _message(error: Any, model: type[BaseModel], loc: list[str]) -> str:
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", error["msg"]))
        # A check on a whole mapping may name the key it is about: ``command: required …``.
        head, sep, rest = text.partition(": ")
        if sep and head in _fields_at(model, loc):
            loc.append(head)
            return rest
        return text
    if kind == "missing":
        return "required"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", "")
    if kind.endswith("too_short"):
        return "must not be empty"
    for prefix, expected in _EXPECTED:
        if kind.startswith(prefix) and kind.endswith("_type"):
            return f"expected {expected}, got {_yaml_type(error.get('input'))}"
    return str(error["msg"]).replace("Input should be", "must be")


def _yaml_type(value: object) -> str:
    # The kind of value, never the value itself (it may be a secret pasted in the wrong place).
    for kind, name in _YAML_TYPES:
        if isinstance(value, kind):
            return name
    return "nothing" if value is None else type(value).__name__


_EXPECTED = (
    ("int_", "a whole number"),
    ("float_", "a number"),
    ("bool_", "true or false"),
    ("string_", "a string"),
    ("list_", "a list"),
    ("dict_", "a mapping"),
    ("model_", "a mapping"),
)
_YAML_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "true/false"),
    (int, "a whole number"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
    (dict, "a mapping"),
)


def _unknown_key(model: type[BaseModel], loc: list[str]) -> str:
    key = loc[-1]
    known = sorted(_fields_at(model, loc[:-1]))
    if key.lower().endswith(_SECRET_SUFFIXES) and not key.endswith("_env"):
        names = [k for k in known if k.endswith("_env")]
        close = difflib.get_close_matches(f"{key}_env", names, n=1, cutoff=0.0)
        if close:
            return f"secrets never go in the file; name the environment variable with {close[0]}"
        return "secrets never go in the file; keep them in environment variables"
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown key (did you mean {close[0]}?)"
    if known and len(known) <= 8:
        return f"unknown key (known: {', '.join(known)})"
    return "unknown key"


def _fields_at(model: type[BaseModel], loc: list[str]) -> set[str]:
    """The keys the schema allows at ``loc`` (empty where it is not a fixed mapping)."""
    node: Any = model
    for part in loc:
        node = child_type(node, part)
        if node is None:
            return set()
    node = model_in(node)
    return set(node.model_fields) if node is not None else set()


def child_type(node: Any, part: str) -> Any:
    """The declared type one step below ``node`` (a field of a model, a value of a mapping)."""
    model = model_in(node)
    if model is not None:
        field = model.model_fields.get(part)
        return field.annotation if field is not None else None
    origin = typing.get_origin(node)
    if origin in (dict, Mapping):
        return typing.get_args(node)[1]
    if origin is list:
        return typing.get_args(node)[0]
    return None


def model_in(node: Any) -> type[BaseModel] | None:
    """The section model ``node`` declares (``X | None`` included), or None for a plain value."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    if typing.get_origin(node) in (typing.Union, types.UnionType):
        models = [m for arg in typing.get_args(node) if (m := model_in(arg)) is not None]
        return models[0] if models else None
    return None
