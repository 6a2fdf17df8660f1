"""The web board's page in headless Chromium: a 1,000-card board from navigation to interactive.

The page marks ``board-interactive`` (a Performance API mark) once the board is rendered with its
handlers attached; the figure is that mark's time since navigation start, median over fresh tabs.
Runs the real ``kanban web`` over a SQLite board seeded in bulk; needs Debian's Chromium.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.seed import BoardMix, seed_board
from benchmarks.timing import Progress, median
from tests.e2e.web_harness import chromium, chromium_missing, sign_in, web_board

CARDS = 1_000
#: Every card shows (no archived ones): the mix of a busy board.
MIX = BoardMix(total=CARDS, todo=200, ready=300, running=20, blocked=30, triage=50)
VIEWPORT = {"width": 1440, "height": 900}


def board_page_interactive(log: Progress, *, loads: int) -> float | str:
    """Seconds from navigation to an interactive 1,000-card board (median over ``loads``)."""
    missing = chromium_missing()
    if missing:
        return f"skipped ({missing.split(' (')[0]})"
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="kanban-web-bench-") as tmp:
        home = Path(tmp) / "home"
        with web_board(home, seed=lambda url: seed_board(url, MIX)) as server:
            log(f"web page: {CARDS:,} cards served at {server.base}")
            with (
                sync_playwright() as driver,
                chromium(driver, Path(tmp) / "profile", viewport=VIEWPORT) as context,
            ):
                sign_in(context, server)  # stays open: the browser keeps its session
                samples: list[float] = []
                for _ in range(loads):
                    # A new tab each time: no previous page to unload inside the measurement.
                    page = context.new_page()
                    page.goto(server.base + "/")
                    page.wait_for_selector("body[data-loaded=true]")
                    shown = page.locator(".card").count()
                    if shown != CARDS:
                        raise AssertionError(f"the board shows {shown} cards, not {CARDS}")
                    mark = page.evaluate(
                        "performance.getEntriesByName('board-interactive')[0].startTime"
                    )
                    samples.append(float(mark) / 1000)
                    page.close()
                log(f"web page: {', '.join(f'{s * 1000:.0f} ms' for s in samples)}")
                return median(samples)


if __name__ == "__main__":
    print(board_page_interactive(Progress(), loads=5))
