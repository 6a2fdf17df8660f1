"""Fixtures the browser tests share: one Playwright per module, driving Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.web_harness import chromium_missing


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright's driver; CI (which installs Chromium) fails here rather than skip."""
    missing = chromium_missing()
    if missing:
        pytest.fail(f"CI must run the browser tests: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver
