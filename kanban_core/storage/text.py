"""Text the databases cannot store, made storable: lone surrogates and NUL become U+FFFD.

Chat text, display names, worker log tails and error messages reach the board from outside.
A lone surrogate (a chat client's broken emoji, bytes that were not UTF-8 decoded with
``surrogateescape``) cannot be encoded for either database, and PostgreSQL refuses NUL in text;
either way the whole transaction failed. Every statement's string parameters pass through
``storable`` so the same text is written, and looked up, on both databases.
"""

from __future__ import annotations

from collections.abc import Mapping

REPLACEMENT = "\ufffd"


def needs_cleaning(value: str) -> bool:
    """True when ``value`` holds a NUL or a surrogate code point."""
    if "\x00" in value:
        return True
    if value.isascii():
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clean(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (a surrogate pair is joined)."""
    if not value.isascii():
        # UTF-16 round trip: a well-formed pair becomes its character, a lone half U+FFFD.
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value.replace("\x00", REPLACEMENT)


def storable(params: Mapping[str, object]) -> Mapping[str, object]:
    """``params`` itself when every string in it is storable, else a cleaned copy."""
    for value in params.values():
        if type(value) is str and needs_cleaning(value):
            return {key: clean(item) if type(item) is str else item for key, item in params.items()}
    return params
