"""CommandParser: argparse that raises instead of printing or exiting, safe to run from chat."""

from __future__ import annotations

import argparse
from typing import IO, TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from kanban_core.errors import HelpRequested, UsageError


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser that never writes to a stream and never calls ``sys.exit``.

    Errors become UsageError carrying this (sub)command's usage line; ``-h`` becomes
    HelpRequested carrying the help text. We do not rely on ``exit_on_error=False``, which
    CPython has had to patch several times.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("add_help", True)
        super().__init__(*args, **kwargs)
        #: The verb parsers, by name (filled in by build_parser).
        self.verb_parsers: dict[str, argparse.ArgumentParser] = {}

    def error(self, message: str) -> NoReturn:
        """Raise a UsageError instead of printing usage and exiting 2."""
        raise UsageError(message, usage=self.format_usage().strip())

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        """Never exit the process."""
        if status:
            raise UsageError((message or "").strip(), usage=self.format_usage().strip())
        raise HelpRequested((message or "").strip())

    def print_help(self, file: IO[str] | None = None) -> NoReturn:  # type: ignore[override]
        """Help is a value, not output."""
        del file
        raise HelpRequested(self.format_help())

    def print_usage(self, file: IO[str] | None = None) -> NoReturn:  # type: ignore[override]
        """Usage is a value, not output."""
        del file
        raise HelpRequested(self.format_usage())

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        del file
        raise HelpRequested(message)
