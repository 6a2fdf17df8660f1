"""The web board's exception root."""

from __future__ import annotations


class WebError(Exception):
    """A web board problem worth one line to the person running it."""
