"""The result table: one row per measurement, with SQLite, PostgreSQL and target columns."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from kanban_core.commands.render import display_width

#: A measured value (in base units: seconds, bytes, per second), a verdict or error text, or
#: None when the backend was not measured.
Value = float | str | None
Results = Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class Target:
    """A threshold to compare against (never asserted: timings are noisy)."""

    limit: float
    at_least: bool
    text: str

    def met(self, value: float) -> bool:
        """True when the value is on the good side of the limit."""
        return value >= self.limit if self.at_least else value <= self.limit


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table."""

    key: str
    label: str
    fmt: Callable[[float], str]
    target: Target | None = None
    target_text: str = "—"
    #: Targets for one column only (``("PostgreSQL", at_least(...))``), instead of ``target``.
    column_targets: tuple[tuple[str, Target], ...] = ()

    def target_for(self, column: str) -> Target | None:
        """The target a column's value is marked against."""
        return dict(self.column_targets).get(column, self.target)

    def cell(self, value: Value, column: str = "") -> str:
        """The formatted value, marked ✓ or ✗ against the column's target."""
        if value is None:
            return "skipped"
        if isinstance(value, str):
            return value
        text = self.fmt(value)
        target = self.target_for(column)
        if target is None:
            return text
        return f"{text} {'✓' if target.met(value) else '✗'}"

    def target_cell(self) -> str:
        """The target as text; a column's own target is named after it."""
        texts = [self.target.text if self.target is not None else self.target_text]
        if self.target is None and self.column_targets:
            texts = []
        texts += [f"{column} {target.text}" for column, target in self.column_targets]
        return "; ".join(texts)

    def missed(self, value: Value, column: str = "") -> bool:
        """True when a number misses the column's target."""
        target = self.target_for(column)
        return isinstance(value, float) and target is not None and not target.met(value)


def at_least(limit: float, text: str) -> Target:
    """Higher is better."""
    return Target(limit, True, text)


def at_most(limit: float, text: str) -> Target:
    """Lower is better."""
    return Target(limit, False, text)


def per_second(value: float) -> str:
    """``4,812/s``."""
    return f"{value:,.0f}/s"


def milliseconds(seconds: float) -> str:
    """``12.3 ms``."""
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def microseconds(seconds: float) -> str:
    """``23.4 µs``."""
    return f"{seconds * 1e6:.1f} µs"


def seconds(value: float) -> str:
    """``0.152 s``."""
    return f"{value:.3f} s"


def mebibytes(value: float) -> str:
    """``31.2 MiB`` from bytes."""
    return f"{value / 2**20:.1f} MiB"


def render_table(
    metrics: Sequence[Metric], columns: Sequence[str], results: Mapping[str, Results]
) -> str:
    """A Markdown pipe table (aligned, so it reads as well in a terminal as in the README)."""
    header = ("measurement", *columns, "target")
    rows = [header]
    for metric in metrics:
        cells = [metric.cell(results.get(column, {}).get(metric.key), column) for column in columns]
        rows.append((metric.label, *cells, metric.target_cell()))
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        padded = (cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row))
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])
