"""Branch names for workspaces (D-05): templates, slugs, validation, parse-back and conflicts."""

from __future__ import annotations

import re
import string
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kanban_core.workspaces.base import slugify
from kanban_core.workspaces.gitops.runner import GitOpError, run_git

DEFAULT_TEMPLATE = "kanban/{ws_short}-{slug}"
SPEC_TEMPLATE = "feature/task-{spec_id}-{task_number}-{slug}"
TEMPLATE_FIELDS = ("ws_short", "slug", "task_id", "spec_id", "task_number")
MAX_SUFFIX = 100

_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._/-]{0,99}")
_MAX_BYTES = 100
# Only the slug may contain '-'; other fields have none, so a template's fixed separators
# (which must start and end with one of '-/_') split a name in exactly one way: parse round-trips.
_SLUG_PATTERN = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_VALUE_PATTERN = r"[a-z0-9]+(?:\.[a-z0-9]+)*"
_VALUE_RE = re.compile(_VALUE_PATTERN)
_IDENTIFYING = ("slug", "ws_short", "task_id")
_EXAMPLE = {"ws_short": "4f2a", "task_id": "t42", "spec_id": "002", "task_number": "3.1"}
_SHOWN = 120  # a hostile name is quoted in an error message at most this long


class BranchError(GitOpError):
    """A branch name or template is invalid; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why a branch name is taken in one repository."""

    repo: str
    kind: str  # 'local' | 'remote' | 'df' | 'case' | 'checked_out'
    detail: str


class BranchConflict(BranchError):
    """A (custom) branch name is taken in one or more of the selected repositories."""

    def __init__(
        self, message: str, conflicts: Sequence[Conflict], suggestions: Sequence[str]
    ) -> None:
        super().__init__(message)
        self.conflicts = tuple(conflicts)
        self.suggestions = tuple(suggestions)


def validate_template(template: str) -> None:
    """Refuse a template that names unknown fields, cannot identify a task, or renders badly."""
    _identifying_fields(template)
    example = {**_EXAMPLE, "slug": "x" * 40}
    try:
        validate_branch(template.format(**example))
    except BranchError as exc:
        raise BranchError(f"branch template {_show(template)} renders badly: {exc}") from None


def render_branch(
    template: str,
    *,
    title: str,
    ws_short: str = "",
    task_id: str = "",
    spec_id: str = "",
    task_number: str = "",
    slug_max: int = 40,
) -> str:
    """The branch name a template gives for a title (and ids); always a valid name."""
    fields = _identifying_fields(template)
    values = {"ws_short": ws_short, "task_id": task_id, "spec_id": spec_id}
    values["task_number"] = task_number
    for field in fields:
        if field != "slug" and not _VALUE_RE.fullmatch(values[field]):
            raise BranchError(
                f"branch template field {{{field}}} must be lowercase letters, digits and inner "
                f"dots, got {_show(values[field])}"
            )
    name = template.format(**values, slug=slugify(title, limit=max(slug_max, 1)))
    validate_branch(name)
    return name


def parse_branch(template: str, name: str) -> dict[str, str] | None:
    """The fields a name was rendered from (inverse of render_branch), else None.

    A name that only matches once a ``-N`` suffix (the conflict policy's) is cut off reports it
    as ``suffix``; when the slug ends the template the suffix simply stays part of the slug.
    """
    try:
        pattern = _template_regex(template)
    except BranchError:
        return None
    match = pattern.fullmatch(name)
    if match:
        return dict(match.groupdict())
    cut = re.fullmatch(r"(.+)-([1-9][0-9]*)", name)
    if cut and (match := pattern.fullmatch(cut.group(1))):
        return {**match.groupdict(), "suffix": cut.group(2)}
    return None


def validate_branch(name: str) -> None:
    """Refuse a name git or D-05 rejects; option-like names are refused before git sees them."""
    reason = _rule_violation(name)
    if reason:
        raise BranchError(f"invalid branch name {_show(name)}: {reason}")
    # The name cannot start with '-' here, so git can only take it as the name.
    result = run_git(Path(tempfile.gettempdir()), "check-ref-format", "--branch", name, check=False)
    if result.returncode != 0:
        raise BranchError(f"invalid branch name {_show(name)}: git check-ref-format refuses it")


