"""An assignee profile's permission policy: allow, ask or deny an agent's request, before anyone."""

from __future__ import annotations

import enum
import fnmatch
import os
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Past these an ask is refused outright: no honest tool call names more, or longer, paths.
MAX_PATHS = 64
MAX_PATH_CHARS = 4096
# Cc is C0/C1 controls (NUL, newline, ESC …); line and paragraph separators break a line too.
# Any of them in a path can hide what a person reads in chat, or cut a path short in C code.
_CONTROL_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
_SHOWN_CHARS = 80


class PolicyAction(enum.StrEnum):
    """What happens to a permission request."""

    ALLOW = "allow"
    ASK = "ask"  # a person answers in chat
    DENY = "deny"


class ToolKind(enum.StrEnum):
    """The tool kinds the Agent Client Protocol names."""

    READ = "read"
    EDIT = "edit"
    DELETE = "delete"
    MOVE = "move"
    SEARCH = "search"
    EXECUTE = "execute"
    THINK = "think"
    FETCH = "fetch"
    OTHER = "other"


#: Kinds that act on files: they are only "inside the workspace" when they name their paths.
FILE_KINDS = frozenset({ToolKind.READ, ToolKind.EDIT, ToolKind.DELETE, ToolKind.MOVE})


class PathScope(enum.StrEnum):
    """Where a rule requires a request's paths to be."""

    WORKSPACE = "workspace"  # every path inside the workspace
    OUTSIDE = "outside"  # at least one path outside it


class _Where(enum.Enum):
    INSIDE = enum.auto()
    OUTSIDE = enum.auto()
    UNKNOWN = enum.auto()  # a file kind that named no path: not provably inside