def sanitize_branch(name: str) -> str:
    """A valid-looking name close to what the user typed, to suggest (never applied silently)."""
    parts = [slugify(part, limit=40, fallback="") for part in name.split("/")]
    cleaned = "/".join(p for p in parts if p)[:_MAX_BYTES].strip("/-")
    return cleaned or "task"


def find_conflicts(name: str, repos: Sequence[tuple[str, Path]]) -> list[Conflict]:
    """Every reason the name is taken in each (slug, checkout) repository."""
    return [c for slug, path in repos for c in _conflicts(name, slug, _RefSnapshot.read(path))]


def choose_branch(candidate: str, repos: Sequence[tuple[str, Path]], *, custom: bool) -> str:
    """The name to create in every repo: auto names take -2, -3, …; custom names must be free."""
    try:
        validate_branch(candidate)
    except BranchError as exc:
        if not custom:
            raise
        raise BranchError(f"{exc}; try {sanitize_branch(candidate)!r}") from None
    snapshots = [(slug, _RefSnapshot.read(path)) for slug, path in repos]

    def taken(name: str) -> list[Conflict]:
        return [c for slug, snap in snapshots for c in _conflicts(name, slug, snap)]

    conflicts = taken(candidate)
    if not conflicts:
        return candidate
    # A branch named like a parent directory of ours (`kanban` for `kanban/x`) blocks every
    # suffix too: only a different prefix helps.
    blocked = any(c.kind == "df" and c.detail.startswith("parent") for c in conflicts)
    if not custom and not blocked:
        for name in _suffixed(candidate):
            if not taken(name):
                return name
    alternatives = _flattened(candidate) if blocked else _suffixed(candidate)
    suggestions = _take_free(alternatives, taken, 2)
    where = ", ".join(f"{c.repo} ({c.kind}: {c.detail})" for c in conflicts)
    hint = f"; try {' or '.join(map(repr, suggestions))}" if suggestions else ""
    raise BranchConflict(f"branch {candidate!r} is taken in {where}{hint}", conflicts, suggestions)


@dataclass(frozen=True, slots=True)
class _RefSnapshot:
    """One repository's branch names, read once so a suffix search costs no more git calls."""

    local: frozenset[str]
    remote: dict[str, str]  # '<name>' -> 'refs/remotes/<remote>/<name>'
    checked_out: dict[str, str]  # local branch -> worktree path

    @classmethod
    def read(cls, path: Path) -> _RefSnapshot:
        remotes = sorted(run_git(path, "remote").text.split(), key=len, reverse=True)
        refs = run_git(path, "for-each-ref", "--format=%(refname)", "refs/heads", "refs/remotes")
        local: set[str] = set()
        remote: dict[str, str] = {}
        for ref in refs.text.splitlines():
            if ref.startswith("refs/heads/"):
                local.add(ref.removeprefix("refs/heads/"))
                continue
            rest = ref.removeprefix("refs/remotes/")
            # Remote names may contain '/': strip the longest known one.
            owner = next((r for r in remotes if rest.startswith(f"{r}/")), rest.split("/")[0])
            short = rest.removeprefix(f"{owner}/")
            if short != "HEAD":
                remote.setdefault(short, ref)
        return cls(frozenset(local), remote, _checked_out(path))


def _checked_out(path: Path) -> dict[str, str]:
    out = run_git(path, "worktree", "list", "--porcelain", "-z").text.split("\0")
    found: dict[str, str] = {}
    where = ""
    for field in out:
        if field.startswith("worktree "):
            where = field.removeprefix("worktree ")
        elif field.startswith("branch refs/heads/"):
            found[field.removeprefix("branch refs/heads/")] = where
    return found


def _conflicts(name: str, repo: str, snap: _RefSnapshot) -> Iterator[Conflict]:
    lower = name.lower()
    parts = lower.split("/")
    parents = {"/".join(parts[:i]) for i in range(1, len(parts))}
    for kind, names in (("local", snap.local), ("remote", frozenset(snap.remote))):
        where = "refs/heads/" if kind == "local" else ""
        for other in sorted(names):
            shown = f"{where}{other}" if kind == "local" else snap.remote[other]
            if other == name:
                yield Conflict(repo, kind, f"{shown} exists")
            elif other.lower() == lower:
                yield Conflict(repo, "case", f"{shown} differs only in case")
            elif other.lower() in parents:
                yield Conflict(repo, "df", f"parent {shown} exists, so {name}/… cannot")
            elif other.lower().startswith(f"{lower}/"):
                yield Conflict(repo, "df", f"{shown} exists below {name}/")
    if name in snap.checked_out:
        yield Conflict(repo, "checked_out", f"{name} is checked out at {snap.checked_out[name]}")


def _suffixed(candidate: str) -> Iterator[str]:
    for n in range(2, MAX_SUFFIX + 1):
        name = f"{candidate}-{n}"
        if _rule_violation(name):
            return
        yield name


def _flattened(candidate: str) -> Iterator[str]:
    flat = candidate.replace("/", "-")
    if not _rule_violation(flat):
        yield flat
        yield from _suffixed(flat)


def _take_free(
    names: Iterator[str], taken: Callable[[str], list[Conflict]], count: int
) -> list[str]:
    free: list[str] = []
    for name in names:
        if not taken(name):
            free.append(name)
            if len(free) == count:
                break
    return free


def _rule_violation(name: str) -> str:
    """Why D-05's own rules refuse the name, or '' (git's check-ref-format runs after)."""
    if name in ("HEAD", "@"):
        return "reserved by git"
    if len(name.encode("utf-8", "surrogatepass")) > _MAX_BYTES:
        return f"longer than {_MAX_BYTES} bytes"
    if name.startswith("-"):
        return "starts with '-' (it would be read as an option)"
    if not _NAME_RE.fullmatch(name):
        return "use lowercase ASCII letters, digits and . _ / -, first a letter or digit"
    if "//" in name or name.endswith("/"):
        return "has an empty '/' segment"
    if ".." in name:
        return "contains '..'"
    segments = name.split("/")
    if any(s.startswith((".", "-")) for s in segments):
        return "a '/' segment starts with '.' or '-'"
    if any(s.endswith((".lock", ".")) for s in segments):
        return "a '/' segment ends with '.lock' or '.'"
    return ""


def _identifying_fields(template: str) -> list[str]:
    fields = _template_fields(template)
    if not set(fields) & set(_IDENTIFYING):
        raise BranchError(
            f"branch template {_show(template)} must contain {{slug}}, {{ws_short}} or {{task_id}}"
        )
    return fields


def _template_fields(template: str) -> list[str]:
    """The template's fields in order; refuses unknown, repeated or adjacent fields."""
    fields: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise BranchError(f"branch template {_show(template)} is malformed: {exc}") from None
    for i, (literal, field, spec, conversion) in enumerate(parsed):
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            known = ", ".join(f"{{{f}}}" for f in TEMPLATE_FIELDS)
            raise BranchError(f"branch template field {{{field}}} is unknown; use {known}")
        if field in fields:
            raise BranchError(f"branch template repeats {{{field}}}")
        if i > 0 and parsed[i - 1][1] is not None and not _separates(literal):
            raise BranchError(
                f"branch template {_show(template)} needs a '-', '/' or '_' between fields"
            )
        fields.append(field)
    return fields


def _separates(literal: str) -> bool:
    return bool(literal) and literal[0] in "-/_" and literal[-1] in "-/_"


def _template_regex(template: str) -> re.Pattern[str]:
    _template_fields(template)
    parts: list[str] = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(re.escape(literal))
        if field is not None:
            body = _SLUG_PATTERN if field == "slug" else _VALUE_PATTERN
            parts.append(f"(?P<{field}>{body})")
    return re.compile("".join(parts))


def _show(text: str) -> str:
    """Quote user input for a one-line message: repr escapes control characters and newlines."""
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "…")