@dataclass(frozen=True, slots=True)
class PermissionAsk:
    """One permission request of an agent, as the agent described it."""

    tool_kind: ToolKind
    tool_name: str
    summary: str = ""
    paths: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer and the one-line reason for it."""

    action: PolicyAction
    reason: str


@dataclass(frozen=True, slots=True)
class PermissionRule:
    """Tool kinds, tool-name globs and where the paths are, to an action; empty means "any"."""

    action: PolicyAction
    kinds: frozenset[ToolKind] | None = None
    tools: tuple[str, ...] = ()  # fnmatch globs, compared case-insensitively
    paths: PathScope | None = None
    note: str = ""  # why the rule is there (the defaults say it; a user's rule may not)

    def describe(self) -> str:
        """The rule in a few words, e.g. ``edit inside the workspace``."""
        kinds = "/".join(sorted(self.kinds)) if self.kinds is not None else "any kind"
        words = [kinds]
        if self.tools:
            words.append("tool " + "|".join(self.tools))
        if self.paths is PathScope.WORKSPACE:
            words.append("inside the workspace")
        elif self.paths is PathScope.OUTSIDE:
            words.append("outside the workspace")
        text = " ".join(words)
        return f"{text} ({self.note})" if self.note else text

    def matches(self, ask: PermissionAsk, where: _Where) -> bool:
        """Whether the rule applies to ``ask``, whose paths the policy found ``where``."""
        if self.kinds is not None and ask.tool_kind not in self.kinds:
            return False
        name = ask.tool_name.casefold()
        if self.tools and not any(fnmatch.fnmatchcase(name, t.casefold()) for t in self.tools):
            return False
        if self.paths is PathScope.WORKSPACE:
            return where is _Where.INSIDE
        if self.paths is PathScope.OUTSIDE:
            return where is _Where.OUTSIDE
        return True

    def to_json(self) -> dict[str, Any]:
        """The rule as JSON (it travels in the worker spec)."""
        return {
            "action": self.action.value,
            "kinds": sorted(self.kinds) if self.kinds is not None else None,
            "tools": list(self.tools),
            "paths": self.paths.value if self.paths is not None else None,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PermissionRule:
        """The rule from ``to_json``; raises ValueError on an unknown action, kind or scope."""
        kinds = raw.get("kinds")
        paths = raw.get("paths")
        return cls(
            action=PolicyAction(raw["action"]),
            kinds=frozenset(ToolKind(k) for k in kinds) if kinds is not None else None,
            tools=tuple(str(t) for t in raw.get("tools", ())),
            paths=PathScope(paths) if paths is not None else None,
            note=str(raw.get("note", "")),
        )


@dataclass(frozen=True, slots=True)
class PermissionPolicy:
    """Rules tried in order; the first that matches decides, and none matching means ask."""

    rules: tuple[PermissionRule, ...]

    def decide(
        self,
        ask: PermissionAsk,
        workspace: Path,
        grants: Iterable[tuple[str, str]] = (),
    ) -> Decision:
        """The answer to ``ask`` for an agent working in ``workspace``.

        ``grants`` are (tool kind, tool name) pairs a person allowed for this run; they allow a
        matching ask before the rules, but only one whose paths are all inside the workspace.
        """
        refusal = _unsafe(ask.paths)
        if refusal is not None:
            return Decision(PolicyAction.DENY, refusal)
        where = _where(ask, workspace)
        if where is _Where.INSIDE and _granted(ask, grants):
            return Decision(
                PolicyAction.ALLOW,
                f"granted for this run: {ask.tool_kind} with {_shown(ask.tool_name)}",
            )
        for number, rule in enumerate(self.rules, start=1):
            if rule.matches(ask, where):
                return Decision(rule.action, f"rule {number}: {rule.describe()}")
        return Decision(PolicyAction.ASK, "no rule matched: a person decides")

    def then(self, other: PermissionPolicy) -> PermissionPolicy:
        """This policy's rules tried first, then ``other``'s."""
        return PermissionPolicy(self.rules + other.rules)

    def to_json(self) -> dict[str, Any]:
        """The policy as JSON (it travels in the worker spec)."""
        return {"rules": [rule.to_json() for rule in self.rules]}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> PermissionPolicy:
        """The policy from ``to_json``; an empty mapping is the default policy."""
        if "rules" not in raw:
            return DEFAULT_POLICY
        return cls(tuple(PermissionRule.from_json(rule) for rule in raw["rules"]))


def _unsafe(paths: tuple[str, ...]) -> str | None:
    """Why these paths are refused before any rule or grant, or None."""
    if len(paths) > MAX_PATHS:
        return f"refused: more than {MAX_PATHS} paths"
    for path in paths:
        if len(path) > MAX_PATH_CHARS:
            return f"refused: a path longer than {MAX_PATH_CHARS} characters"
        if any(unicodedata.category(char) in _CONTROL_CATEGORIES for char in path):
            return "refused: a path contains a control character"
    return None


def _where(ask: PermissionAsk, workspace: Path) -> _Where:
    if not ask.paths:
        # A file tool that names no file may touch any; other kinds need not name one.
        return _Where.UNKNOWN if ask.tool_kind in FILE_KINDS else _Where.INSIDE
    root = Path(os.path.realpath(workspace))
    inside = [_inside(path, workspace, root) for path in ask.paths]
    if not all(inside):
        return _Where.OUTSIDE
    return _Where.INSIDE


def _inside(path: str, workspace: Path, root: Path) -> bool:
    # "" and "~…" are not provably anywhere: a tool may read "" as its cwd, or expand "~".
    if not path or path.startswith("~"):
        return False
    try:
        # realpath follows every symlink that exists, including one planted inside the
        # workspace, and a file not yet created resolves through its (maybe symlinked) dir.
        resolved = Path(os.path.realpath(workspace / path))
    except (OSError, ValueError):
        return False
    return resolved.is_relative_to(root)


def _shown(name: str) -> str:
    """A tool name fit for the one-line reason: the agent chose it, it may carry escapes."""
    printable = "".join(
        "?" if unicodedata.category(char) in _CONTROL_CATEGORIES else char for char in name
    )
    return printable if len(printable) <= _SHOWN_CHARS else printable[: _SHOWN_CHARS - 1] + "…"


def _granted(ask: PermissionAsk, grants: Iterable[tuple[str, str]]) -> bool:
    name = ask.tool_name.casefold()
    return any(kind == ask.tool_kind.value and tool.casefold() == name for kind, tool in grants)


_FILES_CHANGE = frozenset({ToolKind.EDIT, ToolKind.DELETE, ToolKind.MOVE})
_LOOKS = frozenset({ToolKind.READ, ToolKind.SEARCH, ToolKind.THINK})

#: The rules used when a profile sets none, and after a profile's own unless it drops them.
DEFAULT_POLICY = PermissionPolicy(
    (
        PermissionRule(
            PolicyAction.ALLOW,
            _LOOKS,
            paths=PathScope.WORKSPACE,
            note="looking inside the workspace changes nothing",
        ),
        PermissionRule(
            PolicyAction.ALLOW,
            _FILES_CHANGE,
            paths=PathScope.WORKSPACE,
            note="the workspace is the agent's to change; git keeps what was there",
        ),
        PermissionRule(
            PolicyAction.DENY,
            FILE_KINDS,
            paths=PathScope.OUTSIDE,
            note="outside the workspace are the user's files and other runs'",
        ),
        PermissionRule(
            PolicyAction.ASK,
            frozenset({ToolKind.EXECUTE}),
            note="a command can do anything the agent's containment lets it",
        ),
        PermissionRule(
            PolicyAction.ASK,
            frozenset({ToolKind.FETCH}),
            note="the network can carry the workspace away",
        ),
        PermissionRule(
            PolicyAction.ASK,
            frozenset({ToolKind.OTHER}),
            note="a tool that does not say what it does",
        ),
    )
)
